// Benchmark: CNI ADD as a runtime sees it — from spawning `tabby` (the installed CNI client) until the pod
// answers a ping from its node — over 100 pods, 1 and 8 at a time; then DEL of the 100 pods. Two paths:
//   resident  tabby-node runs in the node namespace; the client hands each command to it;
//   fallback  no agent; the client execs the in-process Node.js plugin (what every ADD cost before);
// and two datastores: the file store on disk (not tmpfs, fdatasync on) and etcd (a real etcd v3 on
// this machine, reached from the node namespace through a loopback relay). Prints p50/p99/max and
// pods/s, CPU per command of each process, and checks no address was handed out twice; never fails on a
// time. Needs root. tabby-node runs as installed: the one-file build (dist/tabby-node.cjs) when current.
// In the window (launch "runtime", the default): the spawn of `tabby` by a runtime stand-in
// (launcher.py: posix_spawn, i.e. clone(CLONE_VM|CLONE_VFORK) as Go's os/exec in containerd), the client,
// the agent's ADD, the client's exit, and pings every 2 ms until one is answered; the three times are
// taken by the launcher and the pinger, so this process's event loop delays no observation. Not in the
// window: the pod's network namespace, made before the timed phase (a runtime makes the sandbox's netns
// before it calls ADD) and deleted after the DELs (a runtime removes it after DEL returned).
// Launch "inline" (the earlier bench, for an A/B in the same run): this process makes each pod's netns
// (`ip netns add`, synchronous) inside the window, spawns the client itself (Node.js forks this process)
// and observes the exit and the ping on its own event loop while 7 other pods are in flight; DEL's time
// includes `ip netns del`.
// Run: node dist/test/bench/cni.js [pods]   (TABBY_BENCH_CNI=resident,fallback / =file,etcd to narrow;
// TABBY_BENCH_LAUNCH=runtime,inline: both launches, interleaved per concurrency, same agent;
// TABBY_BENCH_KEEPLOG=<file>: keep the plugin log there and the agent log in <file>.agent;
// TABBY_BENCH_PING=pod: ping from a pod of the node instead of from the node — through policy (the
// pinging pod's egress, the new pod's ingress), so "pingable" includes the policy engine's program; from
// the node it does not: host → pod is not filtered and the reply is conntrack-established, as in Calico;
// TABBY_BENCH_TRACE=<file>: one JSON line per ADD with the wall-clock ms of spawn, answer and ping, to put
// beside the agent's log times)
import { POOLS_PREFIX } from '../../src/datastore/keys.js';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatastore } from '../../src/datastore/index.js';

import { runIn, spawnIn } from '../../src/lab/netns.js';
import { etcdMissing, startEtcd } from '../helpers/etcd.js';
import { agentEntryPath } from '../../src/agent/bundle-path.js';
import {
  AGENT,
  REPO,
  bridgeLoopbackPort,
  cniEnv,
  containerIdOf,
  installClient,
  isRoot,
  makeNode,
  startAgent,
  type AgentProc,
  type NodeEnv,
} from '../integration/cni/harness.js';

const PODS = Number(process.argv[2] ?? 100);
const only = (process.env.TABBY_BENCH_CNI ?? '').split(',').filter(Boolean);
/** A path (resident, fallback) or store (file, etcd) runs unless TABBY_BENCH_CNI names others of its kind. */
const want = (x: string): boolean => {
  const kind = ['resident', 'fallback'].includes(x) ? ['resident', 'fallback'] : ['file', 'etcd'];
  return only.includes(x) || !only.some((o) => kind.includes(o));
};
const tag = `${`tb${process.pid}`.slice(0, 9)}k`;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)] ?? NaN;
};

/** The long-lived raw-socket pinger (pinger.py) inside the node namespace. */
class Pinger {
  private readonly proc: ChildProcess;
  private readonly waiters = new Map<string, (ok: boolean) => void>();
  readonly pid: number;
  constructor(ns: string) {
    this.proc = spawn('ip', ['netns', 'exec', ns, 'python3', path.join(REPO, 'test/bench/pinger.py')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.pid = this.proc.pid!;
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const [what, ip] = buf.slice(0, i).split(' ');
        buf = buf.slice(i + 1);
        this.waiters.get(ip!)?.(what === 'ok');
        this.waiters.delete(ip!);
      }
    });
  }
  ping(ip: string): Promise<boolean> {
    return new Promise((resolve) => {
      this.waiters.set(ip, resolve);
      this.proc.stdin!.write(`${ip}\n`);
    });
  }
  stop(): void {
    this.proc.kill();
  }
}

