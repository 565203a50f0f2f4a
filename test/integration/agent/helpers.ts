// Shared helpers of the agent's integration tests: one lab per test file (real tabby-node processes
// in network namespaces, pods through the real CNI plugin), route inspection with `ip -j`, and a
// continuous ping that counts losses.
import fs from 'node:fs';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createLab, destroyLab, agentMainPath, type Lab, type LabOptions } from '../../../src/lab/lab.js';
import { netnsPath } from '../../../src/lab/netns.js';
import { repoRoot } from '../../../src/lab/pods.js';
import type { AgentStatusJson } from '../../../src/agent/status-types.js';
import { runId } from '../../helpers/run-tag.js';

export const run = runId();

/** undefined when the agent's integration tests can run here, else a one-line reason. */
export function labSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  if (!agentMainPath()) return 'tabby-node is not built (dist/src/agent/main.js)';
  if (!fs.existsSync(`${repoRoot()}/dist/src/cni/main.js`)) return 'the CNI plugin is not built (dist/src/cni/main.js)';
  return undefined;
}

export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A fresh lab named tb<run>ag<tag>-…, destroyed in teardown (also on failure). */
export async function agentLab(t: Teardown, tag: string, opts: LabOptions = {}): Promise<Lab> {
  const prefix = `tb${run}ag${tag}`;
  const stateDir = `/tmp/${prefix}-state`;
  await destroyLab({ prefix, stateDir });
  t.teardown(async () => {
    if (process.env.TABBY_KEEP_LAB) return;
    await destroyLab({ prefix, stateDir });
  });
  return createLab({
    prefix,
    stateDir,
    ...opts,
    agentEnv: { TABBY_LOG_LEVEL: process.env.TABBY_LOG_LEVEL ?? 'info', ...(opts.agentEnv ?? {}) },
  });
}

export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  type?: string;
  flags?: string[];
}

export function routesOf(netns: string): IpRoute[] {
  return JSON.parse(execFileSync('ip', ['-j', '-n', netns, 'route', 'show'], { encoding: 'utf8' })) as IpRoute[];
}

/** The kernel route for a destination prefix (as `ip route` prints it: "10.244.1.0/26"). */
export const routeTo = (netns: string, dst: string): IpRoute | undefined => routesOf(netns).find((r) => r.dst === dst);

export async function until<T>(fn: () => T | Promise<T>, timeoutMs: number, stepMs = 100): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      /* retry */
    }
    if (Date.now() > end) return undefined;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * A node's /status, read again (for up to 20 s) while a read gives nothing: lab.agentStatus gives up
 * after 3 s and returns undefined on any error, and under load (19.8) one read of a running agent did.
 */
export async function statusOf(lab: Lab, node: string): Promise<AgentStatusJson | undefined> {
  return until(() => lab.agentStatus(node), 20_000, 250);
}

/** Own confirmed block of a node (its first), from its agent's /status. */
export async function blockOf(lab: Lab, node: string): Promise<string> {
  const s = await until(async () => {
    const x = await lab.agentStatus(node);
    return x?.blocks.find((b) => b.state === 'confirmed') ? x : undefined;
  }, 20_000);
  const b = s?.blocks.find((x) => x.state === 'confirmed')?.cidr;
  if (!b) throw new Error(`${node} has no confirmed block`);
  return b;
}

export const nodeIp = (lab: Lab, node: string): string => lab.node(node).address.split('/')[0]!;

/** ping every intervalMs from a pod (or node) netns until stopped; counts sent/received. */
export class ContinuousPing {
  private proc: ChildProcess;
  private out = '';
  /** ping's summary: packets sent and received, and `ms`, the time it ran (its own `time …ms`) */
  readonly done: Promise<{ sent: number; received: number; ms: number; text: string }>;
  constructor(netns: string, target: string, opts: { intervalMs?: number; durationSec: number }) {
    const i = String((opts.intervalMs ?? 100) / 1000);
    this.proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        netns.replace(/^\/var\/run\/netns\//, ''),
        'ping',
        '-n',
        '-i',
        i,
        '-w',
        String(opts.durationSec),
        '-W',
        '1',
        target,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.out += d.toString();
    });
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.out += d.toString();
    });
    this.done = new Promise((resolve) => {
      this.proc.on('exit', () => {
        const m = /(\d+) packets transmitted, (\d+) received/.exec(this.out);
        const ms = Number(/, time (\d+)ms/.exec(this.out)?.[1] ?? 0);
        resolve({ sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), ms, text: this.out.split('\n').slice(-4).join('\n') });
      });
    });
  }
  stop(): void {
    this.proc.kill('SIGINT');
  }
}

/** `ip monitor route` in a namespace: collects every line (Deleted … lines are route removals). */
export class RouteMonitor {
  private proc: ChildProcess;
  lines: string[] = [];
  constructor(netns: string) {
    this.proc = spawn('ip', ['-n', netns, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      this.lines.push(...parts.filter(Boolean));
    });
  }
  deleted(filter: (line: string) => boolean = () => true): string[] {
    return this.lines.filter((l) => l.startsWith('Deleted') && filter(l));
  }
  stop(): void {
    this.proc.kill();
  }
}

export function tabbyctl(lab: Lab, node: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return lab.exec(node, process.execPath, [`${repoRoot()}/dist/src/cli/main.js`, ...args]);
}

export { netnsPath };
