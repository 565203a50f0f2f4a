// The file store on a real small tmpfs: no space mid-compaction and mid-append, and a read-only mount.
// Root (mount). What an operator checks: a fresh process sees every acknowledged write, errors are
// specific, no temp file is left.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { FileDatastore, LOG_FILE } from '../../../src/datastore/file.js';
import { DatastoreUnavailable } from '../../../src/datastore/types.js';
import { runTag } from '../../helpers/run-tag.js';

const root = process.getuid?.() === 0;
const tag = `${runTag()}dff`;

function tmpfs(t: { teardown(fn: () => unknown): void }, sizeKiB: number): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tabbytest', d]);
  t.teardown(() => {
    try {
      execFileSync('umount', ['-l', d]);
    } catch {
      /* already */
    }
    fs.rmSync(d, { recursive: true, force: true });
  });
  return d;
}

/** Fill the file system until `leaveBytes` (rounded to pages) are free. */
function fill(mnt: string, leaveBytes: number): string {
  const filler = path.join(mnt, 'filler');
  const fd = fs.openSync(filler, 'w');
  const chunk = Buffer.alloc(4096, 0x61);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  }
  const size = fs.fstatSync(fd).size;
  fs.ftruncateSync(fd, Math.max(0, size - Math.ceil(leaveBytes / 4096) * 4096));
  fs.closeSync(fd);
  return filler;
}

const value = (i: number) => ({ i, pad: 'p'.repeat(600) });
const tempFiles = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));

t.test(
  'no space for the snapshot: compaction fails, the old log and every key stay',
  { skip: root ? false : 'needs root (mount tmpfs)' },
  async (t) => {
    const mnt = tmpfs(t, 512);
    const dir = path.join(mnt, 'store');
    const ds = new FileDatastore(dir, { fsync: false, compactBytes: 1 << 20 });
    t.teardown(() => ds.close());
    for (let i = 0; i < 30; i++) await ds.create(`/k/${i}`, value(i));
    const logSize = fs.statSync(path.join(dir, LOG_FILE)).size;
    t.ok(logSize > 18_000, `log is ${logSize} bytes`);
    fill(mnt, 8192);

    const err = await ds.compact().catch((e: unknown) => e);
    t.ok(err instanceof DatastoreUnavailable, `an explicit compaction says it failed: ${String(err)}`);
    t.match(String(err), /ENOSPC/);
    t.equal(fs.statSync(path.join(dir, LOG_FILE)).size, logSize, 'the log is untouched');
    t.same(tempFiles(dir), [], 'no temp file left behind');
    const fresh = new FileDatastore(dir, { fsync: false });
    t.teardown(() => fresh.close());
    t.equal((await fresh.list('/k/')).items.length, 30, 'a fresh process sees all 30 keys');
    t.equal(await fresh.revision(), 30);
  },
);

t.test(
  'no space when a write triggers compaction: the write is acknowledged and kept',
  { skip: root ? false : 'needs root (mount tmpfs)' },
  async (t) => {
    const mnt = tmpfs(t, 512);
    const dir = path.join(mnt, 'store');
    const ds = new FileDatastore(dir, { fsync: false, compactBytes: 16_000 });
    t.teardown(() => ds.close());
    for (let i = 0; i < 20; i++) await ds.create(`/k/${i}`, value(i)); // ~13 KB: under the threshold
    fill(mnt, 8192);
    const acked: number[] = [];
    const failed: string[] = [];
    for (let i = 20; i < 30; i++) {
      try {
        await ds.create(`/k/${i}`, value(i));
        acked.push(i);
      } catch (e) {
        failed.push(String(e));
      }
    }
    t.ok(acked.length >= 4, `${acked.length} writes acknowledged past the compaction threshold`);
    t.ok(
      failed.every((f) => /ENOSPC/.test(f)),
      `failures (if any) are out-of-space appends: ${failed[0] ?? 'none'}`,
    );
    // The compaction runs behind the writes: its failed snapshot is removed when it gives up.
    for (const end = Date.now() + 30_000; tempFiles(dir).length > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    t.same(tempFiles(dir), [], 'no temp file left behind');
    const fresh = new FileDatastore(dir, { fsync: false });
    t.teardown(() => fresh.close());
    const keys = new Set((await fresh.list('/k/')).items.map((kv) => kv.key));
    t.same(
      acked.filter((i) => !keys.has(`/k/${i}`)),
      [],
      'every acknowledged write is there',
    );
    t.equal(keys.size, 20 + acked.length, 'and nothing that was refused');
  },
);

t.test(
  'no space mid-append: the write fails with ENOSPC, nothing half-written, writes resume with space',
  { skip: root ? false : 'needs root (mount tmpfs)' },
  async (t) => {
    const mnt = tmpfs(t, 256);
    const dir = path.join(mnt, 'store');
    const ds = new FileDatastore(dir, { fsync: false });
    t.teardown(() => ds.close());
    let kv = await ds.create('/big', { n: 0 });
    const filler = fill(mnt, 0);
    const size = fs.statSync(path.join(dir, LOG_FILE)).size;
    const err = await ds.update('/big', { n: 1, pad: 'x'.repeat(20_000) }, kv.revision).catch((e: unknown) => e);
    t.ok(err instanceof DatastoreUnavailable, String(err));
    t.match(String(err), /ENOSPC/);
    t.match(String(err), /not made/);
    t.equal(fs.statSync(path.join(dir, LOG_FILE)).size, size, 'the partial record was cut off');
    t.same(await ds.get('/big'), kv, 'the writer did not apply it');
    fs.unlinkSync(filler);
    kv = await ds.update('/big', { n: 2 }, kv.revision);
    const fresh = new FileDatastore(dir, { fsync: false });
    t.teardown(() => fresh.close());
    t.same(await fresh.get('/big'), kv, 'the next write lands right after the last good record');
    t.equal(kv.revision, 2);
  },
);

t.test('a read-only mount: readers work, writes are refused saying so', { skip: root ? false : 'needs root (mount)' }, async (t) => {
  const mnt = tmpfs(t, 256);
  const dir = path.join(mnt, 'store');
  const ro = path.join(mnt, 'ro');
  const w = new FileDatastore(dir, { fsync: false });
  t.teardown(() => w.close());
  await w.create('/a', 1);
  fs.mkdirSync(ro);
  execFileSync('mount', ['--bind', dir, ro]);
  t.teardown(() => {
    try {
      // lazy: the reader's files may still be closing (a plain umount then said "target is busy")
      execFileSync('umount', ['-l', ro]);
    } catch {
      /* gone */
    }
  });
  execFileSync('mount', ['-o', 'remount,ro,bind', ro]);
  const r = new FileDatastore(ro, { fsync: false });
  t.teardown(() => r.close());
  t.equal((await r.get('/a'))?.value, 1, 'reads work');
  const err = await r.create('/b', 2).catch((e: unknown) => e);
  t.ok(err instanceof DatastoreUnavailable, String(err));
  t.match(String(err), /read-only/);
  await w.create('/c', 3);
  t.equal((await r.get('/c'))?.value, 3, 'the read-only process follows writes made elsewhere');
  const cerr = await r.compact().catch((e: unknown) => e);
  t.ok(cerr instanceof DatastoreUnavailable, 'compaction refused too');
});