/** Milliseconds of CLOCK_MONOTONIC (what the launcher and the pinger report, as ns) → performance.now(). */
const MONO_TO_PERF = Number(process.hrtime.bigint()) / 1e6 - performance.now();
const monoMs = (ns: number): number => ns / 1e6 - MONO_TO_PERF;

/** The runtime stand-in (launcher.py) inside the node namespace, with its pinger. */
class Launcher {
  readonly pid: number;
  pingerPid = 0;
  private readonly proc: ChildProcess;
  private readonly waiters = new Map<number, (r: LaunchResult) => void>();
  private onPinger: (() => void) | undefined;
  private next = 0;
  constructor(ns: string) {
    this.proc = spawnIn(ns, 'python3', [path.join(REPO, 'test/bench/launcher.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.pid = this.proc.pid!;
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const o = JSON.parse(buf.slice(0, i)) as LaunchResult & { pinger?: number };
        buf = buf.slice(i + 1);
        if (o.pinger !== undefined) {
          this.pingerPid = o.pinger;
          this.onPinger?.();
        } else {
          this.waiters.get(o.id)?.(o);
          this.waiters.delete(o.id);
        }
      }
    });
  }
  /** (Re)start the pinger with this argv (it runs inside the launcher's namespace unless the argv enters another). */
  pinger(argv: string[]): Promise<void> {
    return new Promise((resolve) => {
      this.onPinger = resolve;
      this.proc.stdin!.write(`${JSON.stringify({ op: 'pinger', argv })}\n`);
    });
  }
  run(argv: string[], env: Record<string, string>, stdin: string, ping: boolean): Promise<LaunchResult> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiters.set(id, resolve);
      this.proc.stdin!.write(`${JSON.stringify({ op: 'run', id, argv, env, stdin, ping })}\n`);
    });
  }
  stop(): void {
    this.proc.kill();
  }
}
interface LaunchResult {
  id: number;
  code: number;
  stdout: string;
  stderr: string;
  /** CLOCK_MONOTONIC ns */
  spawn: number;
  exit: number;
  ping: number | null;
  /** the client's CPU (its rusage) */
  cpuMs: number;
}

type Launch = 'runtime' | 'inline';
const LAUNCHES = (process.env.TABBY_BENCH_LAUNCH ?? 'runtime').split(',').filter((x): x is Launch => x === 'runtime' || x === 'inline');

interface Bed {
  node: NodeEnv;
  client: string;
  stateDir: string;
  conf: string;
  pinger: Pinger;
  launcher: Launcher;
  /** the agent's pid (resident path) */
  agentPid?: number;
  /** TABBY_BENCH_PING=pod: the pod the pings come from */
  peer?: number;
  /** the clients' CPU of the phase so far (launch "runtime": their rusage, as the launcher reaps them) */
  clientCpuMs: number;
}
const PING_FROM_POD = process.env.TABBY_BENCH_PING === 'pod';
const TRACE = process.env.TABBY_BENCH_TRACE;
const PEER = 99_999;

function clientEnv(bed: Bed, cmd: 'ADD' | 'DEL', i: number, netns: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ...(process.env.TABBY_LOG_LEVEL ? { TABBY_LOG_LEVEL: process.env.TABBY_LOG_LEVEL } : {}),
    ...cniEnv(cmd, containerIdOf(tag, i), netns, `pod-${i}`, { TABBY_STATE_DIR: bed.stateDir }),
  };
}

function trace(i: number, spawned: number, answered: number, pinged: number): void {
  if (!TRACE) return;
  const at = (t: number): number => Math.round((performance.timeOrigin + t) * 10) / 10;
  fs.appendFileSync(
    TRACE,
    `${JSON.stringify({ pod: i, container: containerIdOf(tag, i), spawn: at(spawned), answer: at(answered), ping: at(pinged) })}\n`,
  );
}

