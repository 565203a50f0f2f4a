// Ingest benchmark (not a test): one feeder pushes N distinct IPv4 prefixes (/24–/32, 20 per
// attribute set, a realistic mix of AS paths, communities, MEDs) over eBGP to one receiver at a time
// — BIRD 2, GoBGP and tabby, each in its own network namespace on a bridge — and prints the wall
// time from the first UPDATE sent until the receiver holds all N in its RIB, and its memory.
// Feeder: tabby's own session (session.ts's BgpSession) writing pre-encoded UPDATEs with back-pressure,
// in the benchmark process (so the feeder costs the same for every receiver).
// Timing, the same for every receiver and without asking any of them anything while it imports
// (polling birdc every 50 ms loaded BIRD's single thread and floored its time): the import ended when
// the receiver's CPU time last moved (/proc/<pid>/stat, polled every 5 ms); once it has been still
// for 300 ms with everything sent, the RIB size is asked once (birdc, gobgp, the tabby receiver's own
// report) — short of N, the wait goes on.
// Usage: node dist/test/bench/bgp-ingest.js [N…]   (default 100000 1000000; root; bird2, gobgpd)
//        BENCH_RECEIVERS=bird,tabby,gobgp  BENCH_GOBGP_MAX=<largest N for GoBGP, default 1000000>
//        BENCH_REPEAT=<runs per receiver, default 3; the best run is reported (the machine is shared)>
//        BENCH_CPU_PROF=<dir>: run the tabby receiver with --cpu-prof into that dir.
//        BENCH_RECEIVERS=…,tabby-before with BENCH_BEFORE_REPO=<a built checkout of an earlier tabby>: that tree's
//        receiver too, interleaved run by run (before/after in one run).
//        BENCH_FLOOD_US=<µs, default 5; 0 = no flood run>: after the runs, one more tabby run at the largest N
//        whose consumer costs that much per best-route event — UPDATEs offered faster than consumed: the
//        inbound queue stays at its bound (the socket is paused) and the peak RSS is printed.
import { cleanup, cpuOf, jsonLines, procStatus, sleep, stopOnTeardown, t } from './proc.js';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BgpSession } from '../../src/bgp/session.js';
import { buildFeed, FEEDER_ASN } from '../helpers/bgp-feed.js';
import { startBird } from '../helpers/bird.js';
import { gobgpConfig, startGobgp } from '../helpers/gobgp.js';
import { isRoot } from '../helpers/netns.js';
import { makeStar } from '../interop/bgp/rr-lab.js';

process.env.TABBY_LOG_LEVEL ??= 'warn';
const here = path.dirname(fileURLToPath(import.meta.url));
const RX_ASN = 65000;

// ------------------------------------------------------------------ helpers

const rssOf = (pid: number): number => procStatus(pid, 'VmRSS');
function pidOf(pattern: string): number {
  const out = execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).trim().split('\n').map(Number);
  return out[out.length - 1]!;
}

/** Wall time from `start` until the receiver's CPU time last moved with all N in its RIB (see the top). */
async function timeToIdle(pid: number, start: number, sent: Promise<unknown>, n: number, count: () => Promise<number>): Promise<number> {
  let allSent = false;
  void sent.then(() => {
    allSent = true;
  });
  let last = cpuOf(pid);
  let lastBusy = performance.now();
  for (;;) {
    await sleep(5);
    const c = cpuOf(pid);
    const now = performance.now();
    if (c !== last) {
      last = c;
      lastBusy = now;
      continue;
    }
    if (!allSent || now - lastBusy < 300) continue;
    if ((await count()) >= n) return (lastBusy - start) / 1000;
    last = cpuOf(pid); // the question cost it some CPU: not the import
    lastBusy = performance.now();
  }
}

interface Result {
  receiver: string;
  n: number;
  seconds: number;
  cpu: number;
  rssBytes: number;
  deltaBytes: number;
  note?: string;
}

