// File store group commit: concurrent writes of one process share one fdatasync made off the event loop,
// a write is acknowledged only after a sync that covers it returned, a failed sync fails its whole group,
// and compare-and-swap inside one group is decided record by record. The fdatasync calls are counted
// (and, for two tests, held or failed) by wrapping node:fs's own functions — the real sync still runs.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileDatastore } from '../../../src/datastore/file.js';
import { DatastoreConflict, DatastoreUnavailable } from '../../../src/datastore/types.js';
import { runTag } from '../../helpers/run-tag.js';
import { waitFor } from '../../helpers/netns.js';

const tag = `${runTag()}dsc`;
function tmpdir(t: { teardown(fn: () => unknown): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

type SyncCb = (err: NodeJS.ErrnoException | null) => void;

/** Count fdatasync calls (async and sync) until the teardown; `hold` decides what an async call does. */
function countSyncs(t: { teardown(fn: () => unknown): void }, hold?: (fd: number, cb: SyncCb, real: () => void) => void) {
  const realAsync = fs.fdatasync;
  const realSync = fs.fdatasyncSync;
  const n = { async: 0, sync: 0 };
  (fs as { fdatasync: unknown }).fdatasync = (fd: number, cb: SyncCb) => {
    n.async++;
    if (hold) hold(fd, cb, () => realAsync(fd, cb));
    else realAsync(fd, cb);
  };
  (fs as { fdatasyncSync: unknown }).fdatasyncSync = (fd: number) => {
    n.sync++;
    realSync(fd);
  };
  t.teardown(() => {
    (fs as { fdatasync: unknown }).fdatasync = realAsync;
    (fs as { fdatasyncSync: unknown }).fdatasyncSync = realSync;
  });
  return n;
}

t.test('8 concurrent writes share fdatasyncs made off the event loop, and all are durable', async (t) => {
  const dir = tmpdir(t);
  const ds = new FileDatastore(dir, { fsync: true });
  t.teardown(() => ds.close());
  await ds.create('/warm', 0); // the store is open and written once before counting
  const n = countSyncs(t);
  const kvs = await Promise.all(Array.from({ length: 8 }, (_, i) => ds.create(`/pod/${i}`, { i })));
  t.same(new Set(kvs.map((kv) => kv.revision)).size, 8, 'eight distinct revisions');
  t.equal(n.sync, 0, 'no synchronous fdatasync on the write path (the event loop is not blocked)');
  t.ok(n.async >= 1 && n.async < 8, `8 concurrent writes took ${n.async} fdatasync(s), fewer than 8`);
  t.ok(n.async <= 2, `at most 2 groups: ${n.async}`);
  const fresh = new FileDatastore(dir, { fsync: true });
  t.teardown(() => fresh.close());
  const l = await fresh.list('/pod/');
  t.equal(l.items.length, 8, 'a fresh process sees all 8');
  t.equal(l.revision, 9);
});

t.test('a write resolves only after the fdatasync covering it returned (visible before, acknowledged after)', async (t) => {
  const dir = tmpdir(t);
  const ds = new FileDatastore(dir, { fsync: true });
  t.teardown(() => ds.close());
  const held: (() => void)[] = [];
  countSyncs(t, (_fd, _cb, real) => held.push(real));
  let acked = 0;
  const writes = Array.from({ length: 3 }, (_, i) => ds.create(`/k${i}`, i).then(() => acked++));
  const other = new FileDatastore(dir, { fsync: true });
  t.teardown(() => other.close());
  await waitFor(async () => (await other.revision()) >= 1, 20_000, 20);
  await new Promise((r) => setTimeout(r, 200));
  t.ok((await other.revision()) >= 1, 'the appended record is readable by another process');
  t.equal(acked, 0, 'nothing acknowledged while its fdatasync is held');
  // Release syncs as they come (the first group, then the one queued behind it).
  while (acked < 3) {
    const r = held.shift();
    if (r) r();
    await new Promise((res) => setTimeout(res, 10));
  }
  await Promise.all(writes);
  t.equal(acked, 3);
});

t.test('a failed fdatasync fails every write of its group; the store keeps working', async (t) => {
  const dir = tmpdir(t);
  const ds = new FileDatastore(dir, { fsync: true });
  t.teardown(() => ds.close());
  await ds.create('/warm', 0);
  let fail = true;
  countSyncs(t, (_fd, cb, real) => {
    if (fail) setImmediate(() => cb(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })));
    else real();
  });
  const rs = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => ds.create(`/g${i}`, i)));
  for (const r of rs) {
    t.equal(r.status, 'rejected');
    if (r.status === 'rejected') {
      t.type(r.reason, DatastoreUnavailable);
      t.match(String(r.reason.message), /fdatasync .* failed \(EIO\): the write is visible but may not survive a crash/);
    }
  }
  fail = false;
  const kv = await ds.create('/after', 1);
  t.equal(kv.revision, 6, 'the next write follows the four that are visible');
});

t.test('compare-and-swap inside one group: the second update of the same revision conflicts', async (t) => {
  const dir = tmpdir(t);
  const ds = new FileDatastore(dir, { fsync: true });
  t.teardown(() => ds.close());
  const kv = await ds.create('/cas', 0);
  const n = countSyncs(t);
  const rs = await Promise.allSettled([ds.update('/cas', 1, kv.revision), ds.update('/cas', 2, kv.revision), ds.create('/cas', 3)]);
  t.equal(rs[0]!.status, 'fulfilled', 'the first update wins');
  t.ok(rs[1]!.status === 'rejected' && rs[1].reason instanceof DatastoreConflict, 'the second gets DatastoreConflict');
  t.ok(rs[2]!.status === 'rejected' && /exists/i.test(String(rs[2].reason)), 'create of an existing key is refused');
  t.equal(n.async, 1, 'one fdatasync for the one record appended');
  t.equal((await ds.get('/cas'))!.value, 1);
});
