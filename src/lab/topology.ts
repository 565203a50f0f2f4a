// The lab's underlay, built over rtnetlink (src/dataplane), never with `ip`:
//
//   <prefix>-underlay  netns holding the "switches": bridge br-a (172.31.1.0/24) and, for
//                      CrossSubnet, br-b (172.31.2.0/24). The root namespace is left untouched.
//   <prefix>-router    the nodes' default gateway: leg r-a 172.31.1.1/24 on br-a (and, for
//                      CrossSubnet, r-b 172.31.2.1/24 on br-b), IPv4 forwarding on — the only path
//                      between the two subnets. (A default route matters even with one subnet: pods
//                      reach their node through proxy ARP for 169.254.1.1, which the kernel answers
//                      only when it has a route to that address through another interface.)
//   <prefix>-<node>    one per node: `eth0` (veth; its peer `n<ordinal>` sits on a bridge in the
//                      underlay netns) with 172.31.<1|2>.<10+ordinal>/24, lo up, forwarding on, and
//                      a default route via its subnet's router leg.
// With IPv6 (lab up --ipv6) every subnet, router leg and node also gets an IPv6 address
// (fd00:31:<1|2>::/64, router ::1, node ::<10+ordinal in hex>), a default IPv6 route and IPv6
// forwarding; duplicate address detection is off in the lab's namespaces so addresses work at once.
import fs from 'node:fs';
import { openNetlink, type Netlink } from '../dataplane/index.js';
import { createNetns, deleteNetns, inNetns, netnsPath } from './netns.js';

export type SubnetName = 'a' | 'b';
export const SUBNETS: Record<
  SubnetName,
  { third: number; cidr: string; gateway: string; cidr6: string; gateway6: string; bridge: string; routerLeg: string }
> = {
  a: {
    third: 1,
    cidr: '172.31.1.0/24',
    gateway: '172.31.1.1',
    cidr6: 'fd00:31:1::/64',
    gateway6: 'fd00:31:1::1',
    bridge: 'br-a',
    routerLeg: 'r-a',
  },
  b: {
    third: 2,
    cidr: '172.31.2.0/24',
    gateway: '172.31.2.1',
    cidr6: 'fd00:31:2::/64',
    gateway6: 'fd00:31:2::1',
    bridge: 'br-b',
    routerLeg: 'r-b',
  },
};
export const MAX_ORDINAL = 240;

export const underlayNetnsName = (prefix: string): string => `${prefix}-underlay`;
export const routerNetnsName = (prefix: string): string => `${prefix}-router`;
export const nodeNetnsName = (prefix: string, node: string): string => `${prefix}-${node}`;
export const nodeAddress = (ordinal: number, subnet: SubnetName): string => `172.31.${SUBNETS[subnet].third}.${10 + ordinal}/24`;
export const nodeAddress6 = (ordinal: number, subnet: SubnetName): string =>
  `fd00:31:${SUBNETS[subnet].third}::${(10 + ordinal).toString(16)}/64`;

/** IPv6 in a fresh namespace: on, no duplicate address detection (set before any link is created in it). */
function enableIpv6(netns: string): void {
  for (const k of ['all', 'default']) {
    setSysctl(netns, `net.ipv6.conf.${k}.disable_ipv6`, '0');
    setSysctl(netns, `net.ipv6.conf.${k}.accept_dad`, '0');
  }
}

async function withNl<T>(netns: string, fn: (nl: Netlink) => Promise<T>): Promise<T> {
  const nl = await openNetlink({ netnsPath: netnsPath(netns) });
  try {
    return await fn(nl);
  } finally {
    nl.close();
  }
}

async function up(nl: Netlink, name: string, master?: number): Promise<number> {
  const l = await nl.mustGetLink(name);
  await nl.setLink({ index: l.index, up: true, ...(master !== undefined ? { master } : {}) });
  return l.index;
}

/** Write a sysctl inside a namespace (/proc/sys/net is per network namespace of the opening thread). */
export function setSysctl(netns: string, key: string, value: string): void {
  inNetns(netns, () => fs.writeFileSync(`/proc/sys/${key.replace(/\./g, '/')}`, value));
}

