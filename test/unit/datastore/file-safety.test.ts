// File backend under damage: mid-log corruption vs a torn tail, a log that shrinks or goes backwards
// under a long-lived process, a compaction that fails, and who may open the store.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { FileDatastore, LOG_FILE, LOCK_FILE } from '../../../src/datastore/file.js';
import { DatastoreCorrupt, DatastoreNotFound } from '../../../src/datastore/types.js';
import { runTag } from '../../helpers/run-tag.js';

const tag = `${runTag()}dss`;
function tmpdir(t: { teardown(fn: () => unknown): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Byte offsets where each line of the log starts. */
function lineStarts(buf: Buffer): number[] {
  const starts = [0];
  for (let i = 0; i < buf.length - 1; i++) if (buf[i] === 0x0a) starts.push(i + 1);
  return starts;
}

t.test('a damaged record with valid records after it is corruption: refused, named, nothing truncated', async (t) => {
  const dir = tmpdir(t);
  const logPath = path.join(dir, LOG_FILE);
  const w = new FileDatastore(dir);
  t.teardown(() => w.close());
  let kv = await w.create('/k', 0);
  for (let i = 1; i < 10; i++) kv = await w.update('/k', i, kv.revision);
  t.equal(kv.revision, 10);
  const before = fs.readFileSync(logPath);
  const starts = lineStarts(before);
  const bad = starts[4]!; // record 5 of 10
  const damaged = Buffer.from(before);
  damaged[bad + 20] = damaged[bad + 20]! ^ 0x01; // a flipped bit inside its JSON
  fs.writeFileSync(logPath, damaged);

  const fresh = new FileDatastore(dir);
  t.teardown(() => fresh.close());
  t.same(await fresh.get('/k'), { key: '/k', value: 3, revision: 4 }, 'a reader serves the last good state (before the damage)');
  const err = await fresh.update('/k', 99, 4).catch((e: unknown) => e);
  t.ok(err instanceof DatastoreCorrupt, `a write is refused with DatastoreCorrupt (${String(err)})`);
  if (err instanceof DatastoreCorrupt) {
    t.equal(err.file, logPath, 'it names the file');
    t.equal(err.offset, bad, 'and the offset of the damaged record');
    t.match(err.message, logPath);
    t.match(err.message, String(bad));
  }
  t.same(fs.readFileSync(logPath), damaged, 'nothing was truncated or rewritten');
  t.equal((await fresh.get('/k'))?.value, 3, 'still serving the last good state');
  t.equal(await fresh.revision(), 4, 'the revision did not move');
  // The long-lived writer opened before the damage keeps its full view; its revision never goes back.
  t.equal((await w.get('/k'))?.revision, 10);
});

t.test('bad bytes at the very end are a torn tail, not corruption: cut off by the next writer', async (t) => {
  const dir = tmpdir(t);
  const a = new FileDatastore(dir);
  t.teardown(() => a.close());
  await a.create('/k', 'v1');
  fs.appendFileSync(path.join(dir, LOG_FILE), '00000000 {"o":"put","r":2,"k":"/k","v":"rot"}\n0badc0de {"o":"pu');
  const b = new FileDatastore(dir);
  t.teardown(() => b.close());
  t.equal((await b.update('/k', 'v2', 1)).revision, 2, 'the write goes through');
  t.notOk(fs.readFileSync(path.join(dir, LOG_FILE), 'utf8').includes('rot'), 'the torn tail is gone');
});

t.test('a log that shrinks under a long-lived process: it reloads instead of keeping a diverged view', async (t) => {
  const dir = tmpdir(t);
  const logPath = path.join(dir, LOG_FILE);
  const a = new FileDatastore(dir);
  t.teardown(() => a.close());
  let kv = await a.create('/k', 0);
  for (let i = 1; i < 7; i++) kv = await a.update('/k', i, kv.revision);
  await a.create('/d', 'later'); // revision 8
  t.equal(await a.revision(), 8);
  const buf = fs.readFileSync(logPath);
  fs.writeFileSync(logPath, buf.subarray(0, lineStarts(buf)[6])); // the first 6 records only
  t.equal(await a.revision(), 6, 'the revision follows the log back');
  t.equal(await a.get('/d'), undefined, 'a key only the lost records had is gone');
  const err = await a.update('/d', 'x', 8).catch((e: unknown) => e);
  t.ok(err instanceof DatastoreNotFound, `a CAS update of that key fails (${String(err)})`);
  t.same(await a.get('/k'), { key: '/k', value: 5, revision: 6 });
});

t.test('a log rewritten in place with other records (revision goes backwards, size grows): reload', async (t) => {
  const dir = tmpdir(t);
  const logPath = path.join(dir, LOG_FILE);
  const other = path.join(tmpdir(t), 'other');
  const a = new FileDatastore(dir);
  t.teardown(() => a.close());
  let kv = await a.create('/k', 0);
  for (let i = 1; i < 10; i++) kv = await a.update('/k', i, kv.revision);
  // Another history of the store: the same first 3 records, then different and longer ones.
  const o = new FileDatastore(other);
  let ok = await o.create('/k', 0);
  for (let i = 1; i < 3; i++) ok = await o.update('/k', i, ok.revision);
  for (let i = 0; i < 12; i++) await o.create(`/other/${'x'.repeat(40)}${i}`, i);
  await o.close();
  const replacement = fs.readFileSync(path.join(other, LOG_FILE));
  t.ok(replacement.length > fs.statSync(logPath).size, 'the other history is longer');
  const fd = fs.openSync(logPath, 'r+');
  fs.writeSync(fd, replacement, 0, replacement.length, 0);
  fs.closeSync(fd);
  t.equal(await a.revision(), 15, 'the process follows the rewritten log');
  t.equal((await a.get('/k'))?.value, 2);
  t.equal((await a.list('/other/')).items.length, 12);
});

t.test('a compaction that fails leaves the old log, and the committed write is reported as done', async (t) => {
  const dir = tmpdir(t);
  const logPath = path.join(dir, LOG_FILE);
  const ds = new FileDatastore(dir, { compactBytes: 1000 });
  t.teardown(() => ds.close());
  // The temp file cannot be created: its name is taken by a directory.
  fs.mkdirSync(path.join(dir, `.${LOG_FILE}.${process.pid}.tmp`));
  let kv = await ds.create('/c', 0);
  const ino = fs.statSync(logPath).ino;
  const errors: unknown[] = [];
  for (let i = 1; i <= 40; i++) {
    try {
      kv = await ds.update('/c', i, kv.revision);
    } catch (e) {
      errors.push(e);
      break;
    }
  }
  t.same(errors.map(String), [], 'no committed write is reported as failed');
  t.equal(kv.value, 40);
  t.equal(fs.statSync(logPath).ino, ino, 'the log was not replaced');
  const fresh = new FileDatastore(dir);
  t.teardown(() => fresh.close());
  t.same(await fresh.get('/c'), kv, 'a fresh process sees every write');
  // Once the temp name is free again, compaction works and leaves no temp file behind.
  fs.rmdirSync(path.join(dir, `.${LOG_FILE}.${process.pid}.tmp`));
  await ds.compact();
  t.not(fs.statSync(logPath).ino, ino, 'compacted');
  t.same(
    fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp file left',
  );
  t.same(await fresh.get('/c'), kv);
});

t.test('a temp file left by a compaction that was killed is removed by the next one', async (t) => {
  const dir = tmpdir(t);
  const stale = path.join(dir, `.${LOG_FILE}.999999.tmp`);
  const ds = new FileDatastore(dir);
  t.teardown(() => ds.close());
  await ds.create('/a', 1);
  fs.writeFileSync(stale, 'half a snapshot');
  await ds.compact();
  t.notOk(fs.existsSync(stale), 'stale temp file removed');
  t.equal((await ds.get('/a'))?.value, 1);
});

t.test('the store is private: directory 0700, files 0600, wider modes are tightened', async (t) => {
  const dir = path.join(tmpdir(t), 'store');
  const ds = new FileDatastore(dir);
  await ds.create('/a', 1);
  await ds.close();
  const mode = (p: string) => fs.statSync(p).mode & 0o777;
  t.equal(mode(dir), 0o700, 'directory 0700');
  t.equal(mode(path.join(dir, LOG_FILE)), 0o600, 'log 0600');
  t.equal(mode(path.join(dir, LOCK_FILE)), 0o600, 'lock 0600');
  // A store made by an older version (0755 / 0644) is tightened when opened.
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(path.join(dir, LOG_FILE), 0o644);
  fs.chmodSync(path.join(dir, LOCK_FILE), 0o644);
  const again = new FileDatastore(dir);
  await again.compact();
  t.equal((await again.get('/a'))?.value, 1);
  await again.close();
  t.equal(mode(dir), 0o700, 'directory tightened');
  t.equal(mode(path.join(dir, LOG_FILE)), 0o600, 'log tightened (and the compacted log is 0600)');
  t.equal(mode(path.join(dir, LOCK_FILE)), 0o600, 'lock tightened');
});

t.test(
  'another user can neither read the store nor take its lock',
  { skip: process.getuid?.() !== 0 ? 'needs root to run a child as another user' : false },
  async (t) => {
    const dir = path.join(tmpdir(t), 'store');
    fs.chmodSync(path.dirname(dir), 0o755);
    const ds = new FileDatastore(dir);
    t.teardown(() => ds.close());
    await ds.create('/secret', 'x');
    const probe = `
    const fs = require('fs');
    for (const f of ${JSON.stringify([LOCK_FILE, LOG_FILE])}) {
      try { fs.closeSync(fs.openSync(${JSON.stringify(dir)} + '/' + f, 'r')); console.log(f + ' opened'); }
      catch (e) { console.log(f + ' ' + e.code); }
    }`;
    const r = spawnSync(process.execPath, ['-e', probe], { uid: 65534, gid: 65534, encoding: 'utf8' });
    t.equal(r.status, 0, r.stderr);
    t.same(r.stdout.trim().split('\n'), [`${LOCK_FILE} EACCES`, `${LOG_FILE} EACCES`], 'nobody gets EACCES for both');
  },
);

t.test(
  'a store directory owned by another user is refused',
  { skip: process.getuid?.() !== 0 ? 'needs root to chown' : false },
  async (t) => {
    const dir = path.join(tmpdir(t), 'store');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, 65534, 65534);
    let err: unknown;
    try {
      new FileDatastore(dir);
    } catch (e) {
      err = e;
    }
    t.match(String(err), /belongs to uid 65534/, String(err));
  },
);
