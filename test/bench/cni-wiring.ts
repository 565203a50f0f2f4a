// Benchmark: a pod's wiring alone (src/dataplane/workload.ts wireWorkload — the veth pair, the pod side's
// address, routes and neighbour, the host side's settings, neighbour and route), as the resident agent
// runs it: N pods in one process, 1 and 8 at once, into fresh network namespaces. Prints per-pod latency
// (p50/p99), the wall time, the process's CPU, and the event loop's longest stall meanwhile (what every
// other ADD, IPAM and the policy engine waited). Anchor, the same way in the same run: iproute2 doing
// the same wiring, one `ip -batch` per side per pod (host side, then pod side); `sysctl` is left out of
// it. BENCH_BEFORE_REPO=<a built checkout of an earlier tabby>: that tree's wireWorkload too, rounds
// interleaved. Never fails on a time. Needs root.
// Run: node dist/test/bench/cni-wiring.js [pods]   (BENCH_QUICK=1: 16 pods, one round; BENCH_ROUNDS=n)
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { native } from '../../src/native/index.js';

const QUICK = !!process.env.BENCH_QUICK;
const PODS = Number(process.argv[2] ?? (QUICK ? 16 : 64));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 2));
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const tag = `cw${process.pid}`.slice(0, 8);

type Wire = (o: { hostIfName: string; containerNetnsPath: string; hostNetnsPath: string; ipv4: string }) => Promise<unknown>;

async function wireOf(root: string): Promise<Wire> {
  const m = (await import(path.join(root, 'dist/src/dataplane/workload.js'))) as { wireWorkload: Wire };
  return m.wireWorkload;
}

function ipBatch(args: string[], script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('ip', [...args, '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ip -batch: ${err.trim()}`))));
    c.stdin.end(script);
  });
}

/** The anchor: what a shell-script CNI plugin would run for the same wiring. */
const ipWire: Wire = async (o) => {
  const pod = path.basename(o.containerNetnsPath);
  const host = path.basename(o.hostNetnsPath);
  const mac = '02:00:00:00:00:01';
  await ipBatch(
    ['-n', host],
    `link add ${o.hostIfName} address ee:ee:ee:ee:ee:ee type veth peer name eth0 address ${mac} netns ${pod}\nlink set ${o.hostIfName} up\n`,
  );
  await ipBatch(
    ['-n', pod],
    `link set eth0 up\naddr add ${o.ipv4}/32 dev eth0\nroute replace 169.254.1.1 dev eth0 scope link\nroute replace default via 169.254.1.1 dev eth0\nneigh replace 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent\n`,
  );
  await ipBatch(
    ['-n', host],
    `neigh replace ${o.ipv4} lladdr ${mac} dev ${o.hostIfName} nud permanent\nroute replace ${o.ipv4}/32 dev ${o.hostIfName} scope link proto 81\n`,
  );
};

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)] ?? Number.NaN;
};

async function run(name: string, wire: Wire, parallel: number, round: number): Promise<void> {
  const n = native();
  const id = `${tag}${name[0]}${parallel}${round}`;
  const host = n.createNetns(`${id}h`);
  const pods: string[] = [];
  try {
    for (let i = 0; i < PODS; i++) pods.push(n.createNetns(`${id}p${i}`));
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const lat: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < PODS) {
          const i = next++;
          const s = performance.now();
          await wire({
            hostIfName: `cali${i}`,
            containerNetnsPath: pods[i]!,
            hostNetnsPath: host,
            ipv4: `10.99.${(i + 2) >> 8}.${(i + 2) & 255}`,
          });
          lat.push(performance.now() - s);
        }
      }),
    );
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    delay.disable();
    process.stdout.write(
      `  ${name.padEnd(7)} ${parallel} at once: per pod p50 ${pct(lat, 0.5).toFixed(1).padStart(6)} p99 ${pct(lat, 0.99).toFixed(1).padStart(6)} ms, ` +
        `${PODS} in ${wall.toFixed(0).padStart(5)} ms, CPU ${((cpu.user + cpu.system) / 1000).toFixed(0).padStart(4)} ms, ` +
        `event loop stalled up to ${(delay.max / 1e6).toFixed(1)} ms, load ${os.loadavg()[0]!.toFixed(1)}\n`,
    );
  } finally {
    n.deleteNetns(`${id}h`);
    for (let i = 0; i < PODS; i++) n.deleteNetns(`${id}p${i}`);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stdout.write('cni-wiring bench: skipped (needs root for network namespaces)\n');
    return;
  }
  const before = process.env.BENCH_BEFORE_REPO;
  const subjects: [string, Wire][] = [
    ['tabby', await wireOf(REPO)],
    ...(before ? [['before', await wireOf(before)] as [string, Wire]] : []),
    ['ip', ipWire],
  ];
  process.stdout.write(
    `tabby pod wiring (wireWorkload), ${PODS} pods into fresh netns, ${ROUNDS} round(s), node ${process.version}, ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n  anchor: ip -batch per side per pod (iproute2, one process each)\n`,
  );
  for (let r = 0; r < ROUNDS; r++) for (const parallel of [1, 8]) for (const [name, wire] of subjects) await run(name, wire, parallel, r);
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