/** Connect the feeder, push the feed, return the time of the first write. */
async function feed(
  netnsPath: string,
  local: string,
  remote: string,
  msgs: Buffer[],
  rxPid: number,
): Promise<{ session: BgpSession; start: number; sent: Promise<boolean>; cpu0: number }> {
  const session = new BgpSession({
    address: remote,
    localAddress: local,
    localAsn: FEEDER_ASN,
    peerAsn: RX_ASN,
    routerId: local,
    netns: netnsPath,
    families: ['ipv4'],
    holdTime: 240,
    connectRetryTime: 1,
  });
  const up = new Promise<void>((r) => session.once('established', () => r()));
  session.start();
  await up;
  await sleep(300); // let the receiver finish its side of the handshake
  const cpu0 = cpuOf(rxPid);
  const start = performance.now();
  const sent = session.sendUpdates(msgs);
  return { session, start, sent, cpu0 };
}

async function runBird(n: number, msgs: Buffer[]): Promise<Result> {
  const [f, r] = makeStar(t, 'bi', 70, 2);
  const conf = `router id ${r!.address};
protocol device { scan time 60; }
protocol bgp feed { local ${r!.address} as ${RX_ASN}; neighbor ${f!.address} as ${FEEDER_ASN}; passive on; hold time 240; ipv4 { import all; export none; }; }
`;
  const bird = await startBird(t, { netns: r!.name, config: conf });
  const pid = pidOf(bird.socket);
  const before = rssOf(pid);
  const { session, start, sent, cpu0 } = await feed(f!.path, f!.address, r!.address, msgs, pid);
  t.teardown(() => session.stop());
  const seconds = await timeToIdle(pid, start, sent, n, async () => {
    const m = /(\d+) of (\d+) routes/.exec(await bird.birdc('show route count').catch(() => ''));
    return m ? Number(m[1]) : 0;
  });
  const cpu = cpuOf(pid) - cpu0;
  await sent;
  const rss = rssOf(pid);
  await cleanup();
  return { receiver: 'BIRD 2.0.12', n, seconds, cpu, rssBytes: rss, deltaBytes: rss - before };
}

async function runGobgp(n: number, msgs: Buffer[]): Promise<Result> {
  const [f, r] = makeStar(t, 'go', 71, 2);
  const conf = gobgpConfig({
    asn: RX_ASN,
    routerId: r!.address,
    localAddressList: [r!.address],
    neighbors: [{ address: f!.address, peerAs: FEEDER_ASN, passive: true, localAddress: r!.address, holdTime: 240 }],
  });
  const g = await startGobgp(t, { netns: r!.name, config: conf });
  const pid = pidOf(g.dir);
  const before = rssOf(pid);
  const { session, start, sent, cpu0 } = await feed(f!.path, f!.address, r!.address, msgs, pid);
  t.teardown(() => session.stop());
  const seconds = await timeToIdle(pid, start, sent, n, async () => {
    const m = /Destination:\s*(\d+)/.exec(await g.gobgp('global', 'rib', 'summary', '-a', 'ipv4').catch(() => ''));
    return m ? Number(m[1]) : 0;
  });
  const cpu = cpuOf(pid) - cpu0;
  await sent;
  const rss = rssOf(pid);
  await cleanup();
  return { receiver: 'GoBGP 3.10', n, seconds, cpu, rssBytes: rss, deltaBytes: rss - before };
}

