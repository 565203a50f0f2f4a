// tabbyctl datastore check | backup | restore against a file store, as an operator runs them: the
// compiled CLI. Damage is found with its offset (exit 1); a backup restores the store exactly, all or
// nothing (a bad backup file changes nothing); a process that was running follows the restore.
import { runTabbyctl } from '../../helpers/tabbyctl.js';
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileDatastore, LOG_FILE } from '../../../src/datastore/file.js';
import { runTag } from '../../helpers/run-tag.js';

const tabbyctl = (dir: string, args: string[]) =>
  runTabbyctl(['datastore', ...args], { env: { DATASTORE_TYPE: 'file', TABBY_DATASTORE_DIR: dir }, timeoutMs: 60_000 });

t.test('check, backup, damage, restore', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}dsc-`));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, 'store');
  const backup = path.join(root, 'backup.json');
  const ds = new FileDatastore(dir);
  t.teardown(() => ds.close());
  for (let i = 0; i < 10; i++) await ds.create(`/tabby/test/k${i}`, { i });
  let ok = await tabbyctl(dir, ['check']);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /revision 10, 10 keys/);
  const b = await tabbyctl(dir, ['backup', backup]);
  t.equal(b.code, 0, b.stderr);
  t.match(b.stdout, /Backed up 10 keys at revision 10/);
  t.equal(fs.statSync(backup).mode & 0o777, 0o600, 'the backup is 0600');
  for (let i = 10; i < 15; i++) await ds.create(`/tabby/test/k${i}`, { i }); // after the backup

  // Damage in the middle of the log.
  const log = fs.readFileSync(path.join(dir, LOG_FILE));
  const starts = [0];
  for (let p = 0; p < log.length - 1; p++) if (log[p] === 0x0a) starts.push(p + 1);
  const bad = Buffer.from(log);
  bad[starts[5]! + 15] = bad[starts[5]! + 15]! ^ 0x04;
  fs.writeFileSync(path.join(dir, LOG_FILE), bad);
  const c = await tabbyctl(dir, ['check']);
  t.equal(c.code, 1, 'check exits 1 on damage');
  t.match(c.stdout, new RegExp(`Corrupt at byte offset ${starts[5]}`));

  // A broken backup changes nothing.
  fs.writeFileSync(
    path.join(root, 'broken.json'),
    '{"format":"tabby-datastore-backup/v1","kv":[{"key":"/tabby/x","value":1},{"key":"/etc/passwd","value":2}]}',
  );
  const r0 = await tabbyctl(dir, ['restore', path.join(root, 'broken.json')]);
  t.equal(r0.code, 1);
  t.match(r0.stderr, /kv\[1\].*nothing was changed/);
  t.same(fs.readFileSync(path.join(dir, LOG_FILE)), bad, 'the store is untouched');

  const r = await tabbyctl(dir, ['restore', backup]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /Restored 10 keys/);
  ok = await tabbyctl(dir, ['check']);
  t.equal(ok.code, 0, ok.stdout);
  t.match(ok.stdout, /10 keys/);
  t.equal((await ds.list('/tabby/test/')).items.length, 10, 'a process that was running follows the restore');
  t.equal(await ds.get('/tabby/test/k12'), undefined, 'keys written after the backup are gone');
  t.ok((await ds.revision()) > 15, 'the revision moved forward, never back');
  const kv = (await ds.get<{ i: number }>('/tabby/test/k3'))!;
  t.same(kv.value, { i: 3 });
  t.equal((await ds.update('/tabby/test/k3', { i: 33 }, kv.revision)).value.i, 33, 'and writes work again');
});
