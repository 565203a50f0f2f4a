// Test helper: two network namespaces joined by a veth, with IPv4/IPv6 addresses, made with `ip`
// (tests may use `ip`). Names: <run tag (run-tag.ts)><tag>, ≤ 15 chars. Everything is removed in
// t.teardown, also on failure. Reused by the BGP and agent interop tests.
import { execFileSync, spawnSync } from 'node:child_process';
import { runTag as baseTag } from './run-tag.js';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export const isRoot = (): boolean => process.getuid?.() === 0;

export function runTag(): string {
  return baseTag().slice(0, 11);
}

/** `ip [-n ns] args…` → stdout; throws with stderr on failure. */
export function ip(ns: string | undefined, ...args: string[]): string {
  return execFileSync('ip', ns ? ['-n', ns, ...args] : args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Run a command inside a netns (synchronously), returning {status, stdout, stderr}. */
export function execIn(ns: string, cmd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export interface NsEnd {
  /** netns name (for `ip -n`, `ip netns exec`) */
  name: string;
  /** /var/run/netns/<name> (for native().withNetns, SessionConfig.netns) */
  path: string;
  /** veth name inside this netns */
  link: string;
  /** IPv4 addresses (first is the primary), without prefix length */
  v4: string[];
  /** IPv6 addresses (global), without prefix length */
  v6: string[];
}

export interface NsPair {
  a: NsEnd;
  b: NsEnd;
  /**
   * A silent cable cut: every packet dropped in both netns (nftables, links stay up, so nobody
   * sees a link-down; sessions must die by hold timer).
   */
  cut(): void;
  /** Undo cut(). */
  restore(): void;
  /** Take the veth down on both sides (carrier loss, which daemons notice at once). */
  linkDown(): void;
  linkUp(): void;
}

export interface NsPairOptions {
  /** IPv4 addresses with prefix for side a / side b, e.g. ['10.77.0.1/24'] */
  a4?: string[];
  b4?: string[];
  a6?: string[];
  b6?: string[];
}

/** Create netns `<run><tag>a` and `<run><tag>b`, a veth between them, addresses, lo up. */
export function makeNsPair(t: Teardown, tag: string, o: NsPairOptions): NsPair {
  const base = `${runTag()}${tag}`.slice(0, 14);
  const names = [`${base}a`, `${base}b`] as const;
  for (const n of names) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  t.teardown(() => {
    for (const n of names) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  });
  for (const n of names) {
    ip(undefined, 'netns', 'add', n);
    ip(n, 'link', 'set', 'lo', 'up');
  }
  const la = 'veth0';
  const lb = 'veth1';
  ip(names[0], 'link', 'add', la, 'type', 'veth', 'peer', 'name', lb, 'netns', names[1]);
  const strip = (c: string): string => c.split('/')[0] as string;
  const setup = (ns: string, link: string, v4: string[], v6: string[]): void => {
    if (v6.length) {
      // No DAD delay: addresses usable at once.
      spawnSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${link}.accept_dad=0`], { stdio: 'ignore' });
      spawnSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0'], { stdio: 'ignore' });
      // Keep IPv6 addresses across linkDown()/linkUp() (the kernel flushes them by default).
      spawnSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${link}.keep_addr_on_down=1`], { stdio: 'ignore' });
    }
    for (const c of v4) ip(ns, 'addr', 'add', c, 'dev', link);
    for (const c of v6) ip(ns, 'addr', 'add', c, 'dev', link, 'nodad');
    ip(ns, 'link', 'set', link, 'up');
  };
  setup(names[0], la, o.a4 ?? [], o.a6 ?? []);
  setup(names[1], lb, o.b4 ?? [], o.b6 ?? []);
  const end = (n: string, link: string, v4: string[] = [], v6: string[] = []): NsEnd => ({
    name: n,
    path: `/var/run/netns/${n}`,
    link,
    v4: v4.map(strip),
    v6: v6.map(strip),
  });
  return {
    a: end(names[0], la, o.a4, o.a6),
    b: end(names[1], lb, o.b4, o.b6),
    cut() {
      for (const n of names) {
        execFileSync(
          'ip',
          [
            'netns',
            'exec',
            n,
            'nft',
            'add table inet tbcut; add chain inet tbcut in { type filter hook input priority -300; policy drop; }; add chain inet tbcut out { type filter hook output priority -300; policy drop; }',
          ],
          { stdio: 'ignore' },
        );
      }
    },
    restore() {
      for (const n of names) spawnSync('ip', ['netns', 'exec', n, 'nft', 'delete table inet tbcut'], { stdio: 'ignore' });
    },
    linkDown() {
      ip(names[0], 'link', 'set', la, 'down');
      ip(names[1], 'link', 'set', lb, 'down');
    },
    linkUp() {
      ip(names[0], 'link', 'set', la, 'up');
      ip(names[1], 'link', 'set', lb, 'up');
    },
  };
}

/** Poll fn until it returns true (or a truthy value) or the deadline passes; returns the last value. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Whether a program is installed (for skip conditions). */
export function hasProgram(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}