async function runTabby(n: number, msgs: Buffer[], slowUs = 0, root?: string): Promise<Result> {
  const [f, r] = makeStar(t, 'ta', 72, 2);
  const cfg = {
    asn: RX_ASN,
    routerId: r!.address,
    listen: r!.address,
    feeder: f!.address,
    feederAsn: FEEDER_ASN,
    expect: n,
    ...(slowUs > 0 ? { slowUs } : {}),
  };
  const prof = process.env.BENCH_CPU_PROF;
  const nodeArgs = [
    '--expose-gc',
    ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []),
    root ? path.join(root, 'dist/test/bench/bgp-ingest-receiver.js') : path.join(here, 'bgp-ingest-receiver.js'),
  ];
  const p: ChildProcess = spawn('ip', ['netns', 'exec', r!.name, process.execPath, ...nodeArgs], {
    env: { ...process.env, TABBY_BENCH_RX: JSON.stringify(cfg), TABBY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  stopOnTeardown(p, 5000);
  const lines = jsonLines(p);
  while (!lines.some((l) => l.event === 'ready')) await sleep(20);
  const before = rssOf(p.pid!);
  const { session, start, sent, cpu0 } = await feed(f!.path, f!.address, r!.address, msgs, p.pid!);
  t.teardown(() => session.stop());
  const seconds = await timeToIdle(p.pid!, start, sent, n, async () => (lines.some((l) => l.event === 'done') ? n : 0));
  void cpu0;
  await sent;
  const done = lines.find((l) => l.event === 'done')!;
  const rss = Number(done.rss);
  const cpu = Number(done.cpuSeconds); // measured in the receiver, before its final GC
  await cleanup();
  return {
    receiver: root ? 'tabby-before' : 'tabby',
    n,
    seconds,
    cpu,
    rssBytes: rss,
    deltaBytes: rss - before,
    note: `heap ${(Number(done.heapUsed) / 1e6).toFixed(0)} MB after GC, ${done.attrSets} attribute sets, ${done.events} best-route events, inbound queue peak ${done.inboundPeak} UPDATEs (input held at 128: the rest waits undecoded), peak RSS ${(Number(done.rssPeak) / 1e6).toFixed(0)} MB${slowUs > 0 ? `, consumer slowed to ${slowUs} µs per best-route event` : ''}`,
  };
}

function beforeRepo(): string {
  const root = process.env.BENCH_BEFORE_REPO;
  if (!root) throw new Error('tabby-before needs BENCH_BEFORE_REPO (a built checkout of the earlier tabby)');
  return root;
}

// ------------------------------------------------------------------ main

if (!isRoot()) {
  console.log('bgp-ingest: needs root (network namespaces); skipped');
  process.exit(0);
}
const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
const quick = !!process.env.BENCH_QUICK; // make bench QUICK=1: 20k, one run each, no flood run
if (!sizes.length) sizes.push(...(quick ? [20_000] : [100_000, 1_000_000]));
const receivers = (process.env.BENCH_RECEIVERS ?? 'bird,tabby,gobgp').split(',');
const gobgpMax = Number(process.env.BENCH_GOBGP_MAX ?? 1_000_000);
const repeat = quick ? 1 : Math.max(1, Number(process.env.BENCH_REPEAT ?? 3));
console.log(
  `load average at start: ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (2 cores, shared with other work)`,
);
const results: Result[] = [];
process.on('SIGINT', () => {
  void cleanup().then(() => process.exit(130));
});
try {
  for (const n of sizes) {
    const { msgs, sets, bytes } = buildFeed(n, '10.70.0.1');
    console.log(`feed: ${n} prefixes (/24–/32), ${sets} attribute sets, ${msgs.length} UPDATEs, ${(bytes / 1e6).toFixed(1)} MB`);
    const feeds = new Map<string, Buffer[]>();
    const runs = new Map<string, Result[]>();
    // Receivers interleaved run by run, so each sees the same background load.
    for (let rep = 0; rep < repeat; rep++) {
      for (const r of receivers) {
        if (r === 'gobgp' && (n > gobgpMax || rep > 0)) continue; // GoBGP is slow: one run
        // Next hop must be the feeder's address in each topology.
        const fix = r === 'bird' ? '10.70.0.1' : r === 'gobgp' ? '10.71.0.1' : '10.72.0.1';
        if (!feeds.has(fix)) feeds.set(fix, fix === '10.70.0.1' ? msgs : buildFeed(n, fix).msgs);
        const res =
          r === 'bird'
            ? await runBird(n, feeds.get(fix)!)
            : r === 'gobgp'
              ? await runGobgp(n, feeds.get(fix)!)
              : await runTabby(n, feeds.get(fix)!, 0, r === 'tabby-before' ? beforeRepo() : undefined);
        runs.set(r, [...(runs.get(r) ?? []), res]);
        console.log(
          `  run ${rep + 1}: ${res.receiver.padEnd(12)} ${res.seconds.toFixed(2).padStart(7)} s wall ${res.cpu.toFixed(2).padStart(6)} s CPU   RSS ${(res.rssBytes / 1e6).toFixed(0).padStart(5)} MB   +${(res.deltaBytes / n).toFixed(0)} B/prefix${res.note ? `   (${res.note})` : ''}`,
        );
      }
    }
    const forReport: Record<string, object> = {};
    for (const r of receivers) {
      const rs = runs.get(r);
      if (!rs?.length) {
        if (r === 'gobgp') console.log(`  GoBGP skipped at ${n} (BENCH_GOBGP_MAX=${gobgpMax})`);
        continue;
      }
      const best = rs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
      const times = rs.map((x) => x.seconds).sort((a, b) => a - b);
      results.push(best);
      forReport[r === 'tabby-before' ? 'tabbyBefore' : r] = { ...best, runs: rs.length, spread: [times[0], times[times.length - 1]] };
      const cpus = rs.map((x) => x.cpu).sort((a, b) => a - b);
      console.log(
        `  best of ${rs.length}: ${best.receiver.padEnd(12)} ${best.seconds.toFixed(2).padStart(7)} s wall (median ${times[times.length >> 1]!.toFixed(2)} s), CPU min ${cpus[0]!.toFixed(2)} s   RSS ${(best.rssBytes / 1e6).toFixed(0).padStart(5)} MB   +${(best.deltaBytes / n).toFixed(0)} B/prefix`,
      );
    }
    // For the report (report.ts); memory here is the resident size with all N in the RIB (rssBytes).
    console.log(`RESULT ${JSON.stringify({ bench: 'bgp-ingest', n, ...forReport })}`);
    const floodUs = quick ? 0 : Number(process.env.BENCH_FLOOD_US ?? 5);
    if (floodUs > 0 && receivers.includes('tabby') && n === Math.max(...sizes)) {
      const res = await runTabby(n, feeds.get('10.72.0.1') ?? buildFeed(n, '10.72.0.1').msgs, floodUs);
      console.log(
        `  flood (consumer slower than the feeder): tabby ${res.seconds.toFixed(2)} s wall, RSS ${(res.rssBytes / 1e6).toFixed(0)} MB (${res.note})`,
      );
    }
    const bird = results.find((x) => x.n === n && x.receiver.startsWith('BIRD'));
    const tabby = results.find((x) => x.n === n && x.receiver === 'tabby');
    const before = results.find((x) => x.n === n && x.receiver === 'tabby-before');
    if (before && tabby) {
      console.log(
        `  ratio tabby now/before at ${n}: wall time ${(tabby.seconds / before.seconds).toFixed(2)}×, CPU time ${(tabby.cpu / Math.max(0.01, before.cpu)).toFixed(2)}×, resident ${(tabby.rssBytes / before.rssBytes).toFixed(2)}×`,
      );
    }
    if (bird && tabby) {
      console.log(
        `  ratio tabby/BIRD at ${n}: wall time ${(tabby.seconds / bird.seconds).toFixed(2)}×, CPU time ${(tabby.cpu / Math.max(0.01, bird.cpu)).toFixed(2)}×, memory per prefix ${(tabby.deltaBytes / Math.max(1, bird.deltaBytes)).toFixed(2)}×, resident ${(tabby.rssBytes / bird.rssBytes).toFixed(2)}×`,
      );
    }
  }
} finally {
  await cleanup();
}
process.exit(0);