/** One command the earlier way ("inline"): netns, spawn and observations on this event loop. */
async function runInline(bed: Bed, cmd: 'ADD' | 'DEL', i: number): Promise<{ ms: number; ip: string }> {
  const netns = cmd === 'ADD' ? bed.node.makePod(i) : `/var/run/netns/${bed.node.podNs(i)}`;
  const env = clientEnv(bed, cmd, i, netns);
  const t0 = performance.now();
  const r = await runIn(bed.node.ns, bed.client, [], { input: bed.conf, env, timeoutMs: 120_000 });
  const answered = performance.now();
  if (r.code !== 0) throw new Error(`${cmd} pod ${i}: ${r.stdout}${r.stderr}`);
  if (cmd === 'DEL') {
    bed.node.deletePod(i);
    return { ms: performance.now() - t0, ip: '' };
  }
  const ip = ((JSON.parse(r.stdout) as { ips?: { address: string }[] }).ips?.[0]?.address ?? '').split('/')[0]!;
  if (!(await bed.pinger.ping(ip))) throw new Error(`pod ${i} (${ip}) never answered a ping`);
  const t1 = performance.now();
  trace(i, t0, answered, t1);
  return { ms: t1 - t0, ip };
}

/** One command as a runtime runs it: the pod's netns exists already; spawn, exit and ping timed by the launcher. */
async function runViaLauncher(bed: Bed, cmd: 'ADD' | 'DEL', i: number): Promise<{ ms: number; ip: string }> {
  const netns = `/var/run/netns/${bed.node.podNs(i)}`;
  const r = await bed.launcher.run([bed.client], clientEnv(bed, cmd, i, netns), bed.conf, cmd === 'ADD');
  bed.clientCpuMs += r.cpuMs;
  if (r.code !== 0) throw new Error(`${cmd} pod ${i}: ${r.stdout}${r.stderr}`);
  if (cmd === 'DEL') return { ms: (r.exit - r.spawn) / 1e6, ip: '' };
  const ip = ((JSON.parse(r.stdout) as { ips?: { address: string }[] }).ips?.[0]?.address ?? '').split('/')[0]!;
  if (r.ping === null) throw new Error(`pod ${i} (${ip}) never answered a ping`);
  trace(i, monoMs(r.spawn), monoMs(r.exit), monoMs(r.ping));
  return { ms: (r.ping - r.spawn) / 1e6, ip };
}

async function inParallel(
  n: number,
  parallel: number,
  fn: (i: number) => Promise<{ ms: number; ip: string }>,
): Promise<{ times: number[]; ips: string[]; wallMs: number }> {
  const times: number[] = [];
  const ips: string[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        const r = await fn(next++);
        times.push(r.ms);
        ips.push(r.ip);
      }
    }),
  );
  return { times, ips, wallMs: performance.now() - t0 };
}

const f = (x: number): string => `${x.toFixed(1)} ms`.padStart(9);
const line = (name: string, xs: number[], extra = ''): string =>
  `    ${name.padEnd(24)} p50 ${f(pct(xs, 0.5))}  p99 ${f(pct(xs, 0.99))}  max ${f(Math.max(...xs))}${extra}\n`;

