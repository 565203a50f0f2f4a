// Idle memory benchmark (not a test): what an idle tabby-node holds, the way the issue states the aim —
// a lab of 4 nodes (`tabbyctl lab`: real tabby-node processes in network namespaces, node-to-node mesh),
// so each agent has 3 BGP peers and 1 block, left alone for BENCH_IDLE_SETTLE seconds (default 60) after
// the cluster converged; then VmRSS (and its anonymous / file-backed parts, PSS) of every agent, sampled
// 5 times over 5 s (the mean), printed in MiB (VmRSS kB / 1024, as the issue's figures); the report's MB are 10^6. Anchors in the same run: BIRD 2 idle with 3 configured BGP peers (passive:
// the lab's nodes do not peer with it) and the pool's block as a static route exported to the kernel, and
// a bare `node` process (the floor any Node.js daemon starts from). A RESULT line per daemon for the report
// (seconds = the age at which memory was read, the same for all; the memory ratio is the figure).
// Usage: node dist/test/bench/idle.js   BENCH_QUICK=1: settle 20 s;  BENCH_BEFORE_REPO=<a built checkout of an
//        earlier tabby>: a second lab of that tree's agents, for before/after in one run.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanup, procStatus, sleep, stopOnTeardown, t } from './proc.js';
import { startBird, haveBird } from '../helpers/bird.js';
import { isRoot } from '../helpers/netns.js';
import type { Lab } from '../../src/lab/lab.js';

process.env.TABBY_LOG_LEVEL ??= 'error';
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const quick = !!process.env.BENCH_QUICK;
const settleMs = Number(process.env.BENCH_IDLE_SETTLE ?? (quick ? 20 : 60)) * 1000;
const SAMPLES = 5;

interface Mem {
  rss: number;
  anon: number;
  file: number;
  pss: number;
}

/** Memory of a process: VmRSS, RssAnon, RssFile (status) and Pss (smaps_rollup), bytes. */
function memOf(pid: number): Mem {
  const pss = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return {
    rss: procStatus(pid, 'VmRSS'),
    anon: procStatus(pid, 'RssAnon'),
    file: procStatus(pid, 'RssFile'),
    pss: pss ? Number(pss[1]) * 1024 : 0,
  };
}

/** The mean of SAMPLES readings one second apart, per process. */
async function sampled(pids: number[]): Promise<Mem[]> {
  const sums = pids.map(() => ({ rss: 0, anon: 0, file: 0, pss: 0 }));
  for (let i = 0; i < SAMPLES; i++) {
    pids.forEach((p, k) => {
      const m = memOf(p);
      for (const f of ['rss', 'anon', 'file', 'pss'] as const) sums[k]![f] += m[f] / SAMPLES;
    });
    await sleep(1000);
  }
  return sums;
}

const mb = (b: number): string => (b / 2 ** 20).toFixed(1);
const line = (m: Mem): string => `VmRSS ${mb(m.rss)} MiB (anon ${mb(m.anon)}, file ${mb(m.file)}; PSS ${mb(m.pss)})`;
const mean = (ms: Mem[]): Mem => {
  const out = { rss: 0, anon: 0, file: 0, pss: 0 };
  for (const m of ms) for (const f of ['rss', 'anon', 'file', 'pss'] as const) out[f] += m[f] / ms.length;
  return out;
};

