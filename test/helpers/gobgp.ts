// Test helper: a real GoBGP (`gobgpd` + `gobgp` CLI from Debian) in a network namespace with its own
// TOML config; the gRPC API listens on 127.0.0.1:<apiPort> inside that netns. Killed in t.teardown.
//   const g = await startGobgp(t, { netns: pair.b.name, config: toml });
//   await g.gobgp('neighbor');  await g.waitEstablished('10.77.0.1');
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { hasProgram, runTag, waitFor, type Teardown } from './netns.js';

const execFileP = promisify(execFile);

export const haveGobgp = (): boolean => hasProgram('gobgpd') && hasProgram('gobgp');

export interface GobgpOptions {
  netns: string;
  /** gobgpd.toml text */
  config: string;
  apiPort?: number;
}

/** One path of `gobgp global rib -j`, flattened. */
export interface GobgpPath {
  prefix: string;
  best: boolean;
  nextHop: string;
  asPath: number[];
  communities: number[];
  /** MP_REACH next hop for IPv6, ORIGINATOR_ID, CLUSTER_LIST … as gobgp reports them (type → attr object). */
  attrs: Record<number, Record<string, unknown>>;
  /** The neighbor it came from ('' for local routes). */
  neighbor: string;
}

export interface Gobgp {
  dir: string;
  /** `gobgp global rib -a ipv4|ipv6 -j`, flattened (every path of every prefix). */
  rib(family?: 'ipv4' | 'ipv6'): Promise<GobgpPath[]>;
  /** `gobgp global rib -a <family> add <prefix> nexthop <nh> [community …] [aspath …]`. */
  addRoute(prefix: string, o: { nextHop: string; communities?: string[]; asPath?: number[] }): Promise<void>;
  /** Run `gobgp -p <port> args…` in the netns, return stdout. */
  gobgp(...args: string[]): Promise<string>;
  /** `gobgp … -j` parsed as JSON. */
  gobgpJson<T = unknown>(...args: string[]): Promise<T>;
  /** The neighbor's session state ('established', 'active', …) or '' when unknown. */
  neighborState(address: string): Promise<string>;
  waitEstablished(address: string, timeoutMs?: number): Promise<boolean>;
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startGobgp(t: Teardown, o: GobgpOptions): Promise<Gobgp> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}-gobgp-`));
  const conf = path.join(dir, 'gobgpd.toml');
  const log = path.join(dir, 'gobgpd.log');
  const port = o.apiPort ?? 50051;
  fs.writeFileSync(conf, o.config);
  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const gobgp = async (...args: string[]): Promise<string> => {
    const r = await execFileP('ip', ['netns', 'exec', o.netns, 'gobgp', '-u', '127.0.0.1', '-p', String(port), ...args], { timeout: 5000 });
    return r.stdout;
  };
  const launch = async (): Promise<void> => {
    const out = fs.openSync(log, 'a');
    const p = spawn(
      'ip',
      ['netns', 'exec', o.netns, 'gobgpd', '-f', conf, '-t', 'toml', '--api-hosts', `127.0.0.1:${port}`, '--log-level', 'info'],
      { stdio: ['ignore', out, out] },
    );
    fs.closeSync(out);
    proc = p;
    exited = new Promise((r) => p.once('exit', () => r()));
    const ok = await waitFor(
      async () => {
        if (p.exitCode !== null) return true;
        try {
          await gobgp('global');
          return true;
        } catch {
          return false;
        }
      },
      10_000,
      100,
    );
    if (!ok || p.exitCode !== null) throw new Error(`gobgpd did not start: ${fs.readFileSync(log, 'utf8')}`);
  };
  const kill = async (): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGKILL');
    await exited;
  };
  t.teardown(async () => {
    await kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await launch();
  const neighborState = async (address: string): Promise<string> => {
    try {
      const j = JSON.parse(await gobgp('neighbor', address, '-j')) as { state?: { session_state?: string | number } };
      const s = j.state?.session_state;
      // gobgp 3 prints the enum as a number (6 = established) or as text depending on version.
      const names = ['', 'idle', 'connect', 'active', 'opensent', 'openconfirm', 'established'];
      return typeof s === 'number' ? (names[s] ?? String(s)) : String(s ?? '').toLowerCase();
    } catch {
      return '';
    }
  };
  const rib = async (family: 'ipv4' | 'ipv6' = 'ipv4'): Promise<GobgpPath[]> => {
    const out = (await gobgp('global', 'rib', '-a', family, '-j')).trim();
    if (!out || out === 'null') return [];
    const j = JSON.parse(out) as Record<
      string,
      { nlri?: { prefix?: string }; best?: boolean; 'neighbor-ip'?: string; attrs?: ({ type: number } & Record<string, unknown>)[] }[]
    >;
    const paths: GobgpPath[] = [];
    for (const [prefix, list] of Object.entries(j)) {
      for (const p of list) {
        const attrs: Record<number, Record<string, unknown>> = {};
        for (const a of p.attrs ?? []) attrs[a.type] = a;
        const segs = (attrs[2]?.as_paths as { asns?: number[] }[] | undefined) ?? [];
        const mp = attrs[14] as { nexthop?: string } | undefined;
        paths.push({
          prefix,
          best: !!p.best,
          nextHop: String((attrs[3] as { nexthop?: string } | undefined)?.nexthop ?? mp?.nexthop ?? ''),
          asPath: segs.flatMap((sg) => sg.asns ?? []),
          communities: (attrs[8]?.communities as number[] | undefined) ?? [],
          attrs,
          neighbor: String(p['neighbor-ip'] ?? ''),
        });
      }
    }
    return paths;
  };
  return {
    dir,
    rib,
    async addRoute(prefix, r) {
      const fam = prefix.includes(':') ? 'ipv6' : 'ipv4';
      const args = ['global', 'rib', '-a', fam, 'add', prefix, 'nexthop', r.nextHop];
      if (r.communities?.length) args.push('community', r.communities.join(','));
      if (r.asPath?.length) args.push('aspath', r.asPath.join(','));
      await gobgp(...args);
    },
    gobgp,
    async gobgpJson<T>(...args: string[]) {
      return JSON.parse(await gobgp(...args, '-j')) as T;
    },
    neighborState,
    async waitEstablished(address, timeoutMs = 15_000) {
      return waitFor(async () => (await neighborState(address)).includes('established'), timeoutMs, 100);
    },
    kill,
    async restart() {
      await kill();
      await launch();
    },
    async stop() {
      await kill();
    },
  };
}

export type GobgpFamily = 'ipv4-unicast' | 'ipv6-unicast';

export interface GobgpNeighborConfig {
  address: string;
  peerAs: number;
  /** eBGP with a local AS other than the global one. */
  localAs?: number;
  localAddress?: string;
  passive?: boolean;
  families?: GobgpFamily[];
  holdTime?: number;
  keepaliveInterval?: number;
  connectRetry?: number;
}

/** gobgpd.toml text: the one place tests and benchmarks write GoBGP's configuration. */
export function gobgpConfig(o: {
  asn: number;
  routerId: string;
  /** -1: no listening socket (GoBGP only dials). */
  port?: number;
  localAddressList?: string[];
  neighbors: GobgpNeighborConfig[];
}): string {
  const lines = ['[global.config]', `  as = ${o.asn}`, `  router-id = "${o.routerId}"`];
  if (o.port !== undefined) lines.push(`  port = ${o.port}`);
  if (o.localAddressList) lines.push(`  local-address-list = [${o.localAddressList.map((a) => `"${a}"`).join(', ')}]`);
  for (const n of o.neighbors) {
    lines.push('[[neighbors]]', '  [neighbors.config]', `    neighbor-address = "${n.address}"`, `    peer-as = ${n.peerAs}`);
    if (n.localAs !== undefined) lines.push(`    local-as = ${n.localAs}`);
    const timers = [
      n.holdTime !== undefined ? `    hold-time = ${n.holdTime}` : '',
      n.keepaliveInterval !== undefined ? `    keepalive-interval = ${n.keepaliveInterval}` : '',
      n.connectRetry !== undefined ? `    connect-retry = ${n.connectRetry}` : '',
    ].filter(Boolean);
    if (timers.length) lines.push('  [neighbors.timers.config]', ...timers);
    if (n.localAddress !== undefined || n.passive) {
      lines.push('  [neighbors.transport.config]');
      if (n.passive) lines.push('    passive-mode = true');
      if (n.localAddress !== undefined) lines.push(`    local-address = "${n.localAddress}"`);
    }
    for (const f of n.families ?? ['ipv4-unicast']) {
      lines.push('  [[neighbors.afi-safis]]', '    [neighbors.afi-safis.config]', `      afi-safi-name = "${f}"`);
    }
  }
  return `${lines.join('\n')}\n`;
}
