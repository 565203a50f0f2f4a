// Test helpers for the dataplane's integration tests: named netns with cleanup, a two-"node" topology
// (two netns joined by a veth), `ip` to look, ping, wait-until. Names follow COMMON.md:
// <run tag (run-tag.ts)><tag>, ≤ 15 chars.
import { execFileSync, spawnSync } from 'node:child_process';
import { native } from '../../src/native/index.js';
import { Netlink } from '../../src/dataplane/netlink/netlink.js';
import { writeSysctl } from '../../src/dataplane/sysctl.js';
import { runTag } from './run-tag.js';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export const isRoot = (): boolean => process.getuid?.() === 0;

export function runId(): string {
  return runTag().slice(0, 12);
}

/** A fresh netns named runId()+tag, deleted in teardown. Returns {name, path}. */
export function makeNetns(t: Teardown, tag: string): { name: string; path: string } {
  const name = `${runId()}${tag}`.slice(0, 15);
  native().deleteNetns(name);
  const path = native().createNetns(name);
  t.teardown(() => {
    native().deleteNetns(name);
  });
  return { name, path };
}

/** `ip -n ns <args>` → stdout (throws on failure). */
export function ipIn(ns: string | undefined, ...args: string[]): string {
  const full = ns ? ['-n', ns, ...args] : args;
  return execFileSync('ip', full, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One ping from netns `ns` to `ip`: true when answered (1 s wait per try, `tries` tries). */
export function ping(ns: string, ip: string, tries = 3): boolean {
  for (let i = 0; i < tries; i++) {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', ip], { stdio: 'ignore' });
    if (r.status === 0) return true;
  }
  return false;
}

export async function waitUntil(fn: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export interface TestNode {
  name: string;
  path: string;
  /** the uplink's name in this node (both are "up0") and this node's address on it */
  uplink: string;
  uplinkIndex: number;
  ip: string;
  nl: Netlink;
}

/**
 * Two nodes: netns <run>n1 and <run>n2 joined by a veth "up0"—"up0", 172.31.0.1/24 and .2/24,
 * ip_forward=1, each with a default route via the other (so proxy ARP answers for 169.254.1.1).
 */
export async function twoNodes(t: Teardown, tag: string): Promise<[TestNode, TestNode]> {
  const a = makeNetns(t, `${tag}n1`);
  const b = makeNetns(t, `${tag}n2`);
  const na = new Netlink({ netnsPath: a.path });
  const nb = new Netlink({ netnsPath: b.path });
  t.teardown(() => {
    na.close();
    nb.close();
  });
  await na.createVeth({ name: 'up0', peer: { name: 'up0', netnsPath: b.path } });
  const nodes: TestNode[] = [];
  for (const [ns, nl, ip, other] of [
    [a, na, '172.31.0.1', '172.31.0.2'],
    [b, nb, '172.31.0.2', '172.31.0.1'],
  ] as const) {
    const up = await nl.mustGetLink('up0');
    const lo = await nl.mustGetLink('lo');
    await nl.setLinkUp(lo.index);
    await nl.setLinkUp(up.index);
    await nl.addAddress(up.index, ip, 24);
    await nl.addRoute({ dst: '0.0.0.0/0', gateway: other, oif: up.index });
    writeSysctl('net/ipv4/ip_forward', 1, ns.path);
    nodes.push({ name: ns.name, path: ns.path, uplink: 'up0', uplinkIndex: up.index, ip, nl });
  }
  return [nodes[0]!, nodes[1]!];
}
