// Agent benchmark (not a test): BGP to kernel, the whole user path. One feeder peer pushes N IPv4
// prefixes over eBGP to a real tabby-node (file datastore, plain routed pool, the feeder as a global
// BGPPeer) in its own network namespace, and — alternating, in the same run — to BIRD 2 exporting to
// the kernel (`protocol kernel { ipv4 { export all; }; }`). Printed per receiver: the time from the
// first UPDATE sent until the Nth route is in the kernel, the time until all N are gone again after
// the feeder's session drops (no graceful restart: a Cease), peak RSS (VmHWM) and CPU seconds.
// Counting (the same for both): a netlink route-event socket of this process in the receiver's netns
// counts the feed's prefixes with the receiver's protocol number (BIRD 12, tabby 81); when events go
// quiet short of the goal (events can be lost) a route dump recounts. Neither daemon does extra work.
// Feeder: tabby's own BgpSession writing pre-encoded UPDATEs (the feed of bgp-ingest.ts).
// Usage: node dist/test/bench/agent-ingest.js [N…]   (default 100000 200000; 1000000 takes minutes here)
//        BENCH_QUICK=1: N = 20000, one run (make bench QUICK=1);  BENCH_REPEAT=<runs each, default 2>
//        BENCH_RECEIVERS=bird,tabby,tabby-filter[,tabby-before];  BENCH_BEFORE_REPO=<a built checkout of an earlier
//        tabby>: the receiver tabby-before runs that tree's tabby-node (and tabbyctl), for before/after in one run;  BENCH_CPU_PROF=<dir>: tabby-node runs with --cpu-prof into it.
// tabby-filter: the same tabby-node with a 50-rule import BGPFilter on the feeder (45 prefix rules on
// ranges of 172.16.0.0/12 and 5 community rules, none matching, then accepted): the community rules are
// dropped once per attribute set; the prefix rules are looked up by the prefix's first octet (engine.ts),
// so the feed's prefixes (11.0.0.0 up) meet none of them — before that index every prefix was tested
// against all 45 (~0.2–0.35 µs each, now ~7 ns). The ratio to plain tabby is the cost of filter
// evaluation (aim: ≤ 1.10× at 200k).
import { cleanup, cpuOf, procStatus, sleep, stopOnTeardown, t } from './proc.js';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BgpSession } from '../../src/bgp/session.js';
import { Netlink } from '../../src/dataplane/index.js';
import { NlSocket } from '../../src/dataplane/netlink/socket.js';
import { AF, RTA, RTM, RTNLGRP } from '../../src/dataplane/netlink/constants.js';
import { startBird } from '../helpers/bird.js';
import { isRoot } from '../helpers/netns.js';
import { makeStar } from '../interop/bgp/rr-lab.js';
import { buildFeed, FEEDER_ASN } from '../helpers/bgp-feed.js';
import { agentEntryPath } from '../../src/agent/bundle-path.js';

process.env.TABBY_LOG_LEVEL ??= 'warn';
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const RX_ASN = 65000;
const RTPROT_BIRD = 12;
const RTPROT_TABBY = 81;
const FEED_BASE = (11 << 24) >>> 0;

