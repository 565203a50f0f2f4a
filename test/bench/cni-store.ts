// Benchmark (prints figures, asserts nothing): the store side of a CNI ADD and DEL — the plugin's own
// commands (IPAM, the WorkloadEndpoint, the namespace profile) in one process as the resident agent runs
// them, over the file store on disk (fdatasync on) and, when installed, a real etcd; the kernel wiring is
// a stand-in that answers at once (test/bench/cni.ts times the whole path). 1 and 8 at once: latency,
// fdatasyncs (file) or etcd revisions (one per Txn) per command, and CPU per command.
// Anchor, same store, same run: one durable single-key write per ADD and one delete per DEL (a create /
// delete of a small key: the least a pod's durable record can cost here).
// BENCH_BEFORE_REPO=<a built checkout of an earlier tabby>: its plugin is measured too, interleaved (the
// second round in the reverse order). On a loaded machine the writes per command are the steady figures.
//   node dist/test/bench/cni-store.js [pods]      (BENCH_QUICK=1: 48 pods, no etcd)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Datastore } from '../../src/datastore/types.js';
import { etcdMissing, startEtcd } from '../helpers/etcd.js';

const quick = !!process.env.BENCH_QUICK;
const PODS = Math.max(8, Number(process.argv[2] ?? (quick ? 48 : 200)) & ~7);
const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const BEFORE = process.env.BENCH_BEFORE_REPO ? path.resolve(process.env.BENCH_BEFORE_REPO) : undefined;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)] ?? NaN;
};
const f1 = (x: number) => x.toFixed(2).padStart(7);

type Store = { ds: Datastore; writes: () => Promise<number>; close: () => Promise<void> };
type Run = (cmd: 'ADD' | 'DEL', pod: string) => Promise<void>;

