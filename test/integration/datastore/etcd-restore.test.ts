// tabbyctl datastore backup / restore over a real etcd, as an operator runs them (the compiled CLI):
// restore refuses a non-empty /tabby/ without --force, replaces it exactly with --force (keys outside
// /tabby/ untouched) in bounded transactions while a running watcher follows it as ordinary events;
// an unfinished restore (its marker left) is reported by check and finished by a forced restore; a
// key written between the emptiness check and the first transaction makes the restore change nothing.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EtcdDatastore } from '../../../src/datastore/etcd.js';
import { RESTORE_MARKER, restoreEtcd } from '../../../src/datastore/etcd-restore.js';
import type { WatchEvent } from '../../../src/datastore/types.js';
import { etcdMissing, startEtcd } from '../../helpers/etcd.js';
import { runTag } from '../../helpers/run-tag.js';
import { waitFor } from '../../helpers/netns.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/cli/main.js');

t.test(
  'etcd: backup, refuse a non-empty store, restore --force exactly, unfinished restore, race',
  { skip: etcdMissing() ?? false },
  async (t) => {
    const etcd = await startEtcd(t);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}etr-`));
    t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
    const tabbyctl = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [CLI, 'datastore', ...args],
          {
            env: { PATH: process.env.PATH, DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: etcd.endpoints.join(','), TABBY_CONFIG: '/dev/null' },
            timeout: 120_000,
          },
          (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
        );
      });
    const ds = new EtcdDatastore(etcd.endpoints);
    t.teardown(() => ds.close());
    // 250 keys: more than one transaction of 100 operations. Values of several shapes.
    for (let i = 0; i < 250; i++)
      await ds.create(`/tabby/test/k${String(i).padStart(3, '0')}`, { i, s: 'x'.repeat(i % 7), n: i % 3 ? null : [i] });
    await ds.create('/other/keep', 'not tabby');
    const backup = path.join(root, 'backup.json');
    const b = await tabbyctl(['backup', backup]);
    t.equal(b.code, 0, b.stderr);
    t.match(b.stdout, /Backed up 250 keys/);
    const want = (await ds.list('/tabby/')).items.map((kv) => [kv.key, kv.value]);

    // Into a non-empty /tabby/: refused, nothing changed.
    const rev0 = await ds.revision();
    const r0 = await tabbyctl(['restore', backup]);
    t.equal(r0.code, 1, 'refused without --force');
    t.match(r0.stderr, /250 keys are under \/tabby\/: restore into an empty store, or pass --force/);
    t.equal(await ds.revision(), rev0, 'etcd unchanged');

    // Drift: deleted, changed and new keys; a watcher of /tabby/ is running.
    for (let i = 0; i < 20; i++) await ds.delete(`/tabby/test/k${String(i).padStart(3, '0')}`);
    const k20 = (await ds.get('/tabby/test/k020'))!;
    await ds.update('/tabby/test/k020', { changed: true }, k20.revision);
    await ds.create('/tabby/test/extra', 1);
    const before = await ds.revision();
    const seen: WatchEvent<unknown>[] = [];
    const ac = new AbortController();
    const watching = (async () => {
      for await (const ev of ds.watch('/tabby/', before + 1, ac.signal)) seen.push(ev);
    })().catch((e: unknown) => seen.push({ type: 'delete', key: `error: ${(e as Error).message}`, revision: -1 }));

    const r1 = await tabbyctl(['restore', '--force', backup]);
    t.equal(r1.code, 0, r1.stderr);
    t.match(r1.stdout, /Restored 250 keys .* in 3 transaction\(s\), replacing 231 keys; etcd is now at revision \d+/);
    const got = (await ds.list('/tabby/')).items;
    t.same(
      got.map((kv) => [kv.key, kv.value]),
      want,
      '/tabby/ is exactly the backup',
    );
    t.equal((await ds.get('/other/keep'))?.value, 'not tabby', 'keys outside /tabby/ are untouched');
    t.ok(
      got.every((kv) => kv.revision > before),
      'restored keys have revisions after the restore began (etcd never goes back)',
    );
    t.equal(await ds.client.get(RESTORE_MARKER).string(), null, 'no marker left');
    await waitFor(() => seen.some((e) => e.key === '/tabby/test/k249' && e.type === 'put'), 20_000, 25);
    ac.abort();
    await watching;
    t.ok(
      seen.some((e) => e.type === 'delete' && e.key === '/tabby/test/extra'),
      'the watcher saw the extra key deleted',
    );
    t.ok(
      seen.some((e) => e.type === 'put' && e.key === '/tabby/test/k000'),
      'the watcher saw a deleted key come back',
    );
    t.notOk(
      seen.some((e) => e.revision < 0),
      'the watch did not fail',
    );
    const c = await tabbyctl(['check']);
    t.equal(c.code, 0, c.stderr);

    // An unfinished restore: the marker is left (as by a restore killed between transactions).
    await ds.client.put(RESTORE_MARKER).value('{"started":"earlier"}');
    const c1 = await tabbyctl(['check']);
    t.equal(c1.code, 1, 'check exits 1 with an unfinished restore');
    t.match(c1.stdout, /A restore did not finish/);
    const r2 = await tabbyctl(['restore', backup]);
    t.equal(r2.code, 1);
    t.match(r2.stderr, /an earlier restore did not finish/);
    const r3 = await tabbyctl(['restore', '--force', backup]);
    t.equal(r3.code, 0, r3.stderr);
    t.equal(await ds.client.get(RESTORE_MARKER).string(), null, 'a forced restore finishes it');
    t.equal((await tabbyctl(['check'])).code, 0);

    // Into an empty /tabby/, in small transactions; a key written between the check and the first
    // transaction makes it change nothing.
    await ds.client.delete().prefix('/tabby/');
    const entries = want.map(([key, value]) => ({ key: key as string, value }));
    const revRace = await ds.revision();
    await t.rejects(
      restoreEtcd(ds.client, '/tabby/', entries, { beforeFirstTransaction: () => ds.create('/tabby/racer', 1).then(() => undefined) }),
      /keys under \/tabby\/ were written while the restore started: nothing was changed/,
    );
    t.same(
      (await ds.list('/tabby/')).items.map((kv) => kv.key),
      ['/tabby/racer'],
      'only the racing key is there',
    );
    t.equal(await ds.revision(), revRace + 1, 'the restore wrote nothing');
    await ds.delete('/tabby/racer');
    const small = await restoreEtcd(ds.client, '/tabby/', entries, { maxOps: 10 });
    // 10 operations a transaction, one kept for the closing marker delete: 7 puts (after the marker put and
    // its room) in the first, 9 in each of the others.
    t.equal(small.transactions, 1 + Math.ceil((250 - 7) / 9), 'transactions of at most 10 operations');
    t.same(
      (await ds.list('/tabby/')).items.map((kv) => [kv.key, kv.value]),
      want,
      'exactly the backup again',
    );
  },
);
