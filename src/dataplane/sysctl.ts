// sysctls under /proc/sys, optionally inside another netns. /proc/sys/net/* shows the netns of the
// *calling thread*, so a write for a pod's netns happens synchronously inside native().withNetns().
import fs from 'node:fs';
import { native } from '../native/index.js';

export class SysctlError extends Error {
  readonly code = 'ESYSCTL';
  constructor(
    readonly key: string,
    override readonly cause: unknown,
  ) {
    super(`sysctl ${key}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'SysctlError';
  }
}

const pathOf = (key: string): string => `/proc/sys/${key.replace(/\./g, '/')}`;

function inNetns<T>(netnsPath: string | undefined, fn: () => T): T {
  return netnsPath ? native().withNetns(netnsPath, fn) : fn();
}

/** Key as "net/ipv4/conf/cali1234/proxy_arp" (slashes: interface names may contain dots). */
export function writeSysctl(key: string, value: string | number, netnsPath?: string): void {
  const p = key.includes('/') ? `/proc/sys/${key}` : pathOf(key);
  try {
    inNetns(netnsPath, () => fs.writeFileSync(p, `${value}\n`));
  } catch (e) {
    throw new SysctlError(key, e);
  }
}

export function readSysctl(key: string, netnsPath?: string): string | undefined {
  const p = key.includes('/') ? `/proc/sys/${key}` : pathOf(key);
  try {
    return inNetns(netnsPath, () => fs.readFileSync(p, 'utf8').trim());
  } catch {
    return undefined;
  }
}

/** Write several sysctls in one netns switch; returns nothing, throws SysctlError on the first failure. */
export function writeSysctls(values: [key: string, value: string | number][], netnsPath?: string): void {
  let failed: SysctlError | undefined;
  inNetns(netnsPath, () => {
    for (const [key, value] of values) {
      const p = key.includes('/') ? `/proc/sys/${key}` : pathOf(key);
      try {
        fs.writeFileSync(p, `${value}\n`);
      } catch (e) {
        failed = new SysctlError(key, e);
        return;
      }
    }
  });
  if (failed) throw failed;
}

/** net.ipv4.ip_forward=1 and (when IPv6 is there) net.ipv6.conf.all.forwarding=1. */
export function ensureForwarding(opts: { ipv6?: boolean; netnsPath?: string } = {}): void {
  writeSysctl('net/ipv4/ip_forward', 1, opts.netnsPath);
  if (opts.ipv6 !== false && readSysctl('net/ipv6/conf/all/forwarding', opts.netnsPath) !== undefined) {
    writeSysctl('net/ipv6/conf/all/forwarding', 1, opts.netnsPath);
  }
}
