// Datastore benchmark (prints figures, asserts nothing): cost of one compare-and-swap on each backend,
// alone and with 8 processes hammering one key (the CNI benchmark's 8-concurrent shape); and the file
// store's writes/s on disk (fdatasync on) with 1 and 8 concurrent writers in one process (tabby-node's
// shape: concurrent CNI ADDs), with the event loop's longest stall — for this tree and, when
// BENCH_BEFORE_REPO names a built checkout of an earlier tabby, for that one in the same run, interleaved.
//   node dist/test/bench/datastore.js            (etcd part runs when the etcd binary is installed)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileDatastore, MemoryDatastore, type Datastore, type DatastoreConfig } from '../../src/datastore/index.js';
import { EtcdDatastore } from '../../src/datastore/etcd.js';
import { startEtcd, etcdMissing } from '../helpers/etcd.js';
import { runWorker } from '../integration/datastore/suite.js';

async function single(name: string, ds: Datastore, n = 2000): Promise<void> {
  const k = `/bench/${name}`;
  await ds.create(k, 0);
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const cur = (await ds.get<number>(k))!;
    await ds.update(k, cur.value + 1, cur.revision);
    lat.push(performance.now() - t0);
  }
  lat.sort((a, b) => a - b);
  const p = (q: number) => lat[Math.floor(q * (lat.length - 1))]!.toFixed(3);
  console.log(`${name.padEnd(22)} get+CAS, 1 client:   p50 ${p(0.5)} ms  p99 ${p(0.99)} ms  max ${p(1)} ms  (${n} ops)`);
}

async function concurrent(name: string, ds: Datastore, cfg: DatastoreConfig, procs = 8, each = 200): Promise<void> {
  const k = `/bench/${name}-conc`;
  await ds.create(k, 0);
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: procs }, () => runWorker(cfg, ['inc', k, String(each)])));
  const ms = performance.now() - t0;
  const r = rs;
  const worst = (f: (x: (typeof r)[number]) => number) => Math.max(...r.map(f)).toFixed(2);
  console.log(
    `${name.padEnd(22)} ${procs} procs × ${each}:     worst-process p50 ${worst((x) => x.p50)} ms  p99 ${worst((x) => x.p99)} ms  max ${worst((x) => x.max)} ms; ` +
      `${r.reduce((s, x) => s + x.conflicts, 0)} conflicts; wall ${ms.toFixed(0)} ms; final ${(await ds.get<number>(k))?.value}`,
  );
}

type FileStoreClass = new (dir: string, opts?: { fsync?: boolean }) => Datastore & { fds?: { syncs: number } };

/** Writes/s of `writers` concurrent chains of creates for `ms`, and the event loop's longest stall. */
async function writesPerSecond(name: string, Store: FileStoreClass, dir: string, writers: number, ms = 3000): Promise<number> {
  const ds = new Store(dir, { fsync: true });
  await ds.create('/bench/warm', 0);
  const syncs0 = ds.fds?.syncs ?? 0;
  let stall = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last);
    last = now;
  }, 2);
  let n = 0;
  const t0 = performance.now();
  const chain = async (w: number) => {
    for (let i = 0; performance.now() - t0 < ms; i++) {
      await ds.create(`/bench/w${w}/${i}`, { w, i });
      n++;
    }
  };
  await Promise.all(Array.from({ length: writers }, (_, w) => chain(w)));
  const secs = (performance.now() - t0) / 1000;
  clearInterval(tick);
  stall = Math.max(stall, performance.now() - last); // a loop that never got back to its timers stalled throughout
  const syncs = ds.fds ? `${((ds.fds.syncs - syncs0) / n).toFixed(2)} fdatasync/write` : 'one fdatasync/write';
  console.log(
    `${name.padEnd(22)} ${String(writers).padStart(2)} writer(s): ${(n / secs).toFixed(0).padStart(6)} writes/s  ` +
      `(${n} in ${secs.toFixed(1)} s, ${syncs}, longest event-loop stall ${stall.toFixed(1)} ms)`,
  );
  await ds.close();
  return n / secs;
}

/** The file store on disk, 1 and 8 writers in one process, this tree and (BENCH_BEFORE_REPO) an earlier one. */
async function groupCommit(tmp: string): Promise<void> {
  const variants: [string, FileStoreClass][] = [['file (this tree)', FileDatastore as FileStoreClass]];
  const before = process.env.BENCH_BEFORE_REPO;
  if (before) {
    const mod = (await import(path.resolve(before, 'dist/src/datastore/file.js'))) as { FileDatastore: FileStoreClass };
    variants.push(['file (before)', mod.FileDatastore]);
  } else console.log('file (before): skipped (set BENCH_BEFORE_REPO to a built checkout of an earlier tabby)');
  console.log(`file store on disk (${tmp}), fdatasync on, writers in one process:`);
  const rates = new Map<string, number[]>();
  for (const round of [1, 2, 3]) {
    for (const writers of [1, 8]) {
      for (const [name, Store] of variants) {
        const r = await writesPerSecond(name, Store, path.join(tmp, `gc-${round}-${writers}-${rates.size}-${name.length}`), writers);
        rates.set(`${name} ${writers}`, [...(rates.get(`${name} ${writers}`) ?? []), r]);
      }
    }
  }
  // The median of 3 interleaved rounds: a shared disk's fdatasync latency swings widely between rounds.
  const median = (k: string) => [...(rates.get(k) ?? [Number.NaN])].sort((a, b) => a - b)[1] ?? Number.NaN;
  for (const [name] of variants) {
    console.log(
      `${name.padEnd(22)} 8 writers / 1 writer: ×${(median(`${name} 8`) / median(`${name} 1`)).toFixed(2)} (medians of 3 rounds)`,
    );
  }
  if (before) {
    for (const w of [1, 8])
      console.log(
        `${w} writer(s), this tree / before: ×${(median(`file (this tree) ${w}`) / median(`file (before) ${w}`)).toFixed(2)} (medians)`,
      );
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tabby-bench-ds-'));
const teardowns: (() => unknown)[] = [];
try {
  console.log(
    `load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}, ${os.cpus().length} cpus`,
  );
  await groupCommit(tmp);
  await single('memory', new MemoryDatastore());
  for (const fsync of [true, false]) {
    const dir = path.join(tmp, `file-${fsync}`);
    const ds = new FileDatastore(dir, { fsync });
    await single(`file fsync=${fsync}`, ds);
    // The workers read TABBY_DATASTORE_FSYNC like every tabby process.
    if (fsync) delete process.env.TABBY_DATASTORE_FSYNC;
    else process.env.TABBY_DATASTORE_FSYNC = '0';
    await concurrent(`file fsync=${fsync}`, ds, { type: 'file', dir });
    await ds.close();
  }
  if (!etcdMissing()) {
    const etcd = await startEtcd({
      teardown: (fn) => {
        teardowns.push(fn);
      },
    });
    const ds = new EtcdDatastore(etcd.endpoints);
    await single('etcd (tmpfs)', ds, 500);
    await concurrent('etcd (tmpfs)', ds, { type: 'etcdv3', etcdEndpoints: etcd.endpoints });
    await ds.close();
  } else console.log('etcd: skipped (not installed)');
} finally {
  for (const f of teardowns) await f();
  fs.rmSync(tmp, { recursive: true, force: true });
}
