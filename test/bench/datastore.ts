// Datastore benchmark (prints figures, asserts nothing): cost of one compare-and-swap on each backend,
// alone and with 8 processes hammering one key (the CNI benchmark's 8-concurrent shape).
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

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tabby-bench-ds-'));
const teardowns: (() => unknown)[] = [];
try {
  console.log(
    `load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}, ${os.cpus().length} cpus`,
  );
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
