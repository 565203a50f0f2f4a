// Route-reflector fan-out benchmark (not a test): one reflector with C iBGP route-reflector clients
// (default 50) and one feeder (a client too) sending N IPv4 prefixes (the feed of bgp-feed.ts);
// printed per reflector: the time from the feeder's first UPDATE until the last client holds the
// last prefix, the reflector's peak RSS (VmHWM) and CPU seconds. Reflectors, alternating run by run
// in the same process: BIRD 2 (`rr client` on every neighbor) and tabby — the BGP speaker as
// tabby-node's route-reflector mode runs it (rr-fanout-reflector.ts; that mode programs no kernel).
// Clients: cheap counting peers in one process (rr-fanout-clients.ts, test/helpers/bgp-count.ts),
// each from its own address in one netns; they count distinct feed prefixes per session the same
// way whoever reflects. The feeder is tabby's BgpSession writing pre-encoded UPDATEs.
// Usage: node dist/test/bench/rr-fanout.js [N…]   (default 100000; root; bird2)
//        BENCH_QUICK=1: N = 20000, one run;  BENCH_REPEAT=<runs each, default 2>;  BENCH_CLIENTS=<C, default 50>
//        BENCH_RECEIVERS=bird,tabby[,tabby-before];  BENCH_CPU_PROF=<dir>: the tabby reflector runs with --cpu-prof into it.
//        BENCH_BEFORE_REPO=<a built checkout of an earlier tabby>: the receiver tabby-before runs that tree's reflector
//        (before/after in one run).
// Prints `RESULT {json}` per N for the report (report.ts).
import { cleanup, cpuOf, jsonLines, procStatus, sleep, stopOnTeardown, t } from './proc.js';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBird } from '../helpers/bird.js';
import { ip, isRoot } from '../helpers/netns.js';
import { makeStar } from '../interop/bgp/rr-lab.js';

process.env.TABBY_LOG_LEVEL ??= 'warn';
const here = path.dirname(fileURLToPath(import.meta.url));
const ASN = 65000;