/** The plugin of the tree at `root` (dist/ built) over `ds`, with a stand-in wiring. */
async function pluginOf(root: string, ds: Datastore, cidr: string): Promise<Run> {
  const m = (p: string) => import(path.join(root, 'dist/src', p));
  const [{ Ipam, StaticPoolSource }, { parseCniEnv }, { runCommand }, { nullLogger }] = await Promise.all([
    m('ipam/index.js'),
    m('cni/netconf.js'),
    m('cni/plugin.js'),
    m('cni/logger.js'),
  ]);
  const pool = { name: 'p', cidr, family: 4, blockSize: 26, disabled: false, nodeSelector: '' };
  const ipam = new Ipam(ds, { pools: new StaticPoolSource([pool], new Map([['n1', {}]])), logger: nullLogger });
  const wiring = {
    wire: async (r: { hostIfName: string }) => ({
      hostIfName: r.hostIfName,
      hostMac: 'ee:ee:ee:ee:ee:ee',
      containerMac: '02:00:00:00:00:01',
      containerIfIndex: 2,
    }),
    unwire: async () => undefined,
    check: async () => [],
  };
  const deps = {
    logger: nullLogger,
    nodename: () => 'n1',
    netnsExists: () => true,
    openIpam: async () => ({ ipam, close: async () => undefined }),
    wiring: async () => wiring,
  };
  const conf = Buffer.from(
    JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tabby', nodename: 'n1', ipam: { type: 'tabby-ipam' } }),
  );
  return async (cmd, pod) => {
    const env = parseCniEnv({
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: pod,
      CNI_NETNS: '/var/run/netns/bench',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}`,
    });
    const out = (await runCommand('tabby', env, conf, deps)) as { exitCode: number; stdout: string };
    if (out.exitCode !== 0) throw new Error(`${cmd} ${pod}: ${out.stdout}`);
  };
}

/** The anchor: one durable single-key write per pod. */
function anchorOf(ds: Datastore): Run {
  return async (cmd, pod) => {
    if (cmd === 'ADD') await ds.create(`/bench/cni-anchor/${pod}`, { pod, ip: '10.0.0.1/32', node: 'n1' });
    else await ds.delete(`/bench/cni-anchor/${pod}`);
  };
}

async function measure(label: string, store: Store, run: Run, tag: string): Promise<void> {
  await run('ADD', `${tag}-warm`); // the block, the profile
  for (const conc of [1, 8]) {
    const add: number[] = [];
    const del: number[] = [];
    const pods = Array.from({ length: PODS }, (_, i) => `${tag}-${conc}-${i}`);
    const time = async (cmd: 'ADD' | 'DEL', pod: string, into: number[]) => {
      const t0 = performance.now();
      await run(cmd, pod);
      into.push(performance.now() - t0);
    };
    const c0 = process.cpuUsage();
    const w0 = await store.writes();
    for (let i = 0; i < PODS; i += conc) await Promise.all(pods.slice(i, i + conc).map((p) => time('ADD', p, add)));
    const w1 = await store.writes();
    for (let i = 0; i < PODS; i += conc) await Promise.all(pods.slice(i, i + conc).map((p) => time('DEL', p, del)));
    const w2 = await store.writes();
    const cpu = process.cpuUsage(c0);
    console.log(
      `  ${label.padEnd(9)} ${conc} at once  ADD p50 ${f1(pct(add, 0.5))} p99 ${f1(pct(add, 0.99))} ms ${((w1 - w0) / PODS).toFixed(2)} w/ADD` +
        `   DEL p50 ${f1(pct(del, 0.5))} p99 ${f1(pct(del, 0.99))} ms ${((w2 - w1) / PODS).toFixed(2)} w/DEL` +
        `   CPU ${((cpu.user + cpu.system) / 1000 / (2 * PODS)).toFixed(2)} ms/command`,
    );
  }
}

/** `open(root)`: a store made by that tree's own datastore module (its error classes are the ones its IPAM
 *  tells apart). */
async function compare(name: string, open: (root: string) => Promise<Store>, unit: string): Promise<void> {
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`\n${name}  (w = ${unit}; load average ${load})`);
  const trees: [string, string][] = [['this tree', HERE], ...(BEFORE ? [['before', BEFORE] as [string, string]] : [])];
  for (const round of quick ? [1] : [1, 2]) {
    const order: [string, string][] = [['anchor', ''], ...trees];
    for (const [label, root] of round === 2 ? order.reverse() : order) {
      const store = await open(root || HERE);
      try {
        const run = root ? await pluginOf(root, store.ds, '10.74.0.0/16') : anchorOf(store.ds);
        await measure(label, store, run, `r${round}${label.replace(/\W/g, '')}`);
      } finally {
        await store.close();
      }
    }
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tabby-bench-cni-store-')); // on disk, not tmpfs
console.log(
  `tabby CNI store side: ${PODS} pods, node ${process.version}, ${os.cpus().length} CPUs; the plugin's commands in one process (stand-in wiring)`,
);
try {
  let n = 0;
  await compare(
    'file store on disk (fdatasync on)',
    async (root) => {
      const { FileDatastore } = (await import(
        path.join(root, 'dist/src/datastore/file.js')
      )) as typeof import('../../src/datastore/file.js');
      const ds = new FileDatastore(path.join(tmp, `s${n++}`), { fsync: true });
      return { ds, writes: async () => ds.fds.syncs, close: () => ds.close() };
    },
    'fdatasyncs',
  );
  const noEtcd = quick ? 'quick mode' : etcdMissing();
  if (noEtcd) console.log(`\netcd: skipped (${noEtcd})`);
  else {
    const teardowns: (() => unknown)[] = [];
    try {
      const etcd = await startEtcd({ teardown: (fn) => teardowns.push(fn) });
      await compare(
        `etcd (${etcd.dataDir.startsWith('/dev/shm') ? 'data on tmpfs' : 'data on disk'})`,
        async (root) => {
          const { EtcdDatastore } = (await import(
            path.join(root, 'dist/src/datastore/etcd.js')
          )) as typeof import('../../src/datastore/etcd.js');
          const ds = new EtcdDatastore(etcd.endpoints);
          return { ds, writes: () => ds.revision(), close: () => ds.close() };
        },
        'etcd revisions (one per Txn)',
      );
    } finally {
      for (const fn of teardowns.reverse()) await fn();
    }
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
