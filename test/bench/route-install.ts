// Benchmark: install and remove N routes in a fresh network namespace, tabby vs `ip -batch`, same run.
//   node dist/test/bench/route-install.js [N ...]      (default: 10000 100000; root)
// Routes: N distinct /24s "via 172.30.0.2 dev vA proto 81" (a veth inside the netns). One fresh
// netns per N; every contender starts from an empty table and leaves it empty; 3 rounds in rotating
// order, the median is printed. (Separate netns per contender were tried: tearing down a netns that
// held 100k routes keeps the kernel busy in the background and skews whoever runs next.)
// tabby is measured two ways: the RouteReconciler as the agent runs it — start() (event subscription,
// link and route dump, diff, batched netlink) and then the resync dump the agent does after a bulk
// change, until it reports in sync; removal likewise — and the raw Netlink.routeBatch underneath it.
// Prints routes/second and the ratio to ip -batch.
// Never asserts on time.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Netlink, RouteReconciler, RTPROT_TABBY, type Route, type RouteOp } from '../../src/dataplane/index.js';
import { native } from '../../src/native/index.js';

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
if (!sizes.length) sizes.push(...(process.env.BENCH_QUICK ? [10_000] : [10_000, 100_000])); // BENCH_QUICK: make bench QUICK=1

function prefix(i: number): string {
  const v = (20 << 24) + i * 256;
  return `${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.0/24`;
}

let nsCounter = 0;
function freshNetns(): { name: string; path: string; done(): void } {
  const name = `tbbench${process.pid % 10000}${nsCounter++}`;
  native().deleteNetns(name);
  const p = native().createNetns(name);
  execFileSync('ip', ['-n', name, 'link', 'add', 'vA', 'type', 'veth', 'peer', 'name', 'vB']);
  execFileSync('ip', ['-n', name, 'link', 'set', 'vA', 'up']);
  execFileSync('ip', ['-n', name, 'link', 'set', 'vB', 'up']);
  execFileSync('ip', ['-n', name, 'addr', 'add', '172.30.0.1/24', 'dev', 'vA']);
  return {
    name,
    path: p,
    done: () => {
      native().deleteNetns(name);
    },
  };
}

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

// CPU seconds (user+system): robust against a busy machine, where wall time includes waiting for a CPU.
const selfCpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
/** CPU seconds of waited-for children (cutime + cstime in /proc/self/stat, 100 Hz ticks). */
function childCpu(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}
interface Measure {
  add: number;
  del: number;
  addCpu: number;
  delCpu: number;
}
const countRoutes = (ns: string): number =>
  Number(execFileSync('sh', ['-c', `ip -n ${ns} route show proto ${RTPROT_TABBY} | wc -l`], { encoding: 'utf8' }).trim());

type Ns = ReturnType<typeof freshNetns>;