function birdVersion(): string {
  const r = spawnSync('bird', ['--version'], { encoding: 'utf8' });
  return /BIRD version ([\d.]+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? '2';
}

export interface RrResult {
  receiver: string;
  seconds: number;
  /** first client complete, s after the first UPDATE */
  firstSeconds: number;
  cpu: number;
  peakRss: number;
  note?: string;
}

interface Topo {
  clientsNs: string;
  rrNs: string;
  rr: string;
  feeder: string;
  clients: string[];
}

function topology(tag: string, net: number, c: number): Topo {
  const [cl, rr] = makeStar(t, tag, net, 2);
  const clients = Array.from({ length: c }, (_, i) => `10.${net}.${1 + Math.floor(i / 250)}.${(i % 250) + 1}`);
  for (const a of clients) ip(cl!.name, 'addr', 'add', `${a}/16`, 'dev', 'eth0');
  ip(rr!.name, 'addr', 'add', `10.${net}.0.2/16`, 'dev', 'eth0');
  ip(rr!.name, 'addr', 'del', `10.${net}.0.2/24`, 'dev', 'eth0');
  return { clientsNs: cl!.name, rrNs: rr!.name, rr: rr!.address, feeder: cl!.address, clients };
}

/** Start the clients + feeder process, wait for its 'done'; the reflector's pid is measured meanwhile. */
async function runClients(
  topo: Topo,
  n: number,
  rrPid: number,
): Promise<{ seconds: number; firstSeconds: number; cpu: number; done: Record<string, number> }> {
  const cfg = { rr: topo.rr, feeder: topo.feeder, clients: topo.clients, asn: ASN, n };
  const p: ChildProcess = spawn('ip', ['netns', 'exec', topo.clientsNs, process.execPath, path.join(here, 'rr-fanout-clients.js')], {
    env: { ...process.env, TABBY_BENCH_RR: JSON.stringify(cfg) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  stopOnTeardown(p, 5000);
  const lines = jsonLines(p, (l) => {
    if (l.event === 'progress' && process.env.BENCH_TRACE) console.log(`    ${JSON.stringify(l)}`);
  });
  const find = (ev: string) => lines.find((l) => l.event === ev);
  let cpu0 = 0;
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    const err = find('error');
    if (err || p.exitCode !== null) throw new Error(`clients: ${JSON.stringify(err ?? { exit: p.exitCode })}`);
    if (Date.now() > deadline) throw new Error('clients: no result in 20 minutes');
    if (!cpu0 && find('feeding')) cpu0 = cpuOf(rrPid);
    if (find('done')) break;
    await sleep(20);
  }
  const done = find('done') as Record<string, number>;
  return {
    seconds: (done.lastMs! - done.startMs!) / 1000,
    firstSeconds: (done.firstMs! - done.startMs!) / 1000,
    cpu: cpuOf(rrPid) - cpu0,
    done,
  };
}

async function runBird(n: number, c: number): Promise<RrResult> {
  const topo = topology('rb', 76, c);
  const nb = [topo.feeder, ...topo.clients].map((a, i) => `protocol bgp c${i} from rrc { neighbor ${a} as ${ASN}; }`).join('\n');
  const conf = `router id ${topo.rr};
protocol device { scan time 60; }
template bgp rrc { local ${topo.rr} as ${ASN}; passive on; direct; hold time 240; rr client; rr cluster id 244.0.0.1; ipv4 { import all; export all; }; }
${nb}
`;
  const bird = await startBird(t, { netns: topo.rrNs, config: conf });
  const pid = Number(execFileSync('pgrep', ['-f', bird.socket], { encoding: 'utf8' }).trim().split('\n').pop());
  const rssIdle = procStatus(pid, 'VmRSS');
  const r = await runClients(topo, n, pid);
  const peakRss = procStatus(pid, 'VmHWM');
  await cleanup();
  return {
    receiver: `BIRD ${birdVersion()}`,
    seconds: r.seconds,
    firstSeconds: r.firstSeconds,
    cpu: r.cpu,
    peakRss,
    note: `idle RSS before the sessions ${(rssIdle / 1e6).toFixed(0)} MB`,
  };
}

async function runTabby(n: number, c: number, before = false): Promise<RrResult> {
  const topo = topology('rt', 77, c);
  const cfg = { asn: ASN, routerId: topo.rr, listen: topo.rr, peers: [topo.feeder, ...topo.clients] };
  const prof = process.env.BENCH_CPU_PROF;
  const beforeRepo = process.env.BENCH_BEFORE_REPO ?? '';
  if (before && !beforeRepo) throw new Error('tabby-before needs BENCH_BEFORE_REPO (a built checkout of the earlier tabby)');
  const dir = before ? path.join(beforeRepo, 'dist/test/bench') : here;
  const args = [...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []), path.join(dir, 'rr-fanout-reflector.js')];
  const p: ChildProcess = spawn('ip', ['netns', 'exec', topo.rrNs, process.execPath, ...args], {
    env: { ...process.env, TABBY_BENCH_RRX: JSON.stringify(cfg) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  stopOnTeardown(p);
  let out = '';
  p.stdout!.on('data', (d: Buffer) => {
    out += d;
  });
  while (!out.includes('"ready"')) {
    if (p.exitCode !== null) throw new Error('tabby reflector exited');
    await sleep(20);
  }
  // `ip netns exec` execs node: the child's pid is the reflector's.
  const rssIdle = procStatus(p.pid!, 'VmRSS');
  const r = await runClients(topo, n, p.pid!);
  const peakRss = procStatus(p.pid!, 'VmHWM');
  p.kill('SIGUSR2');
  await sleep(200);
  const stats = out
    .split('\n')
    .filter((l) => l.includes('"stats"'))
    .map((l) => JSON.parse(l) as Record<string, number>)[0];
  await cleanup();
  return {
    receiver: before ? 'tabby-before' : 'tabby',
    seconds: r.seconds,
    firstSeconds: r.firstSeconds,
    cpu: r.cpu,
    peakRss,
    note: `idle RSS before the sessions ${(rssIdle / 1e6).toFixed(0)} MB${stats ? `, heap ${(stats.heapUsed! / 1e6).toFixed(0)} MB at the end, ${stats.advertised} prefixes advertised in all` : ''}`,
  };
}

// ------------------------------------------------------------------ main

if (!isRoot()) {
  console.log('rr-fanout: needs root (network namespaces); skipped');
  process.exit(0);
}
const quick = !!process.env.BENCH_QUICK;
const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
if (!sizes.length) sizes.push(quick ? 20_000 : 100_000);
const clients = Math.max(1, Number(process.env.BENCH_CLIENTS ?? 50));
const receivers = (process.env.BENCH_RECEIVERS ?? 'bird,tabby').split(',');
const repeat = quick ? 1 : Math.max(1, Number(process.env.BENCH_REPEAT ?? 2));
console.log(
  `rr-fanout: 1 feeder → reflector → ${clients} clients (iBGP, rr client); load average at start ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (${os.cpus().length} cores, shared)`,
);
process.on('SIGINT', () => {
  void cleanup().then(() => process.exit(130));
});
const fmt = (r: RrResult): string =>
  `${r.receiver.padEnd(11)} last client complete ${r.seconds.toFixed(2).padStart(7)} s (first ${r.firstSeconds.toFixed(2)} s)   CPU ${r.cpu.toFixed(2).padStart(6)} s   peak RSS ${(r.peakRss / 1e6).toFixed(0).padStart(5)} MB${r.note ? `   (${r.note})` : ''}`;
try {
  for (const n of sizes) {
    console.log(`N = ${n}, ${clients} clients`);
    const runs = new Map<string, RrResult[]>();
    for (let rep = 0; rep < repeat; rep++) {
      for (const r of receivers) {
        const res = r === 'bird' ? await runBird(n, clients) : await runTabby(n, clients, r === 'tabby-before');
        runs.set(r, [...(runs.get(r) ?? []), res]);
        console.log(`  run ${rep + 1}: ${fmt(res)}   load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
      }
    }
    const best = new Map<string, RrResult & { runs: number; spread: [number, number] }>();
    for (const [r, rs] of runs) {
      const b = rs.reduce((a, x) => (x.seconds < a.seconds ? x : a));
      const ts = rs.map((x) => x.seconds).sort((a, x) => a - x);
      best.set(r === 'tabby-before' ? 'tabbyBefore' : r, { ...b, runs: rs.length, spread: [ts[0]!, ts[ts.length - 1]!] });
      console.log(`  best of ${rs.length}: ${fmt(b)}   (spread ${ts[0]!.toFixed(2)}–${ts[ts.length - 1]!.toFixed(2)} s)`);
    }
    const b = best.get('bird');
    const tb = best.get('tabby');
    if (b && tb) {
      console.log(
        `  ratio tabby/BIRD at ${n}: time ${(tb.seconds / b.seconds).toFixed(2)}×, peak RSS ${(tb.peakRss / b.peakRss).toFixed(2)}×, CPU ${(tb.cpu / Math.max(0.01, b.cpu)).toFixed(2)}×   (aim: ≤ 1.5× time)`,
      );
    }
    const tbb = best.get('tabbyBefore');
    if (tb && tbb)
      console.log(
        `  now/before at ${n}: time ${(tb.seconds / tbb.seconds).toFixed(2)}×, peak RSS ${(tb.peakRss / tbb.peakRss).toFixed(2)}×, CPU ${(tb.cpu / Math.max(0.01, tbb.cpu)).toFixed(2)}×`,
      );
    console.log(`RESULT ${JSON.stringify({ bench: 'rr-fanout', n, clients, ...Object.fromEntries(best) })}`);
  }
} finally {
  await cleanup();
}
process.exit(0);