/** Counts the feed's prefixes in a netns's kernel table with one protocol number. */
class KernelCounter {
  private readonly nl: Netlink;
  private readonly sub: NlSocket;
  private readonly seen: Uint8Array;
  count = 0;
  /** events lost (the counting socket's queue overflowed) and recounts by dump: printed */
  overruns = 0;
  recounts = 0;
  lastEvent = performance.now();
  /** when the count last reached the goal / zero (event time) */
  constructor(
    netnsPath: string,
    private readonly protocol: number,
    n: number,
  ) {
    this.nl = new Netlink({ netnsPath, timeoutMs: 120_000 });
    this.seen = new Uint8Array(n);
    // a bulk install of 1M routes sends 1M events at once: a 1 GiB queue (on demand) keeps them, where
    // the default 32 MiB lost most and the count waited for a recount dump (time charged to the receiver).
    // Each event is read in place (no object per event): a counter slower than the receiver lost events
    // and recounted by dump, and that time was charged to the faster receiver
    this.sub = new NlSocket({ netnsPath, groups: [RTNLGRP.IPV4_ROUTE], recvBufferBytes: 1 << 30 });
    this.sub.onOverrun = () => {
      this.overruns++;
    };
    this.sub.onRawEvent = (buf, off, end, type) => {
      if ((type !== RTM.NEWROUTE && type !== RTM.DELROUTE) || buf[off] !== AF.INET || buf[off + 5] !== this.protocol) return;
      let dst = -1;
      for (let a = off + 12; a + 4 <= end; ) {
        const len = buf.readUInt16LE(a);
        if (len < 4) break;
        if ((buf.readUInt16LE(a + 2) & 0x3fff) === RTA.DST && len === 8) dst = buf.readUInt32BE(a + 4);
        a += (len + 3) & ~3;
      }
      const i = dst < 0 ? -1 : this.indexOf(dst);
      if (i < 0) return;
      this.lastEvent = performance.now();
      if (type === RTM.NEWROUTE && !this.seen[i]) {
        this.seen[i] = 1;
        this.count++;
      } else if (type === RTM.DELROUTE && this.seen[i]) {
        this.seen[i] = 0;
        this.count--;
      }
    };
  }
  private indexOf(a: number): number {
    const i = (a - FEED_BASE) >>> 8;
    return a >= FEED_BASE && i < this.seen.length ? i : -1;
  }
  private index(dst: string): number {
    const slash = dst.indexOf('/');
    const p = dst.slice(0, slash).split('.').map(Number);
    return this.indexOf(((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0);
  }
  /** A dump: the truth when events were lost. */
  async recount(): Promise<void> {
    this.recounts++;
    // read in place (no object per route): the feeder runs in this process and waits while it counts
    await this.nl.listRoutesEach(4, () => {
      this.seen.fill(0);
      this.count = 0;
      return (r) => {
        if (r.protocol !== this.protocol) return;
        const i = this.index(r.dst);
        if (i >= 0 && !this.seen[i]) {
          this.seen[i] = 1;
          this.count++;
        }
      };
    });
  }
  /** Wait until pred(count); returns the event time it became true. */
  async until(pred: (c: number) => boolean, timeoutMs: number): Promise<number | undefined> {
    const end = performance.now() + timeoutMs;
    let recounted = 0;
    for (;;) {
      if (pred(this.count)) return this.lastEvent;
      const now = performance.now();
      if (now > end) return undefined;
      // quiet for a second short of the goal: events may have been lost — ask the kernel
      if (now - this.lastEvent > 1000 && now - recounted > 2000) {
        await this.recount();
        recounted = performance.now();
        if (pred(this.count)) return recounted;
      }
      await sleep(5);
    }
  }
  close(): void {
    this.sub.close();
    this.nl.close();
  }
}

/** BENCH_HEAP_SNAPSHOT=<dir> (with BENCH_NODE_FLAGS=--heapsnapshot-signal=SIGUSR2): tabby-node writes a heap
 *  snapshot with all N routes in (its working directory is `dir`); waits until the file stops growing. */
async function heapSnapshot(pid: number, dir: string): Promise<void> {
  const before = new Set(fs.readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  let size = -1;
  for (let i = 0; i < 600; i++) {
    await sleep(2000);
    const f = fs.readdirSync(dir).find((x) => x.endsWith('.heapsnapshot') && !before.has(x));
    const now = f ? fs.statSync(path.join(dir, f)).size : -1;
    if (f && now > 0 && now === size) {
      console.log(`    heap snapshot: ${path.join(dir, f)}`);
      return;
    }
    size = now;
  }
}

interface Result {
  receiver: string;
  n: number;
  seconds: number;
  withdrawSeconds: number;
  cpu: number;
  peakRss: number;
  /** VmHWM when the Nth route was in the kernel, before the withdraw-all */
  ingestPeakRss: number;
  /** the counting socket lost events this often / recounted by dump this often (then the count lags) */
  overruns: number;
  recounts: number;
  note?: string;
}

async function feedAndMeasure(
  receiver: string,
  pid: number,
  counter: KernelCounter,
  n: number,
  f: { path: string; address: string },
  remote: string,
  msgs: Buffer[],
): Promise<Omit<Result, 'receiver' | 'note'>> {
  const session = new BgpSession({
    address: remote,
    localAddress: f.address,
    localAsn: FEEDER_ASN,
    peerAsn: RX_ASN,
    routerId: f.address,
    netns: f.path,
    families: ['ipv4'],
    holdTime: 240,
    connectRetryTime: 1,
  });
  t.teardown(() => session.stop());
  const up = new Promise<void>((r) => session.once('established', () => r()));
  session.start();
  await up;
  await sleep(500); // the receiver finishes its side of the handshake
  const cpu0 = cpuOf(pid);
  const start = performance.now();
  const sent = session.sendUpdates(msgs);
  const trace = process.env.BENCH_TRACE
    ? setInterval(
        () =>
          console.log(
            `    ${receiver} +${((performance.now() - start) / 1000).toFixed(1)} s: ${counter.count} in kernel, RSS ${(procStatus(pid, 'VmRSS') / 1e6).toFixed(0)} MB`,
          ),
        500,
      )
    : undefined;
  t.teardown(() => clearInterval(trace));
  const at = await counter.until((c) => c >= n, 15 * 60_000);
  if (at === undefined) throw new Error(`${receiver}: only ${counter.count} of ${n} routes in the kernel after 15 minutes`);
  const seconds = (at - start) / 1000;
  await sent;
  if (process.env.BENCH_HEAP_SNAPSHOT && receiver === 'tabby') await heapSnapshot(pid, process.env.BENCH_HEAP_SNAPSHOT);
  const cpu = cpuOf(pid) - cpu0;
  // withdraw-all: the feeder's session drops with a Cease (no graceful restart)
  const ingestPeak = procStatus(pid, 'VmHWM');
  const w0 = performance.now();
  session.stop();
  const gone = await counter.until((c) => c === 0, 15 * 60_000);
  if (gone === undefined) throw new Error(`${receiver}: ${counter.count} routes still in the kernel 15 minutes after the session dropped`);
  return {
    n,
    seconds,
    withdrawSeconds: (gone - w0) / 1000,
    cpu,
    peakRss: procStatus(pid, 'VmHWM'),
    ingestPeakRss: ingestPeak,
    overruns: counter.overruns,
    recounts: counter.recounts,
  };
}

async function runBird(n: number, msgs: Buffer[]): Promise<Result> {
  const [f, r] = makeStar(t, 'ab', 74, 2);
  const conf = `router id ${r!.address};
protocol device { scan time 60; }
protocol kernel { ipv4 { export all; }; }
protocol bgp feed { local ${r!.address} as ${RX_ASN}; neighbor ${f!.address} as ${FEEDER_ASN}; passive on; hold time 240; ipv4 { import all; export none; }; }
`;
  const bird = await startBird(t, { netns: r!.name, config: conf });
  t.teardown(() => bird.stop());
  const pid = Number(execFileSync('pgrep', ['-f', bird.socket], { encoding: 'utf8' }).trim().split('\n').pop());
  const counter = new KernelCounter(r!.path, RTPROT_BIRD, n);
  t.teardown(() => counter.close());
  const res = await feedAndMeasure('BIRD', pid, counter, n, f!, r!.address, msgs);
  await cleanup();
  return { receiver: 'BIRD 2', ...res };
}

function unixGet(socketPath: string, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: p }, (res) => {
      let b = '';
      res.on('data', (d: Buffer) => {
        b += d;
      });
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

/** A 50-rule import filter the feed never matches (every prefix ends at the default Accept). */
function fiftyRuleFilter(): string {
  const rules: string[] = [];
  for (let i = 0; i < 45; i++)
    rules.push(
      `    - {action: Reject, matchOperator: In, cidr: 172.${16 + (i >> 4)}.${(i & 15) * 16}.0/20, prefixLength: {min: 21, max: 32}}`,
    );
  for (let i = 0; i < 5; i++) rules.push(`    - {action: Reject, communities: {values: ["65535:${100 + i}"]}}`);
  return `apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: fifty}\nspec:\n  importV4:\n${rules.join('\n')}\n---\n`;
}

type TabbyVariant = 'plain' | 'filter' | 'before';

async function runTabby(n: number, msgs: Buffer[], variant: TabbyVariant = 'plain'): Promise<Result> {
  const withFilter = variant === 'filter';
  const root = variant === 'before' ? (process.env.BENCH_BEFORE_REPO ?? '') : repo;
  if (!root) throw new Error('tabby-before needs BENCH_BEFORE_REPO (a built checkout of the earlier tabby)');
  const [f, r] = makeStar(t, 'at', 75, 2);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tabby-agent-ingest-'));
  t.teardown(() => {
    if (!process.env.BENCH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  });
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    NODENAME: 'rx',
    IP: `${r!.address}/24`,
    AS: String(RX_ASN),
    DATASTORE_TYPE: 'file',
    TABBY_DATASTORE_DIR: `${dir}/datastore`,
    TABBY_STATE_DIR: `${dir}/state`,
    TABBY_HEALTH_ADDR: '127.0.0.1:9099',
    TABBY_METRICS_ADDR: '127.0.0.1:9091',
    CALICO_IPV4POOL_CIDR: '10.244.0.0/16',
    CALICO_IPV4POOL_IPIP: 'Never',
    CALICO_IPV4POOL_VXLAN: 'Never',
    CALICO_IPV4POOL_NAT_OUTGOING: 'false',
    TABBY_LOG_LEVEL: process.env.TABBY_LOG_LEVEL ?? 'warn',
  };
  // the feeder as a global BGPPeer, written before the agent starts (outside the timed window)
  const peer = `${withFilter ? fiftyRuleFilter() : ''}apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: feeder}\nspec: {peerIP: ${f!.address}, asNumber: ${FEEDER_ASN}${withFilter ? ', filters: [fifty]' : ''}}\n`;
  execFileSync(process.execPath, [path.join(root, 'dist/src/cli/main.js'), 'apply', '-f', '-'], {
    input: peer,
    env,
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const prof = process.env.BENCH_CPU_PROF;
  const args = [
    ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []),
    ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
    agentEntryPath(root) ?? path.join(root, 'dist/src/agent/main.js'),
  ];
  const log = fs.openSync(`${dir}/tabby-node.log`, 'a');
  const p: ChildProcess = spawn('ip', ['netns', 'exec', r!.name, process.execPath, ...args], {
    env,
    stdio: ['ignore', log, log],
    ...(process.env.BENCH_HEAP_SNAPSHOT ? { cwd: process.env.BENCH_HEAP_SNAPSHOT } : {}),
  });
  fs.closeSync(log);
  stopOnTeardown(p);
  const sock = `${dir}/state/tabby.sock`;
  const started = performance.now();
  for (;;) {
    const s = await unixGet(sock, '/status').catch(() => '');
    if (s.includes(`"address":"${f!.address}"`)) break;
    if (p.exitCode !== null || performance.now() - started > 60_000)
      throw new Error(`tabby-node did not start: ${fs.readFileSync(`${dir}/tabby-node.log`, 'utf8').slice(-2000)}`);
    await sleep(100);
  }
  const counter = new KernelCounter(r!.path, RTPROT_TABBY, n);
  t.teardown(() => counter.close());
  const rssIdle = procStatus(p.pid!, 'VmRSS');
  const res = await feedAndMeasure('tabby', p.pid!, counter, n, f!, r!.address, msgs);
  const status = JSON.parse(await unixGet(sock, '/status').catch(() => '{}')) as {
    routing?: { lastError?: { message: string }; kernel?: { resync?: { gaveWay: number; lastListed?: number; lastMs?: number } } };
  };
  await cleanup();
  const err = status.routing?.lastError?.message;
  const rs = status.routing?.kernel?.resync;
  const dumps = rs
    ? `; resync dumps gave way ${rs.gaveWay}×, the last listed ${rs.lastListed ?? '–'} routes in ${rs.lastMs ?? '–'} ms`
    : '';
  return {
    receiver: variant === 'filter' ? 'tabby+filt' : variant === 'before' ? 'tabby-old' : 'tabby-node',
    ...res,
    note: `idle RSS before the feed ${(rssIdle / 1e6).toFixed(0)} MB${dumps}${err ? `; last kernel error: ${err}` : ''}`,
  };
}

// ------------------------------------------------------------------ main

if (!isRoot()) {
  console.log('agent-ingest: needs root (network namespaces); skipped');
  process.exit(0);
}
const quick = !!process.env.BENCH_QUICK;
const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((x) => x > 0);
if (!sizes.length) sizes.push(...(quick ? [20_000] : [100_000, 200_000]));
const receivers = (process.env.BENCH_RECEIVERS ?? 'bird,tabby,tabby-filter').split(',');
const repeat = quick ? 1 : Math.max(1, Number(process.env.BENCH_REPEAT ?? 2));
console.log(
  `agent-ingest: BGP → kernel, feeder → receiver in a netns; load average at start ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (${os.cpus().length} cores, shared)`,
);
process.on('SIGINT', () => {
  void cleanup().then(() => process.exit(130));
});
const fmt = (r: Result): string =>
  `${r.receiver.padEnd(11)} to kernel ${r.seconds.toFixed(2).padStart(7)} s   withdraw-all ${r.withdrawSeconds.toFixed(2).padStart(6)} s   CPU ${r.cpu.toFixed(2).padStart(6)} s   peak RSS ${(r.peakRss / 1e6).toFixed(0).padStart(5)} MB (${(r.ingestPeakRss / 1e6).toFixed(0)} before the withdraw)${r.note ? `   (${r.note})` : ''}${r.overruns + r.recounts ? `   [counter: ${r.overruns} overrun(s), ${r.recounts} recount(s)]` : ''}`;
try {
  for (const n of sizes) {
    const feeds = new Map<string, Buffer[]>();
    const feedFor = (nh: string): Buffer[] => {
      if (!feeds.has(nh)) feeds.set(nh, buildFeed(n, nh).msgs);
      return feeds.get(nh)!;
    };
    console.log(`N = ${n}`);
    const runs = new Map<string, Result[]>();
    for (let rep = 0; rep < repeat; rep++) {
      for (const r of receivers) {
        const res =
          r === 'bird'
            ? await runBird(n, feedFor('10.74.0.1'))
            : await runTabby(n, feedFor('10.75.0.1'), r === 'tabby-filter' ? 'filter' : r === 'tabby-before' ? 'before' : 'plain');
        runs.set(r, [...(runs.get(r) ?? []), res]);
        console.log(`  run ${rep + 1}: ${fmt(res)}`);
      }
    }
    const best = new Map<string, Result & { runs: number; spread: [number, number] }>();
    for (const [r, rs] of runs) {
      const b = rs.reduce((a, x) => (x.seconds < a.seconds ? x : a));
      const secs = rs.map((x) => x.seconds);
      best.set(r, { ...b, runs: rs.length, spread: [Math.min(...secs), Math.max(...secs)] });
      const ts = rs.map((x) => x.seconds).sort((a, x) => a - x);
      console.log(`  best of ${rs.length}: ${fmt(b)}   (to-kernel spread ${ts[0]!.toFixed(2)}–${ts[ts.length - 1]!.toFixed(2)} s)`);
    }
    const b = best.get('bird');
    const tb = best.get('tabby');
    if (b && tb) {
      console.log(
        `  ratio tabby/BIRD at ${n}: to kernel ${(tb.seconds / b.seconds).toFixed(2)}×, withdraw-all ${(tb.withdrawSeconds / Math.max(0.01, b.withdrawSeconds)).toFixed(2)}×, peak RSS ${(tb.peakRss / b.peakRss).toFixed(2)}×, CPU ${(tb.cpu / Math.max(0.01, b.cpu)).toFixed(2)}×   (aims: ≤ 1.5× time, ≤ 3× memory, withdraw ≤ 1.5×)`,
      );
      const before = best.get('tabby-before');
      if (before)
        console.log(
          `  tabby now / before at ${n}: to kernel ${(tb.seconds / before.seconds).toFixed(2)}×, withdraw-all ${(tb.withdrawSeconds / Math.max(0.01, before.withdrawSeconds)).toFixed(2)}×, peak RSS ${(tb.peakRss / before.peakRss).toFixed(2)}×, CPU ${(tb.cpu / Math.max(0.01, before.cpu)).toFixed(2)}×`,
        );
      // the report (report.ts) reads every member with `seconds` as a daemon; tabby's keys first
      console.log(`RESULT ${JSON.stringify({ bench: 'agent-ingest', n, tabby: tb, ...(before ? { tabbyBefore: before } : {}), bird: b })}`);
    }
    const tf = best.get('tabby-filter');
    if (tb && tf) {
      console.log(
        `  50-rule import BGPFilter at ${n}: to kernel ${(tf.seconds / tb.seconds).toFixed(2)}× plain tabby, CPU ${(tf.cpu / Math.max(0.01, tb.cpu)).toFixed(2)}×   (aim: ≤ 1.10×)`,
      );
      console.log(`RESULT ${JSON.stringify({ bench: 'agent-ingest-filter', n, tabby: tb, tabbyFilter: tf })}`);
    }
  }
} finally {
  await cleanup();
}
process.exit(0);