/** The underlay netns with its bridge(s), and the router for two subnets. */
export async function buildUnderlay(prefix: string, crossSubnet: boolean, ipv6 = false): Promise<void> {
  const ul = underlayNetnsName(prefix);
  createNetns(ul);
  await withNl(ul, async (nl) => {
    await up(nl, 'lo');
    for (const s of crossSubnet ? (['a', 'b'] as const) : (['a'] as const)) {
      await nl.createLink({ name: SUBNETS[s].bridge, info: { kind: 'bridge' } });
      await up(nl, SUBNETS[s].bridge);
    }
  });
  const subnets = crossSubnet ? (['a', 'b'] as const) : (['a'] as const);
  const rt = routerNetnsName(prefix);
  createNetns(rt);
  if (ipv6) enableIpv6(rt);
  await withNl(rt, async (nl) => {
    await up(nl, 'lo');
    for (const s of subnets) {
      const sub = SUBNETS[s];
      // leg in the router, its peer (`ra`/`rb`) created directly in the underlay netns
      await nl.createVeth({ name: sub.routerLeg, peer: { name: `r${s}`, netnsPath: netnsPath(ul) } });
      const idx = await up(nl, sub.routerLeg);
      await nl.addAddress(idx, sub.gateway, 24);
      if (ipv6) await nl.addAddress(idx, sub.gateway6, 64);
    }
  });
  await withNl(ul, async (nl) => {
    for (const s of subnets) {
      const br = await nl.mustGetLink(SUBNETS[s].bridge);
      await up(nl, `r${s}`, br.index);
    }
  });
  setSysctl(rt, 'net.ipv4.ip_forward', '1');
  if (ipv6) setSysctl(rt, 'net.ipv6.conf.all.forwarding', '1');
}

/** A node namespace wired to its subnet's bridge. */
export async function attachNode(
  prefix: string,
  node: { name: string; ordinal: number; subnet: SubnetName; netns: string },
  ipv6 = false,
): Promise<string> {
  const ul = underlayNetnsName(prefix);
  const address = nodeAddress(node.ordinal, node.subnet);
  createNetns(node.netns);
  try {
    if (ipv6) enableIpv6(node.netns);
    const port = `n${node.ordinal}`;
    await withNl(ul, async (nl) => {
      await nl.createVeth({ name: port, peer: { name: 'eth0', netnsPath: netnsPath(node.netns) } });
      const br = await nl.mustGetLink(SUBNETS[node.subnet].bridge);
      await up(nl, port, br.index);
    });
    await withNl(node.netns, async (nl) => {
      await up(nl, 'lo');
      const idx = await up(nl, 'eth0');
      await nl.addAddress(idx, address.split('/')[0]!, 24);
      await nl.addRoute({ dst: '0.0.0.0/0', gateway: SUBNETS[node.subnet].gateway, oif: idx });
      if (ipv6) {
        await nl.addAddress(idx, nodeAddress6(node.ordinal, node.subnet).split('/')[0]!, 64);
        await nl.addRoute({ dst: '::/0', gateway: SUBNETS[node.subnet].gateway6, oif: idx });
      }
    });
    setSysctl(node.netns, 'net.ipv4.ip_forward', '1');
    if (ipv6) setSysctl(node.netns, 'net.ipv6.conf.all.forwarding', '1');
  } catch (err) {
    deleteNetns(node.netns);
    throw err;
  }
  return address;
}

/**
 * Remove a node's namespace: its eth0 and the underlay-side peer go with it. The kernel tears a
 * namespace down asynchronously, so wait (bounded) until the underlay port is really gone.
 */
export async function detachNode(prefix: string, node: { netns: string; ordinal: number }, timeoutMs = 5000): Promise<void> {
  deleteNetns(node.netns);
  const deadline = Date.now() + timeoutMs;
  await withNl(underlayNetnsName(prefix), async (nl) => {
    while (Date.now() < deadline && (await nl.getLink(`n${node.ordinal}`))) await new Promise((r) => setTimeout(r, 20));
  });
}