/** CPU ms of a process so far (utime + stime, and its reaped children's with `children`), 0 when gone. */
function procCpuMs(pid: number | 'self', children = false, thread = false): number {
  try {
    const stat = fs.readFileSync(thread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const x = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // fields 14–17 of stat (utime, stime, cutime, cstime) are 11–14 after the comm field
    return ((x[11]! + x[12]! + (children ? x[13]! + x[14]! : 0)) * 1000) / TICKS;
  } catch {
    return 0;
  }
}
const TICKS = 100; // USER_HZ: the unit of /proc/<pid>/stat's times on Linux
/** Busy CPU ms of the whole machine (every process, others' load included). */
function machineBusyMs(): number {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const idle = cpu[3]! + cpu[4]!;
  return ((cpu.reduce((a, b) => a + b, 0) - idle) * 1000) / TICKS;
}

/** CPU per command of each process over a phase (what queues on 2 cores at 8 at once). */
function cpuMeter(bed: Bed, launch: Launch): (n: number) => string {
  const observers = (): number =>
    launch === 'runtime' ? procCpuMs(bed.launcher.pid) + procCpuMs(bed.launcher.pingerPid) : procCpuMs(bed.pinger.pid);
  bed.clientCpuMs = 0;
  const start = {
    agent: bed.agentPid ? procCpuMs(bed.agentPid) : 0,
    agentMain: bed.agentPid ? procCpuMs(bed.agentPid, false, true) : 0,
    bench: process.cpuUsage(),
    children: procCpuMs('self', true) - procCpuMs('self'),
    observers: observers(),
    machine: machineBusyMs(),
  };
  return (n) => {
    const bench = process.cpuUsage(start.bench);
    const clients = launch === 'runtime' ? bed.clientCpuMs : procCpuMs('self', true) - procCpuMs('self') - start.children;
    const per = (ms: number): string => (ms / n).toFixed(1);
    return (
      `      CPU ms per command: agent ${bed.agentPid ? `${per(procCpuMs(bed.agentPid) - start.agent)} (its event loop's thread ${per(procCpuMs(bed.agentPid, false, true) - start.agentMain)})` : '-'}, ` +
      `client ${per(clients)}${launch === 'inline' ? ' (+ ip netns)' : ''}, ${launch === 'runtime' ? 'launcher + pinger' : 'pinger'} ` +
      `${per(observers() - start.observers)}, bench ${per((bench.user + bench.system) / 1000)}; ` +
      `machine ${per(machineBusyMs() - start.machine)} (all processes, others' load included)\n`
    );
  };
}

async function measure(bed: Bed, label: string): Promise<void> {
  process.stdout.write(`  ${label}\n`);
  if (PING_FROM_POD && bed.peer === undefined) {
    bed.node.makePod(PEER);
    await runViaLauncher(bed, 'ADD', PEER); // answers the node's pinger; then it pings the others
    bed.peer = PEER;
    bed.pinger.stop();
    const p = new Pinger(bed.node.podNs(PEER));
    bed.pinger = p;
    cleanup.push(() => p.stop());
    await bed.launcher.pinger(['ip', 'netns', 'exec', bed.node.podNs(PEER), 'python3', path.join(REPO, 'test/bench/pinger.py')]);
    process.stdout.write(`    (pings from pod-${PEER} on the node, through policy)\n`);
  }
  for (const parallel of [1, 8]) {
    for (const [k, launch] of LAUNCHES.entries()) {
      const base = parallel * 1000 + k * 10_000;
      const run = launch === 'runtime' ? runViaLauncher : runInline;
      const name = LAUNCHES.length > 1 ? `${launch}: ` : '';
      if (launch === 'runtime') for (let i = 0; i < PODS; i++) bed.node.makePod(base + i);
      let cpu = cpuMeter(bed, launch);
      const add = await inParallel(PODS, parallel, (i) => run(bed, 'ADD', base + i));
      const dups = add.ips.length - new Set(add.ips).size;
      process.stdout.write(
        line(
          `${name}ADD → pingable, ${parallel} at once`,
          add.times,
          `  ${(PODS / (add.wallMs / 1000)).toFixed(1)} pods/s  ${dups} duplicate addresses`,
        ),
      );
      process.stdout.write(cpu(PODS));
      cpu = cpuMeter(bed, launch);
      const del = await inParallel(PODS, parallel, (i) => run(bed, 'DEL', base + i));
      process.stdout.write(line(`${name}DEL, ${parallel} at once`, del.times, `  ${PODS} pods in ${(del.wallMs / 1000).toFixed(2)} s`));
      process.stdout.write(cpu(PODS));
      if (launch === 'runtime') for (let i = 0; i < PODS; i++) bed.node.deletePod(base + i);
    }
  }
}

/** Everything to undo, newest first (also on Ctrl-C). */
const cleanup: (() => unknown)[] = [];
async function runCleanup(): Promise<void> {
  while (cleanup.length)
    await Promise.resolve()
      .then(cleanup.pop())
      .catch(() => undefined);
}
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    void runCleanup().then(() => process.exit(130));
  });

