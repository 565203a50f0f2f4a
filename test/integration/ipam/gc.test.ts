// IPAM garbage collection across processes, as the agents run it: three collectors on one file store;
// a deleted Node's addresses are free again within the grace period; kill -9 the lease holder and
// another collector takes over and collects the next deleted Node.
import { GC_LEASE_KEY, NODES_PREFIX, POOLS_PREFIX } from '../../../src/datastore/keys.js';
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FileDatastore } from '../../../src/datastore/file.js';
import { Ipam } from '../../../src/ipam/index.js';
import { runTag } from '../../helpers/run-tag.js';

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../helpers/ipam-gc-worker.js');
const GRACE_MS = 1500;
const LEASE_MS = 2000;

t.test('three collectors: one collects, a killed holder is replaced', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}igc-`));
  const procs = new Map<string, ChildProcess>();
  t.teardown(() => {
    for (const p of procs.values()) p.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const ds = new FileDatastore(dir);
  t.teardown(() => ds.close());
  await ds.create(`${POOLS_PREFIX}p`, { metadata: { name: 'p' }, spec: { cidr: '10.40.0.0/24', blockSize: 26 } });
  for (const n of ['node-1', 'node-2', 'node-3', 'node-4', 'node-5'])
    await ds.create(`${NODES_PREFIX}${n}`, { metadata: { name: n }, spec: {} });
  const ipam = new Ipam(ds);
  for (const n of ['node-1', 'node-4', 'node-5']) await ipam.autoAssign({ handle: `k8s.${n}`, node: n, num4: 2, attrs: { node: n } });
  for (const n of ['node-1', 'node-2', 'node-3'])
    procs.set(n, spawn(process.execPath, [WORKER, dir, n, String(GRACE_MS), String(LEASE_MS)], { stdio: 'ignore' }));
  const holder = async () => (await ds.get<{ holder: string }>(GC_LEASE_KEY))?.value.holder;
  const until = async (what: () => Promise<boolean>, ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await what()) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };

  t.ok(await until(async () => (await holder()) !== undefined, 30_000), `a collector holds the lease: ${await holder()}`);
  const first = (await holder())!;
  const t0 = Date.now();
  await ds.delete(`${NODES_PREFIX}node-4`);
  t.ok(await until(async () => (await ipam.ipsByHandle('k8s.node-4')).length === 0, 30_000), "node-4's 2 addresses are free again");
  const took = Date.now() - t0;
  t.ok(took >= GRACE_MS, `not before the grace period (${took} ms >= ${GRACE_MS} ms)`);
  t.comment(`deleted node collected after ${took} ms (grace ${GRACE_MS} ms, interval ${LEASE_MS / 5} ms)`);
  // The collector frees the addresses, then the block and its affinity: poll for the second step too.
  t.ok(await until(async () => (await ipam.store.listAffinities('node-4')).length === 0, 10_000), 'its affinity is gone');
  t.equal((await ipam.ipsByHandle('k8s.node-1')).length, 2, 'a live node keeps its addresses');

  procs.get(first)!.kill('SIGKILL');
  procs.delete(first);
  const t1 = Date.now();
  t.ok(
    await until(async () => {
      const h = await holder();
      return h !== undefined && h !== first;
    }, 30_000),
    `another collector took over: ${await holder()}`,
  );
  t.comment(`lease taken over ${Date.now() - t1} ms after the holder was killed (lease ${LEASE_MS} ms)`);
  await ds.delete(`${NODES_PREFIX}node-5`);
  t.ok(await until(async () => (await ipam.ipsByHandle('k8s.node-5')).length === 0, 30_000), 'the new holder collects node-5');
  // The collection is several CAS steps (addresses, handle, affinity, block): poll until it has finished.
  const clean = async () => {
    const r = await ipam.check();
    return [r.blocksOfGoneNodes, r.affinitiesOfGoneNodes, r.leaked, r.handleMismatches].every((x) => x.length === 0);
  };
  t.ok(await until(clean, 30_000), `ipam check is clean: ${JSON.stringify(await ipam.check())}`);
});