async function benchIp(n: number, ns: Ns): Promise<Measure> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tbbench-'));
  try {
    const addFile = path.join(dir, 'add');
    const delFile = path.join(dir, 'del');
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(`route add ${prefix(i)} via 172.30.0.2 dev vA proto ${RTPROT_TABBY}`);
    fs.writeFileSync(addFile, `${lines.join('\n')}\n`);
    fs.writeFileSync(delFile, `${lines.map((l) => l.replace('route add', 'route del')).join('\n')}\n`);
    let c0 = childCpu();
    let t0 = process.hrtime.bigint();
    execFileSync('ip', ['-n', ns.name, '-batch', addFile]);
    const add = seconds(t0);
    const addCpu = childCpu() - c0;
    if (countRoutes(ns.name) !== n) throw new Error('ip -batch did not install every route');
    c0 = childCpu();
    t0 = process.hrtime.bigint();
    execFileSync('ip', ['-n', ns.name, '-batch', delFile]);
    const del = seconds(t0);
    const delCpu = childCpu() - c0;
    return { add, del, addCpu, delCpu };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function benchReconciler(n: number, ns: Ns): Promise<Measure> {
  const nl = new Netlink({ netnsPath: ns.path });
  try {
    // the follow-up resync runs at once here (the agent waits for a quiet moment; the work is the same)
    const rr = new RouteReconciler(nl, { resyncIntervalMs: 0, bulkResyncQuietMs: 0 });
    const inSync = (): Promise<void> =>
      new Promise((resolve) => {
        if (rr.inSync) resolve();
        else rr.once('insync', () => resolve());
      });
    const routes: Route[] = [];
    for (let i = 0; i < n; i++) routes.push({ dst: prefix(i), gateway: '172.30.0.2', dev: 'vA' });
    let c0 = selfCpu();
    let t0 = process.hrtime.bigint();
    rr.setDesired(routes);
    const r = await rr.start();
    await inSync();
    const add = seconds(t0);
    const addCpu = selfCpu() - c0;
    if (r.failed.length || countRoutes(ns.name) !== n) throw new Error(`reconciler: ${r.failed.length} failed`);
    c0 = selfCpu();
    t0 = process.hrtime.bigint();
    rr.setDesired([]);
    const r2 = await rr.apply();
    await inSync();
    const del = seconds(t0);
    rr.stop();
    const delCpu = selfCpu() - c0;
    if (r2.failed.length || countRoutes(ns.name) !== 0) throw new Error('reconciler did not remove every route');
    return { add, del, addCpu, delCpu };
  } finally {
    nl.close();
  }
}

async function benchBatch(n: number, ns: Ns): Promise<Measure> {
  const nl = new Netlink({ netnsPath: ns.path });
  try {
    const oif = (await nl.mustGetLink('vA')).index;
    const ops: RouteOp[] = [];
    for (let i = 0; i < n; i++) ops.push({ op: 'add', route: { dst: prefix(i), gateway: '172.30.0.2', oif, protocol: RTPROT_TABBY } });
    const dels = ops.map((o) => ({ op: 'del' as const, route: o.route }));
    let c0 = selfCpu();
    let t0 = process.hrtime.bigint();
    const f = await nl.routeBatch(ops);
    const add = seconds(t0);
    const addCpu = selfCpu() - c0;
    if (f.length || countRoutes(ns.name) !== n) throw new Error(`routeBatch: ${f.length} failed`);
    c0 = selfCpu();
    t0 = process.hrtime.bigint();
    const f2 = await nl.routeBatch(dels);
    const del = seconds(t0);
    const delCpu = selfCpu() - c0;
    if (f2.length) throw new Error(`routeBatch del: ${f2.length} failed`);
    return { add, del, addCpu, delCpu };
  } finally {
    nl.close();
  }
}

const rate = (n: number, s: number): string => `${Math.round(n / s).toLocaleString('en-US')}/s`.padStart(12);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('route-install: needs root (network namespaces)');
    return;
  }
  console.log(`route-install: ${os.cpus().length} CPUs, Linux ${os.release()}, node ${process.version}`);
  const load = os.loadavg()[0]!.toFixed(1);
  console.log(`load average ${load}: wall-clock rates suffer on a busy machine; CPU rates (user+sys of the process doing the work) do not`);
  console.log(
    'N        what                      install s   rate (wall)  rate (CPU)   remove s   rate (wall)  rate (CPU)   ratio to ip -batch, wall / CPU (install; remove)',
  );
  for (const n of sizes) {
    const ns = freshNetns();
    try {
      // warm up the code paths (JIT) at a small size
      await benchReconciler(1000, ns);
      await benchBatch(1000, ns);
      const runs: Record<'ip' | 'rec' | 'raw', Measure[]> = { ip: [], rec: [], raw: [] };
      const order = ['ip', 'rec', 'raw'] as const;
      for (let round = 0; round < 3; round++) {
        for (let j = 0; j < 3; j++) {
          const who = order[(round + j) % 3]!;
          runs[who].push(who === 'ip' ? await benchIp(n, ns) : who === 'rec' ? await benchReconciler(n, ns) : await benchBatch(n, ns));
        }
      }
      const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const med = (k: 'ip' | 'rec' | 'raw'): Measure => {
        const m = (f: keyof Measure): number => median(runs[k].map((r) => r[f]));
        return { add: m('add'), del: m('del'), addCpu: m('addCpu'), delCpu: m('delCpu') };
      };
      const ip = med('ip');
      const x = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
      const row = (what: string, r: Measure, ratio: boolean): string =>
        `${String(n).padEnd(8)} ${what.padEnd(25)} ${r.add.toFixed(3).padStart(9)}  ${rate(n, r.add)} ${rate(n, r.addCpu)}  ${r.del.toFixed(3).padStart(9)}  ${rate(n, r.del)} ${rate(n, r.delCpu)}` +
        (ratio ? `   ${x(ip.add, r.add)} / ${x(ip.addCpu, r.addCpu)};  ${x(ip.del, r.del)} / ${x(ip.delCpu, r.delCpu)}` : '');
      console.log(row('ip -batch', ip, false));
      console.log(row('tabby RouteReconciler', med('rec'), true));
      console.log(row('tabby Netlink.routeBatch', med('raw'), true));
    } finally {
      ns.done();
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