async function bench(store: 'file' | 'etcd'): Promise<void> {
  try {
    // The file store on disk (os.tmpdir() is on the root filesystem here, not tmpfs).
    const node = await makeNode(`${tag}${store[0]}`, store === 'file' ? [{ name: 'bench', cidr: '10.250.0.0/16' }] : [], {
      baseDir: os.tmpdir(),
    });
    cleanup.push(() => {
      if (process.env.TABBY_BENCH_KEEPLOG) fs.copyFileSync(node.logFile, process.env.TABBY_BENCH_KEEPLOG);
      node.destroy();
    });
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}b-`));
    cleanup.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const client = await installClient(path.join(tmp, 'bin'));
    let conf = node.conf();
    let agentEnv: Record<string, string> = {};
    if (store === 'etcd') {
      const etcd = await startEtcd({
        teardown: (fn) => {
          cleanup.push(fn);
        },
      });
      const ds = await openDatastore({ type: 'etcdv3', etcdEndpoints: etcd.endpoints });
      await ds.create(`${POOLS_PREFIX}bench`, {
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name: 'bench' },
        spec: { cidr: '10.250.0.0/16', blockSize: 26 },
      });
      await ds.close();
      const stopRelay = await bridgeLoopbackPort(node.ns, Number(new URL(etcd.clientUrl).port), path.join(tmp, 'etcd.sock'));
      cleanup.push(stopRelay);
      conf = node.conf({ datastore_type: 'etcdv3', etcd_endpoints: etcd.endpoints.join(','), datastore_dir: undefined });
      agentEnv = { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: etcd.endpoints.join(',') };
    }
    const pinger = new Pinger(node.ns);
    cleanup.push(() => pinger.stop());
    const launcher = new Launcher(node.ns);
    cleanup.push(() => launcher.stop());
    await launcher.pinger(['python3', path.join(REPO, 'test/bench/pinger.py')]);
    const bed: Bed = { node, client, stateDir: path.join(tmp, 'state'), conf: JSON.stringify(conf), pinger, launcher, clientCpuMs: 0 };
    process.stdout.write(
      `\n${store === 'file' ? 'file datastore on disk (fdatasync on)' : 'etcd v3 (local, through a loopback relay into the node namespace)'}\n`,
    );
    if (want('resident')) {
      // tabby-node as installed: the one-file build when it is current (TABBY_AGENT_ENTRY=modules: the modules)
      const entry = agentEntryPath(REPO) ?? AGENT;
      const agent: AgentProc = await startAgent(
        node,
        bed.stateDir,
        { ...agentEnv, ...(process.env.TABBY_LOG_LEVEL ? { TABBY_LOG_LEVEL: process.env.TABBY_LOG_LEVEL } : {}) },
        entry,
      );
      process.stdout.write(`  (tabby-node: ${path.relative(REPO, entry)})\n`);
      cleanup.push(() => agent.signal('SIGKILL'));
      bed.agentPid = agent.pid;
      // the agent's own log too (policy programming, resyncs), next to the plugin log
      cleanup.push(() => {
        const keep = process.env.TABBY_BENCH_KEEPLOG;
        if (keep) fs.copyFileSync(path.join(bed.stateDir, 'agent.log'), `${keep}.agent`);
      });
      await measure(bed, 'resident: `tabby` client → tabby-node');
      await agent.signal('SIGTERM');
      bed.agentPid = undefined;
    }
    if (want('fallback')) await measure(bed, 'fallback: `tabby` client, no agent → in-process Node.js plugin');
  } finally {
    await runCleanup();
  }
}

async function main(): Promise<void> {
  if (!isRoot()) {
    process.stdout.write('cni bench: skipped (needs root for network namespaces)\n');
    return;
  }
  process.stdout.write(
    `tabby CNI ADD → pingable pod, ${PODS} pods, node ${process.version}, ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
  process.stdout.write('aims (resident, file store): p99 < 50 ms at 8 at once, < 20 ms one at a time; DEL of 100 pods < 2 s\n');
  if (want('file')) await bench('file');
  if (want('etcd')) {
    const missing = etcdMissing();
    if (missing) process.stdout.write(`\netcd: skipped (${missing})\n`);
    else await bench('etcd');
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
