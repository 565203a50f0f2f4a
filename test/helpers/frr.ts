// Test helper: a real FRR bgpd (Debian `frr`, /usr/lib/frr/bgpd) in a network namespace with its own
// config file, pid file and vty socket directory (never the system's /etc/frr or /run/frr), looked at
// through `vtysh --vty_socket <dir> -d bgpd`. Runs without zebra (-Z): it installs nothing in a kernel
// and, with `no bgp network import-check`, originates its `network` statements as they are. Killed in
// t.teardown.
//   const f = await startFrr(t, { netns, listen: '172.31.1.3', config: frrConfig({...}) });
//   await f.waitEstablished('172.31.1.11');  (await f.route('10.244.0.0/26'))?.asPath
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { runTag, waitFor, type Teardown } from './netns.js';

const execFileP = promisify(execFile);
const BGPD = '/usr/lib/frr/bgpd';

export const haveFrr = (): boolean => fs.existsSync(BGPD) && fs.existsSync('/usr/bin/vtysh');

export interface FrrOptions {
  netns: string;
  /** bgpd.conf text */
  config: string;
  /** The only address bgpd listens on (-l). */
  listen: string;
}

/** One path of a prefix as `show bgp ipv4 unicast <prefix> json` gives it. */
export interface FrrPath {
  prefix: string;
  /** The peer it came from. */
  peer: string;
  nextHop: string;
  asPath: number[];
  /** Standard communities as FRR prints them ("65002:7"). */
  communities: string[];
  best: boolean;
}

export interface Frr {
  dir: string;
  /** One vtysh command (to bgpd), its output. */
  vtysh(cmd: string): Promise<string>;
  /** Prefixes in `show bgp ipv4 unicast json` (the table). */
  prefixes(): Promise<string[]>;
  /** Every path of one prefix with its attributes, [] when FRR does not have it. */
  route(prefix: string): Promise<FrrPath[]>;
  /** The neighbor's bgpState ('Established', 'Active', …) or ''. */
  neighborState(address: string): Promise<string>;
  /** The neighbor's established-transitions count (a session reset bumps it). */
  established(address: string): Promise<number>;
  waitEstablished(address: string, timeoutMs?: number): Promise<boolean>;
  stop(): Promise<void>;
}

/** bgpd.conf: eBGP/iBGP neighbours and `network` statements, traditional defaults, no policy required. */
export function frrConfig(o: {
  asn: number;
  routerId: string;
  neighbors: { address: string; asn: number }[];
  networks?: string[];
}): string {
  return `${[
    'frr defaults traditional',
    'hostname frr',
    '!',
    `router bgp ${o.asn}`,
    ` bgp router-id ${o.routerId}`,
    ' no bgp ebgp-requires-policy',
    ' no bgp network import-check',
    ...o.neighbors.map((n) => ` neighbor ${n.address} remote-as ${n.asn}`),
    ...o.neighbors.map((n) => ` neighbor ${n.address} timers connect 2`),
    ' address-family ipv4 unicast',
    ...(o.networks ?? []).map((p) => `  network ${p}`),
    ' exit-address-family',
    '!',
  ].join('\n')}\n`;
}

export async function startFrr(t: Teardown, o: FrrOptions): Promise<Frr> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}-frr-`));
  const conf = path.join(dir, 'bgpd.conf');
  const pid = path.join(dir, 'bgpd.pid');
  const log = path.join(dir, 'bgpd.log');
  fs.writeFileSync(conf, o.config);
  const vtysh = async (cmd: string): Promise<string> => {
    const r = await execFileP('ip', ['netns', 'exec', o.netns, 'vtysh', '--vty_socket', dir, '-d', 'bgpd', '-c', cmd], { timeout: 10_000 });
    return r.stdout;
  };
  const out = fs.openSync(log, 'a');
  // -Z no zebra, -S no user switch (root in a test), -P 0 no TCP vty, -l one listen address.
  const proc: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', o.netns, BGPD, '-f', conf, '-i', pid, '--vty_socket', dir, '-Z', '-S', '-P', '0', '-l', o.listen, '--log', 'stdout'],
    { stdio: ['ignore', out, out] },
  );
  fs.closeSync(out);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const kill = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGKILL');
    await exited;
  };
  t.teardown(async () => {
    await kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const ok = await waitFor(
    async () => {
      if (proc.exitCode !== null) return true;
      try {
        await vtysh('show bgp summary');
        return true;
      } catch {
        return false;
      }
    },
    15_000,
    100,
  );
  if (!ok || proc.exitCode !== null) throw new Error(`bgpd did not start: ${fs.readFileSync(log, 'utf8')}`);

  const neighbor = async (address: string): Promise<Record<string, unknown> | undefined> => {
    try {
      const j = JSON.parse(await vtysh(`show bgp neighbors ${address} json`)) as Record<string, Record<string, unknown>>;
      return j[address];
    } catch {
      return undefined;
    }
  };
  const neighborState = async (address: string): Promise<string> => String((await neighbor(address))?.bgpState ?? '');
  return {
    dir,
    vtysh,
    async prefixes() {
      const j = JSON.parse(await vtysh('show bgp ipv4 unicast json')) as { routes?: Record<string, unknown> };
      return Object.keys(j.routes ?? {});
    },
    async route(prefix) {
      const j = JSON.parse(await vtysh(`show bgp ipv4 unicast ${prefix} json`)) as {
        prefix?: string;
        paths?: {
          aspath?: { string?: string };
          community?: { string?: string };
          nexthops?: { ip?: string }[];
          peer?: { peerId?: string };
          bestpath?: { overall?: boolean };
        }[];
      };
      if (j.prefix !== prefix) return [];
      return (j.paths ?? []).map((p) => ({
        prefix,
        peer: p.peer?.peerId ?? '',
        nextHop: p.nexthops?.[0]?.ip ?? '',
        asPath: (p.aspath?.string ?? '').split(/\s+/).filter(Boolean).map(Number),
        communities: (p.community?.string ?? '').split(/\s+/).filter(Boolean),
        best: !!p.bestpath?.overall,
      }));
    },
    neighborState,
    async established(address) {
      return Number((await neighbor(address))?.connectionsEstablished ?? 0);
    },
    async waitEstablished(address, timeoutMs = 20_000) {
      return waitFor(async () => (await neighborState(address)) === 'Established', timeoutMs, 200);
    },
    stop: kill,
  };
}