/** A 4-node lab of the tree at `root`, converged, then left alone: its agents' memory. */
async function labAgents(root: string, tag: string): Promise<{ nodes: Mem[]; convergedS: number; version: string }> {
  const { createLab, destroyLab } = (await import(path.join(root, 'dist/src/lab/lab.js'))) as typeof import('../../src/lab/lab.js');
  const { waitConverged } = (await import(path.join(root, 'dist/src/lab/converge.js'))) as typeof import('../../src/lab/converge.js');
  const prefix = `tbidle${process.pid.toString(36)}${tag}`;
  const stateDir = path.join(os.tmpdir(), `${prefix}-state`);
  await destroyLab({ prefix, stateDir });
  t.teardown(() => destroyLab({ prefix, stateDir }));
  const t0 = performance.now();
  const lab: Lab = await createLab({ prefix, stateDir, nodes: 4, mode: 'routed', agentEnv: { TABBY_LOG_LEVEL: 'info' } });
  const w = await waitConverged(lab, { timeoutMs: 120_000 });
  if (!w.ok) throw new Error(`the ${tag} lab did not converge: ${JSON.stringify(w).slice(0, 500)}`);
  const convergedS = (performance.now() - t0) / 1000;
  await sleep(settleMs);
  const pids = lab.nodes.map((n) => n.agent!.pid);
  const nodes = await sampled(pids);
  const status = await lab.agentStatus('node-1');
  const peers = status?.peers.filter((p) => p.state === 'Established').length ?? 0;
  const blocks = status?.blocks.length ?? 0;
  const entry = path.relative(root, fs.readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0')[1] ?? '');
  return { nodes, convergedS, version: `${peers} peers Established, ${blocks} block(s) on node-1; runs ${entry}` };
}

async function birdIdle(): Promise<Mem | undefined> {
  if (!haveBird()) return undefined;
  const ns = `tbidle${process.pid.toString(36)}b`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', ns]));
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', ns, 'addr', 'add', '172.31.1.10/24', 'dev', 'lo']);
  const peers = [11, 12, 13]
    .map(
      (i) =>
        `protocol bgp n${i} { local 172.31.1.10 as 64512; neighbor 172.31.1.${i} as 64512; passive on; ipv4 { import all; export all; }; }`,
    )
    .join('\n');
  const bird = await startBird(t, {
    netns: ns,
    config: `router id 172.31.1.10;\nprotocol device {}\nprotocol kernel { ipv4 { export all; }; }\nprotocol static { ipv4; route 10.244.1.0/26 blackhole; }\n${peers}\n`,
  });
  await sleep(Math.min(settleMs, 10_000));
  const pid = Number(execFileSync('pgrep', ['-f', bird.socket], { encoding: 'utf8' }).trim().split('\n').pop());
  return (await sampled([pid]))[0];
}

async function nodeFloor(): Promise<Mem> {
  const p = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  stopOnTeardown(p, 1000);
  await sleep(2000);
  return (await sampled([p.pid!]))[0]!;
}

async function main(): Promise<void> {
  if (!isRoot()) {
    console.log('idle: skipped (needs root: network namespaces)');
    return;
  }
  console.log(
    `idle: a 4-node lab (3 BGP peers + 1 block per agent), memory ${settleMs / 1000} s after convergence; load average at start ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} (${os.cpus().length} cores, shared)`,
  );
  const trees: [string, string][] = [['tabby-node', repo]];
  if (process.env.BENCH_BEFORE_REPO) trees.push(['tabby-old', path.resolve(process.env.BENCH_BEFORE_REPO)]);
  const result: Record<string, unknown> = { bench: 'idle', n: 3 };
  for (const [name, root] of trees) {
    const r = await labAgents(root, name === 'tabby-node' ? 'n' : 'o');
    const m = mean(r.nodes);
    r.nodes.forEach((x, i) => console.log(`  ${name} node-${i + 1}: ${line(x)}`));
    console.log(`  ${name} mean: ${line(m)}   (converged in ${r.convergedS.toFixed(1)} s; ${r.version})`);
    result[name === 'tabby-node' ? 'tabby' : 'tabby-before'] = { receiver: name, seconds: settleMs / 1000, peakRss: Math.round(m.rss) };
    await cleanup();
  }
  const bird = await birdIdle().catch((e: unknown) => {
    console.log(`  BIRD 2: not measured (${e instanceof Error ? e.message : String(e)})`);
    return undefined;
  });
  if (bird) {
    console.log(`  BIRD 2 (3 passive peers, 1 static route to the kernel): ${line(bird)}`);
    result.bird = { receiver: 'BIRD 2', seconds: settleMs / 1000, peakRss: Math.round(bird.rss) };
  }
  const floor = await nodeFloor();
  console.log(`  bare node (setInterval only): ${line(floor)}`);
  result.node = { receiver: 'bare node', seconds: settleMs / 1000, peakRss: Math.round(floor.rss) };
  const tabby = (result.tabby as { peakRss: number }).peakRss;
  console.log(
    `  tabby-node idle ${mb(tabby)} MiB = ${(tabby / 1e6).toFixed(1)} MB (aim < 60 MB, 10^6 bytes, with margin); above bare node ${mb(tabby - floor.rss)} MiB${bird ? `; ${(tabby / bird.rss).toFixed(1)}× BIRD 2` : ''}; load average at end ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log(`RESULT ${JSON.stringify(result)}`);
  await cleanup();
}

main().catch(async (e: unknown) => {
  console.error(e);
  await cleanup();
  process.exitCode = 1;
});
