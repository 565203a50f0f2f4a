// File backend specifics: torn writes, crashed writers, compaction seen by other clients, the lock.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FileDatastore, LOG_FILE, LOCK_FILE } from '../../../src/datastore/file.js';
import { DatastoreCompacted, DatastoreUnavailable } from '../../../src/datastore/types.js';
import { native } from '../../../src/native/index.js';
import { runTag } from '../../helpers/run-tag.js';
import { waitFor } from '../../helpers/netns.js';

const tag = `${runTag()}dsf`;
const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../helpers/datastore-worker.js');
function tmpdir(t: { teardown(fn: () => unknown): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('a torn last record is invisible, and the next writer cuts it off', async (t) => {
  const dir = tmpdir(t);
  const a = new FileDatastore(dir);
  t.teardown(() => a.close());
  await a.create('/k', 'v1');
  // A writer died mid-write: half a record, no newline.
  fs.appendFileSync(path.join(dir, LOG_FILE), '0badc0de {"o":"put","r":2,"k":"/k","v":"hal');
  const b = new FileDatastore(dir);
  t.teardown(() => b.close());
  t.same(await b.get('/k'), { key: '/k', value: 'v1', revision: 1 }, 'reader sees the last complete value');
  t.equal(await b.revision(), 1);
  const kv = await b.update('/k', 'v2', 1);
  t.equal(kv.revision, 2);
  const c = new FileDatastore(dir);
  t.teardown(() => c.close());
  t.same(await c.get('/k'), { key: '/k', value: 'v2', revision: 2 }, 'a fresh reader replays cleanly');
  t.notOk(fs.readFileSync(path.join(dir, LOG_FILE), 'utf8').includes('hal'), 'torn bytes are gone');
  // A record with a bad checksum (bit rot in the tail) is treated the same way.
  fs.appendFileSync(path.join(dir, LOG_FILE), '00000000 {"o":"put","r":3,"k":"/k","v":"evil"}\n');
  t.equal((await c.get('/k'))?.value, 'v2', 'bad CRC is not applied');
});

t.test('a writer killed mid-run leaves a consistent store', async (t) => {
  const dir = tmpdir(t);
  const ds = new FileDatastore(dir);
  t.teardown(() => ds.close());
  await ds.create('/n', 0);
  const child = spawn(process.execPath, [WORKER, JSON.stringify({ type: 'file', dir }), 'inc', '/n', '1000000'], { stdio: 'ignore' });
  const deadline = Date.now() + 60_000; // generous: a loaded CI machine starts node slowly
  while (((await ds.get<number>('/n'))?.value ?? 0) < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const fresh = new FileDatastore(dir);
  t.teardown(() => fresh.close());
  const kv = (await fresh.get<number>('/n'))!;
  t.ok(kv.value >= 20, `the child got to ${kv.value} before it was killed`);
  t.equal(kv.revision, kv.value + 1, 'every increment is one complete record');
  const next = await fresh.update('/n', kv.value + 1, kv.revision);
  t.equal(next.revision, kv.revision + 1, 'the lock of the dead writer was released by the kernel');
});

t.test('compaction by one client is followed by the others', async (t) => {
  const dir = tmpdir(t);
  const a = new FileDatastore(dir, { compactBytes: 2000, historyKeep: 10 });
  const b = new FileDatastore(dir);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  let kv = await a.create('/c', 0);
  t.equal((await b.get('/c'))?.value, 0);
  const ino = fs.statSync(path.join(dir, LOG_FILE)).ino;
  for (let i = 1; i <= 100; i++) kv = await a.update('/c', i, kv.revision);
  t.not(fs.statSync(path.join(dir, LOG_FILE)).ino, ino, 'the log was rewritten');
  t.ok(fs.statSync(path.join(dir, LOG_FILE)).size < 4000, 'and stays small');
  t.same(await b.get('/c'), kv, 'b switched to the new log');
  kv = await b.update('/c', 101, kv.revision);
  t.same(await a.get('/c'), kv, "a sees b's write in the new log");
  const fresh = new FileDatastore(dir);
  t.teardown(() => fresh.close());
  t.same(await fresh.get('/c'), kv, 'a fresh client loads snapshot + tail');
  // The fresh client only has the kept window: older watch positions are compacted.
  const err = await (async () => {
    for await (const _ of fresh.watch('/c', 2)) break;
  })().catch((e: unknown) => e);
  t.ok(err instanceof DatastoreCompacted, 'DatastoreCompacted for a position before the window');
  const ac = new AbortController();
  const seen: number[] = [];
  for await (const ev of fresh.watch<number>('/c', kv.revision - 3, ac.signal)) {
    seen.push(ev.revision);
    if (seen.length === 4) ac.abort();
  }
  t.same(seen, [kv.revision - 3, kv.revision - 2, kv.revision - 1, kv.revision], 'the kept window replays');
});

t.test('a held lock delays writers; a lock never released fails with DatastoreUnavailable', async (t) => {
  const dir = tmpdir(t);
  const ds = new FileDatastore(dir, { lockTimeoutMs: 300 });
  t.teardown(() => ds.close());
  const fd = fs.openSync(path.join(dir, LOCK_FILE), 'r+');
  t.teardown(() => fs.closeSync(fd));
  t.ok(native().flock(fd, 'ex'), 'took the lock from outside');
  const t0 = Date.now();
  const err = await ds.create('/x', 1).catch((e: unknown) => e);
  t.ok(err instanceof DatastoreUnavailable, String(err));
  t.ok(Date.now() - t0 >= 250, 'waited for the lock');
  const pending = ds.create('/y', 1);
  setTimeout(() => native().flock(fd, 'un'), 100);
  t.equal((await pending).revision, 1, 'proceeds once the lock is free');
  t.equal(await ds.get('/x'), undefined, 'the timed-out write did nothing');
});

t.test('many in-process writers on two clients never lose an update', async (t) => {
  const dir = tmpdir(t);
  const clients = [new FileDatastore(dir), new FileDatastore(dir)];
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  await clients[0]!.create('/n', 0);
  await Promise.all(
    Array.from({ length: 10 }, async (_, i) => {
      const c = clients[i % 2]!;
      for (let j = 0; j < 50; j++) {
        for (;;) {
          const cur = (await c.get<number>('/n'))!;
          try {
            await c.update('/n', cur.value + 1, cur.revision);
            break;
          } catch {
            /* conflict: retry */
          }
        }
      }
    }),
  );
  t.equal((await clients[1]!.get<number>('/n'))?.value, 500);
});

t.test('a slow watcher loses nothing while its own process trims history and compacts', async (t) => {
  const dir = tmpdir(t);
  const ds = new FileDatastore(dir, { historyKeep: 5, compactBytes: 1000 });
  t.teardown(() => ds.close());
  const first = await ds.create('/w/k', 0);
  const ac = new AbortController();
  const it = ds.watch<number>('/w/', first.revision, ac.signal)[Symbol.asyncIterator]();
  t.equal((await it.next()).value?.value, 0);
  let kv = first;
  // A compaction renames a new file over the log; compared after every write, because a freed inode
  // number comes back (two compactions can end on the inode the test started with).
  let ino = fs.statSync(path.join(dir, LOG_FILE)).ino;
  let compactions = 0;
  for (let i = 1; i <= 200; i++) {
    kv = await ds.update('/w/k', i, kv.revision); // the watcher is not reading
    const now = fs.statSync(path.join(dir, LOG_FILE)).ino;
    if (now !== ino) {
      compactions++;
      ino = now;
    }
  }
  t.ok(compactions > 0, `the log was compacted meanwhile (${compactions} times)`);
  const got: number[] = [];
  for (let i = 1; i <= 200; i++) got.push((await it.next()).value!.value as number);
  t.same(
    got,
    Array.from({ length: 200 }, (_, i) => i + 1),
    'all 200 updates, in order',
  );
  ac.abort();
  await it.return?.();
});

t.test('a watch event copies its value and previous only when read; the copy is the watcher’s own', async (t) => {
  const dir = tmpdir(t);
  const ds = new FileDatastore(dir);
  t.teardown(() => ds.close());
  const first = await ds.create('/w/a', { n: 1, list: [1, 2, 3] });
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const it = ds.watch<{ n: number; list: number[] }>('/w/', first.revision + 1, ac.signal)[Symbol.asyncIterator]();
  const real = globalThis.structuredClone;
  let copies = 0;
  globalThis.structuredClone = ((v: unknown, o?: Parameters<typeof structuredClone>[1]) => {
    copies++;
    return real(v, o);
  }) as typeof structuredClone;
  t.teardown(() => {
    globalThis.structuredClone = real;
  });
  const next = it.next();
  await ds.update('/w/a', { n: 2, list: [4] }, first.revision);
  const ev = (await next).value!;
  t.equal(ev.type, 'put');
  t.equal(copies, 0, 'a watcher that only looks at the key and revision copies nothing');
  if (ev.type !== 'put') return;
  const v = ev.value;
  t.equal(ev.value, v, 'every read of the event gives the same copy');
  t.equal(copies, 1);
  v.n = 99;
  v.list.push(5);
  t.same((await ds.get('/w/a'))?.value, { n: 2, list: [4] }, 'changing the event’s value does not change the store');
  t.same(ev.previous, { n: 1, list: [1, 2, 3] });
  t.same(
    { ...ev },
    { type: 'put', key: '/w/a', revision: first.revision + 1, value: { n: 99, list: [4, 5] }, previous: { n: 1, list: [1, 2, 3] } },
  );
  ev.value = { n: 7, list: [] };
  t.equal(ev.value.n, 7, 'the value can be replaced like a plain field');
});

t.test('a compaction writes and syncs its snapshot off the event loop; writes wait for it, nothing is lost', async (t) => {
  const dir = tmpdir(t);
  const loopRan: Partial<Record<string, boolean>> = {};
  let tick = false;
  const ds = new FileDatastore(dir, {
    compactBytes: 4096,
    onCompactStep: (step) => {
      // The event loop turned since the previous step iff a callback queued then has run.
      loopRan[step] = tick;
      tick = false;
      setImmediate(() => {
        tick = true;
      });
    },
  });
  t.teardown(() => ds.close());
  const big = 'x'.repeat(600);
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < 40; i++) writes.push(ds.create(`/c/${i}`, { big, i }));
  await Promise.all(writes);
  await waitFor(() => loopRan.renamed !== undefined, 20_000, 20);
  t.not(loopRan.renamed, undefined, 'a compaction ran');
  t.equal(loopRan['temp-written'], true, 'the loop ran while the snapshot was written');
  t.equal(loopRan['temp-synced'], true, 'the loop ran while the snapshot was synced');
  const more = await Promise.all(Array.from({ length: 10 }, (_, i) => ds.create(`/d/${i}`, i)));
  t.equal(more.length, 10);
  const other = new FileDatastore(dir);
  t.teardown(() => other.close());
  t.equal((await other.list('/c/')).items.length, 40, 'every write before the compaction is there');
  t.equal((await other.list('/d/')).items.length, 10, 'and every write after it');
});

t.test("a snapshot's history writes each value once; a process that loads it sees every previous value", async (t) => {
  const dir = tmpdir(t);
  const a = new FileDatastore(dir, { compactBytes: 1 << 30 });
  t.teardown(() => a.close());
  const first = await a.create('/b/1', { gen: 0, pad: 'p0'.repeat(500) });
  let rev = first.revision;
  for (let g = 1; g <= 6; g++) rev = (await a.update('/b/1', { gen: g, pad: `p${g}`.repeat(500) }, rev)).revision;
  await a.delete('/b/1', rev);
  await a.create('/b/1', { gen: 7, pad: 'p7'.repeat(500) });
  await a.compact();
  const log = fs.readFileSync(path.join(dir, LOG_FILE), 'utf8');
  for (let g = 0; g <= 7; g++)
    t.equal(
      log.split(`p${g}`.repeat(500)).length - 1,
      g === 7 ? 2 : 1,
      `value ${g} is written ${g === 7 ? 'twice (key and history)' : 'once'}`,
    );
  // Another process loads the snapshot and replays the history from the start.
  const b = new FileDatastore(dir);
  t.teardown(() => b.close());
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const got: { type: string; gen?: number; prev?: number }[] = [];
  for await (const ev of b.watch<{ gen: number }>('/b/', first.revision, ac.signal)) {
    got.push({ type: ev.type, ...(ev.type === 'put' ? { gen: ev.value.gen } : {}), ...(ev.previous ? { prev: ev.previous.gen } : {}) });
    if (got.length === 9) break;
  }
  t.same(got, [
    { type: 'put', gen: 0 },
    ...[1, 2, 3, 4, 5, 6].map((g) => ({ type: 'put', gen: g, prev: g - 1 })),
    { type: 'delete', prev: 6 },
    { type: 'put', gen: 7 },
  ]);
});

t.test('list by any prefix finds exactly the keys that start with it, as keys come and go', async (t) => {
  const dir = tmpdir(t);
  const ds = new FileDatastore(dir, { compactBytes: 8192 });
  t.teardown(() => ds.close());
  const keys = new Set<string>();
  const parts = ['a', 'ab', 'b', 'a/b', ''];
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const keyOf = (): string => `/${parts[rnd(5)]}/${parts[rnd(5)]}${rnd(4)}${rnd(2) ? '/x' : ''}`;
  const prefixes = ['/', '/a', '/a/', '/ab', '/a/b', '/a/b/', '/b/a', '/ab/ab1', '/a/b/x', '/zz', '//', '/a//'];
  for (let round = 0; round < 6; round++) {
    for (let i = 0; i < 40; i++) {
      const k = keyOf();
      if (keys.has(k) && rnd(2)) {
        await ds.delete(k);
        keys.delete(k);
      } else if (!keys.has(k)) {
        await ds.create(k, { round, pad: 'x'.repeat(100) });
        keys.add(k);
      }
    }
    const fresh = new FileDatastore(dir);
    for (const p of prefixes) {
      const want = [...keys].filter((k) => k.startsWith(p)).sort();
      t.same(
        (await ds.list(p)).items.map((i) => i.key),
        want,
        `round ${round}: list ${p}`,
      );
      t.same(
        (await fresh.list(p)).items.map((i) => i.key),
        want,
        `round ${round}: list ${p} in a process that replayed the log`,
      );
    }
    await fresh.close();
  }
});

t.test('writes go on while a compaction writes its snapshot; they are in the compacted log', async (t) => {
  const dir = tmpdir(t);
  const logPath = path.join(dir, LOG_FILE);
  let during: Promise<unknown> | undefined;
  let inLogWhenRenamed: boolean | undefined;
  const ds: FileDatastore = new FileDatastore(dir, {
    compactBytes: 4096,
    onCompactStep: (step) => {
      // The compaction waits here until this write is acknowledged: it must not hold the lock meanwhile.
      if (step === 'temp-written' && !during) return (during = ds.create('/during', { written: 'while the snapshot was' }));
      if (step === 'renamed' && inLogWhenRenamed === undefined) inLogWhenRenamed = fs.readFileSync(logPath, 'utf8').includes('/during');
      return undefined;
    },
  });
  t.teardown(() => ds.close());
  for (let i = 0; i < 40; i++) await ds.create(`/c/${i}`, { pad: 'x'.repeat(200), i });
  await waitFor(() => inLogWhenRenamed !== undefined, 20_000, 20);
  t.ok(during, 'a write started while the snapshot was written');
  await during;
  t.equal(inLogWhenRenamed, true, 'that write was acknowledged before the install and is in the compacted log');
  const other = new FileDatastore(dir);
  t.teardown(() => other.close());
  t.same((await other.get('/during'))?.value, { written: 'while the snapshot was' });
  t.equal((await other.list('/c/')).items.length, 40, 'every write is there');
  t.same(
    fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
    'no temp file left',
  );
});

t.test('a process that read past a compaction’s snapshot keeps its view and its watches (no re-list)', async (t) => {
  const dir = tmpdir(t);
  let b: FileDatastore | undefined;
  let inPhase = false;
  const a: FileDatastore = new FileDatastore(dir, {
    compactBytes: 4096,
    onCompactStep: (step) => {
      if (step !== 'temp-written' || inPhase) return undefined;
      inPhase = true;
      // While the snapshot is written: a write, and the other process reads it from the old log.
      return a.create('/w/during', 1).then(() => b!.get('/w/during'));
    },
  });
  t.teardown(() => a.close());
  b = new FileDatastore(dir);
  t.teardown(() => b!.close());
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const seen: string[] = [];
  const errors: unknown[] = [];
  const watching = (async () => {
    try {
      for await (const ev of b!.watch('/w/', 1, ac.signal)) seen.push(ev.key);
    } catch (e) {
      errors.push(e);
    }
  })();
  for (let i = 0; i < 40; i++) await a.create(`/w/${i}`, { pad: 'x'.repeat(200) });
  await waitFor(() => inPhase, 20_000, 20);
  t.ok(inPhase, 'a compaction ran behind the writes');
  const genBefore = (b as unknown as { s: { generation: number } }).s.generation;
  await a.create('/w/after', 2);
  await waitFor(() => seen.includes('/w/after'), 20_000, 20);
  t.equal((b as unknown as { s: { generation: number } }).s.generation, genBefore, 'the other process kept its view');
  t.same(errors, [], 'its watch went on (no DatastoreCompacted)');
  t.equal(new Set(seen).size, seen.length, 'every event once');
  t.equal(seen.length, 42, 'and every event');
  t.same((await b.list('/w/')).items.length, 42);
  ac.abort();
  await watching;
});
