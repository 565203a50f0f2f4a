// The one datastore conformance suite: every backend (memory, file, etcd) must pass all of it.
// Backends that exist across processes (file, etcd) also run the multi-process checks with real
// child processes (test/helpers/datastore-worker.ts).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import {
  DatastoreCompacted,
  DatastoreConflict,
  DatastoreExists,
  DatastoreNotFound,
  type Datastore,
  type DatastoreConfig,
  type WatchEvent,
} from '../../../src/datastore/index.js';

export interface Backend {
  name: string;
  /** A new client on the same store (a second "process" view for file/etcd, the same store for memory). */
  open(): Promise<Datastore>;
  /** When set, the store can be opened by child processes with this config. */
  processConfig?: DatastoreConfig;
  /** Make history before `revision` unavailable (compaction), when the backend can. */
  compact?(ds: Datastore, revision: number): Promise<void>;
}

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../helpers/datastore-worker.js');

export interface WorkerResult {
  conflicts: number;
  ms: number;
  p50: number;
  p99: number;
  max: number;
}

export function runWorker(cfg: DatastoreConfig, args: string[]): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [WORKER, JSON.stringify(cfg), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '',
      err = '';
    c.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    c.once('error', reject);
    c.once('exit', (code) => {
      if (code !== 0) reject(new Error(`worker ${args.join(' ')} exited ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as WorkerResult);
    });
  });
}

/** Collect `n` events from a watch (or fail after timeoutMs). */
export async function collect<T>(ds: Datastore, prefix: string, from: number, n: number, timeoutMs = 10_000): Promise<WatchEvent<T>[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const out: WatchEvent<T>[] = [];
  try {
    for await (const ev of ds.watch<T>(prefix, from, ac.signal)) {
      out.push(ev);
      if (out.length >= n) break;
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}

const summary = (evs: WatchEvent[]) => evs.map((e) => `${e.type} ${e.key}${e.type === 'put' ? `=${JSON.stringify(e.value)}` : ''}`);

export function conformance(t: Test, b: Backend): void {
  let n = 0;
  const fresh = () => `/conf/${b.name}/${process.pid}-${++n}/`;

  t.test(`${b.name}: create, get, create-exists`, async (t) => {
    const ds = await b.open();
    t.teardown(() => ds.close());
    const p = fresh();
    t.equal(await ds.get(`${p}a`), undefined, 'missing key is undefined');
    const before = await ds.revision();
    const value = { s: 'héllo ✓', n: [1, 2, { x: null }], b: true };
    const kv = await ds.create(`${p}a`, value);
    t.ok(kv.revision > before, 'create bumps the store revision');
    t.equal(await ds.revision(), kv.revision, 'store revision is the last write');
    const got = await ds.get(`${p}a`);
    t.same(got, { key: `${p}a`, value, revision: kv.revision }, 'value round-trips');
    const err = await ds.create(`${p}a`, { other: 1 }).catch((e: unknown) => e);
    t.ok(err instanceof DatastoreExists, 'second create fails with DatastoreExists');
    t.equal((err as DatastoreExists).code, 'EEXIST');
    t.same((await ds.get(`${p}a`))?.value, value, 'the failed create changed nothing');
    t.equal(await ds.revision(), kv.revision, 'nor the revision');
  });

  t.test(`${b.name}: update is a compare-and-swap`, async (t) => {
    const ds = await b.open();
    t.teardown(() => ds.close());
    const k = `${fresh()}k`;
    const r1 = (await ds.create(k, 1)).revision;
    const r2 = (await ds.update(k, 2, r1)).revision;
    t.ok(r2 > r1);
    const err = await ds.update(k, 3, r1).catch((e: unknown) => e);
    t.ok(err instanceof DatastoreConflict, 'stale revision → DatastoreConflict');
    t.equal((err as DatastoreConflict).expectedRevision, r1);
    t.equal((err as DatastoreConflict).actualRevision, r2);
    t.same(await ds.get(k), { key: k, value: 2, revision: r2 }, 'stale update changed nothing');
    const nf = await ds.update(`${k}-missing`, 1, r2).catch((e: unknown) => e);
    t.ok(nf instanceof DatastoreNotFound, 'update of a missing key → DatastoreNotFound');
  });

  t.test(`${b.name}: delete, with and without CAS`, async (t) => {
    const ds = await b.open();
    t.teardown(() => ds.close());
    const p = fresh();
    const r1 = (await ds.create(`${p}x`, 'x')).revision;
    await ds.update(`${p}x`, 'x2', r1);
    const stale = await ds.delete(`${p}x`, r1).catch((e: unknown) => e);
    t.ok(stale instanceof DatastoreConflict, 'delete at a stale revision → DatastoreConflict');
    t.equal((await ds.get(`${p}x`))?.value, 'x2', 'still there');
    const cur = (await ds.get(`${p}x`))!;
    await ds.delete(`${p}x`, cur.revision);
    t.equal(await ds.get(`${p}x`), undefined, 'gone after CAS delete');
    t.ok((await ds.delete(`${p}x`).catch((e: unknown) => e)) instanceof DatastoreNotFound, 'delete of a missing key → DatastoreNotFound');
    await ds.create(`${p}y`, 'y');
    await ds.delete(`${p}y`);
    t.equal(await ds.get(`${p}y`), undefined, 'unconditional delete');
    await ds.create(`${p}x`, 'again');
    t.equal((await ds.get(`${p}x`))?.value, 'again', 'a deleted key can be created again');
  });

  t.test(`${b.name}: commit writes several keys all or nothing`, async (t) => {
    const ds = await b.open();
    t.teardown(() => ds.close());
    const p = fresh();
    const ra = (await ds.create(`${p}a`, 'a1')).revision;
    const rd = (await ds.create(`${p}d`, 'd')).revision;
    const from = (await ds.revision()) + 1;
    // A failing condition anywhere in the list: nothing is written, the error names the key.
    const before = await ds.revision();
    for (const [ops, type, key] of [
      [
        [
          { op: 'create', key: `${p}n`, value: 1 },
          { op: 'create', key: `${p}a`, value: 2 },
        ],
        DatastoreExists,
        `${p}a`,
      ],
      [
        [
          { op: 'create', key: `${p}n`, value: 1 },
          { op: 'update', key: `${p}a`, value: 2, expectedRevision: ra + 1000 },
        ],
        DatastoreConflict,
        `${p}a`,
      ],
      [
        [
          { op: 'update', key: `${p}a`, value: 2, expectedRevision: ra },
          { op: 'delete', key: `${p}missing` },
        ],
        DatastoreNotFound,
        `${p}missing`,
      ],
    ] as const) {
      const err = await ds.commit(ops as never).catch((e: unknown) => e);
      t.ok(err instanceof type, `${type.name} for ${key}`);
      t.equal((err as { key?: string }).key, key, 'the error names the key whose condition failed');
    }
    t.equal(await ds.get(`${p}n`), undefined, 'a failed commit created nothing');
    t.equal((await ds.get(`${p}a`))?.value, 'a1', 'nor updated anything');
    t.equal(await ds.revision(), before, 'nor moved the revision');
    const revs = await ds.commit([
      { op: 'create', key: `${p}n`, value: { x: 1 } },
      { op: 'update', key: `${p}a`, value: 'a2', expectedRevision: ra },
      { op: 'delete', key: `${p}d`, expectedRevision: rd },
    ]);
    t.equal(revs.length, 3, 'one revision per operation');
    const n1 = await ds.get(`${p}n`);
    const a2 = await ds.get(`${p}a`);
    t.same(n1?.value, { x: 1 }, 'created');
    t.equal(a2?.value, 'a2', 'updated');
    t.equal(await ds.get(`${p}d`), undefined, 'deleted');
    t.equal(n1?.revision, revs[0], "the create's revision is the key's");
    t.equal(a2?.revision, revs[1], "the update's revision is the key's (usable for the next CAS)");
    await ds.update(`${p}a`, 'a3', revs[1]!);
    const evs = await collect(ds, p, from, 4);
    t.same(
      summary(evs),
      [`put ${p}n={"x":1}`, `put ${p}a="a2"`, `delete ${p}d`, `put ${p}a="a3"`],
      'a watch sees every key of the commit, in order, then what follows',
    );
    const twice = await ds
      .commit([
        { op: 'create', key: `${p}z`, value: 1 },
        { op: 'delete', key: `${p}z` },
      ])
      .catch((e: unknown) => e);
    t.ok(twice instanceof TypeError, 'a key named twice is refused');
  });

  t.test(`${b.name}: list by prefix, sorted, with the store revision`, async (t) => {
    const ds = await b.open();
    t.teardown(() => ds.close());
    const p = fresh();
    for (const k of ['b', 'a', 'c/d', 'c']) await ds.create(`${p}${k}`, k);
    await ds.create(`${p.slice(0, -1)}X/z`, 'outside'); // same string start without the slash
    const l = await ds.list<string>(p);
    t.same(
      l.items.map((i) => i.key.slice(p.length)),
      ['a', 'b', 'c', 'c/d'],
    );
    t.same(
      l.items.map((i) => i.value),
      ['a', 'b', 'c', 'c/d'],
    );
    t.equal(l.revision, await ds.revision());
    t.ok(l.items.every((i) => i.revision <= l.revision && i.revision > 0));
    t.same((await ds.list(`${p}nothing/`)).items, []);
  });

  t.test(`${b.name}: watch from a revision is ordered, complete and resumable`, async (t) => {
    const ds = await b.open();
    t.teardown(() => ds.close());
    const p = fresh();
    const start = (await ds.list(p)).revision + 1;
    const a1 = await ds.create(`${p}a`, 1);
    await ds.create(`${fresh()}other`, 'not under the prefix');
    const a2 = await ds.update(`${p}a`, 2, a1.revision);
    await ds.create(`${p}b`, 'b');
    await ds.delete(`${p}a`, a2.revision);
    const all = await collect<number | string>(ds, p, start, 4);
    t.same(summary(all), [`put ${p}a=1`, `put ${p}a=2`, `put ${p}b="b"`, `delete ${p}a`]);
    t.ok(
      all.every((e, i) => i === 0 || e.revision > all[i - 1]!.revision),
      'revisions increase',
    );
    t.equal(all[1]!.revision, a2.revision);
    const second = all[1]! as Extract<WatchEvent, { type: 'put' }>;
    t.equal(second.previous, 1, 'an update carries the previous value');
    t.equal((all[3]! as Extract<WatchEvent, { type: 'delete' }>).previous, 2, 'a delete carries the last value');
    // Resume after the second event: exactly the rest, nothing twice.
    const rest = await collect(ds, p, all[1]!.revision + 1, 2);
    t.same(summary(rest), summary(all.slice(2)));
    // Live events arrive after the watch started.
    const live = collect<string>(ds, p, (await ds.revision()) + 1, 2);
    await new Promise((r) => setTimeout(r, 50));
    await ds.create(`${p}c`, 'c');
    await ds.create(`${p}d`, 'd');
    t.same(summary(await live), [`put ${p}c="c"`, `put ${p}d="d"`]);
  });

  t.test(`${b.name}: watch seen by a second client; abort ends it`, async (t) => {
    const writer = await b.open();
    const reader = await b.open();
    t.teardown(async () => {
      await writer.close();
      await reader.close();
    });
    const p = fresh();
    const from = (await reader.revision()) + 1;
    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const ev of reader.watch<string>(p, from, ac.signal)) {
        seen.push(ev.key.slice(p.length));
        if (seen.length === 3) ac.abort();
      }
    })();
    for (const k of ['1', '2', '3']) await writer.create(`${p}${k}`, k);
    await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error('watch did not end after abort')), 10_000))]);
    t.same(seen, ['1', '2', '3']);
  });

  if (b.compact) {
    const compact = b.compact.bind(b);
    t.test(`${b.name}: a watch from before the compaction fails with DatastoreCompacted`, async (t) => {
      const ds = await b.open();
      t.teardown(() => ds.close());
      const p = fresh();
      const first = await ds.create(`${p}k`, 0);
      let kv = first;
      for (let i = 1; i <= 20; i++) kv = await ds.update(`${p}k`, i, kv.revision);
      await compact(ds, kv.revision);
      const err = await collect(ds, p, first.revision, 1).catch((e: unknown) => e);
      t.ok(err instanceof DatastoreCompacted, `DatastoreCompacted (${String(err)})`);
      t.equal((err as DatastoreCompacted).code, 'ECOMPACTED');
      t.same(await ds.get(`${p}k`), kv, 'current data survives compaction');
      const after = collect<number>(ds, p, kv.revision + 1, 1);
      await ds.update(`${p}k`, 99, kv.revision);
      t.same(summary(await after), [`put ${p}k=99`], 'a watch from after the compaction works');
    });
  }

  const cfg = b.processConfig;
  t.test(`${b.name}: 8 concurrent writers × 200 CAS increments end at exactly 1600`, async (t) => {
    const ds = await b.open();
    t.teardown(() => ds.close());
    const k = `${fresh()}counter`;
    await ds.create(k, 0);
    const t0 = performance.now();
    let conflicts = 0;
    if (cfg) {
      const results = await Promise.all(Array.from({ length: 8 }, () => runWorker(cfg, ['inc', k, '200'])));
      conflicts = results.reduce((s, r) => s + r.conflicts, 0);
    } else {
      // In-process store: 8 concurrent async writers on their own clients.
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const c = await b.open();
          for (let i = 0; i < 200; i++) {
            for (;;) {
              const cur = (await c.get<number>(k))!;
              try {
                await c.update(k, cur.value + 1, cur.revision);
                break;
              } catch (e) {
                if (!(e instanceof DatastoreConflict)) throw e;
                conflicts++;
              }
            }
          }
        }),
      );
    }
    const ms = performance.now() - t0;
    t.equal(
      (await ds.get<number>(k))?.value,
      1600,
      `exactly 1600 (${cfg ? '8 processes' : '8 in-process writers'}, ${conflicts} conflicts retried, ${ms.toFixed(0)} ms)`,
    );
    t.comment(
      `${b.name}: 1600 CAS increments in ${ms.toFixed(0)} ms (${(ms / 1600).toFixed(2)} ms each incl. process start), ${conflicts} conflicts`,
    );
  });

  if (cfg) {
    t.test(`${b.name}: a watch sees another process's writes`, async (t) => {
      const ds = await b.open();
      t.teardown(() => ds.close());
      const p = fresh();
      const from = (await ds.revision()) + 1;
      const got = collect<{ i: number; pid: number }>(ds, p, from, 5, 15_000);
      await runWorker(cfg, ['put', p, '5']);
      const evs = await got;
      t.same(
        evs.map((e) => e.key.slice(p.length)),
        ['0', '1', '2', '3', '4'],
      );
      t.ok(
        evs.every((e) => e.type === 'put' && e.value.pid !== process.pid),
        'written by the child',
      );
    });
  }
}
