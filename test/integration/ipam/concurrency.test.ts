// 8 processes × 250 autoAssign against one pool, on the file datastore and on a real etcd:
// 2000 distinct addresses, no duplicates, every block's allocations equal the handles that reference it.
import { POOLS_PREFIX } from '../../../src/datastore/keys.js';
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openDatastore, type DatastoreConfig } from '../../../src/datastore/index.js';
import { Ipam, blockHandleCounts, blockAllocations, blockProblems } from '../../../src/ipam/index.js';
import { etcdMissing, startEtcd } from '../../helpers/etcd.js';
import { runTag } from '../../helpers/run-tag.js';

const PROCS = 8;
const PER_PROC = 250;
const worker = path.join(path.dirname(fileURLToPath(import.meta.url)), 'assign-worker.js');
const tag = `${runTag()}ipc`;

interface WorkerOut {
  ips: string[];
  ms: number;
  p50: number;
  p99: number;
}

function runWorker(cfg: DatastoreConfig, node: string, prefix: string): Promise<WorkerOut> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [worker, JSON.stringify(cfg), node, prefix, String(PER_PROC)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    c.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    c.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out) as WorkerOut) : reject(new Error(`worker ${prefix} exited ${code}: ${err.slice(0, 2000)}`)),
    );
  });
}

async function hammer(t: Test, cfg: DatastoreConfig, label: string): Promise<void> {
  const ds = await openDatastore(cfg);
  t.teardown(() => ds.close());
  await ds.create(`${POOLS_PREFIX}conc`, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'conc' },
    spec: { cidr: '10.128.0.0/16', blockSize: 26 },
  });
  const t0 = performance.now();
  // 4 nodes, 2 processes each: processes of one node fight over the same blocks, nodes over new blocks.
  const outs = await Promise.all(Array.from({ length: PROCS }, (_, i) => runWorker(cfg, `node-${i % 4}`, `w${i}`)));
  const wall = performance.now() - t0;

  const handed = outs.flatMap((o) => o.ips);
  t.equal(handed.length, PROCS * PER_PROC, 'every call got an address');
  t.equal(new Set(handed).size, PROCS * PER_PROC, 'no address handed out twice');

  const ipam = new Ipam(ds, { logger: { info() {}, warn() {}, error() {} } });
  const blocks = await ipam.store.listBlocks();
  const handles = await ipam.store.listHandles();
  const inBlocks = blocks.flatMap(({ value: b }) => blockAllocations(b).map((a) => `${a.ip}/32`));
  t.equal(inBlocks.length, PROCS * PER_PROC, 'blocks record exactly the addresses handed out');
  t.same([...inBlocks].sort(), [...handed].sort());
  t.same(
    blocks.flatMap(({ value: b }) => blockProblems(b)),
    [],
    'every block structurally sound',
  );
  // Every block's allocation bitmap equals the handles that reference it.
  const fromBlocks = new Map<string, number>();
  for (const { value: b } of blocks) for (const [h, n] of blockHandleCounts(b)) fromBlocks.set(`${h}|${b.cidr}`, n);
  const fromHandles = new Map<string, number>();
  for (const { value: h } of handles) for (const [c, n] of Object.entries(h.block)) fromHandles.set(`${h.handleId}|${c}`, n);
  t.equal(handles.length, PROCS * PER_PROC, 'one handle per call');
  t.same(Object.fromEntries([...fromHandles].sort()), Object.fromEntries([...fromBlocks].sort()), 'handles match block allocations');
  const report = await ipam.check();
  t.same([report.leaked, report.handleMismatches, report.problems, report.pendingAffinities], [[], [], [], []], 'ipam check is clean');
  const perNode = new Map<string, number>();
  for (const b of await ipam.listBlocks()) if (b.node) perNode.set(b.node, (perNode.get(b.node) ?? 0) + 1);
  t.ok(
    [...perNode.values()].every((n) => n <= 20),
    `blocks per node ${JSON.stringify(Object.fromEntries(perNode))}`,
  );
  const p50 = outs.map((o) => o.p50).sort((a, b) => a - b)[PROCS / 2]!;
  const p99 = Math.max(...outs.map((o) => o.p99));
  t.comment(
    `${label}: ${PROCS}×${PER_PROC} autoAssign in ${(wall / 1000).toFixed(1)} s wall (${((PROCS * PER_PROC) / (wall / 1000)).toFixed(0)}/s), per call p50 ${p50.toFixed(1)} ms, worst p99 ${p99.toFixed(1)} ms, ${blocks.length} blocks`,
  );
}

t.test('file datastore: 8 processes × 250 autoAssign', async (t) => {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, `${tag}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await hammer(t, { type: 'file', dir }, 'file');
});

t.test('etcd: 8 processes × 250 autoAssign', { skip: etcdMissing() ?? false }, async (t) => {
  const etcd = await startEtcd(t);
  await hammer(t, { type: 'etcdv3', etcdEndpoints: etcd.endpoints }, 'etcdv3');
});
