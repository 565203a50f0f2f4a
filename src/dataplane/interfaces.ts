// listInterfaces: every link of a netns with its addresses — what IP autodetection matches against
// (interface=, skip-interface=, cidr=, can-reach=, first-found).
import type { Netlink } from './netlink/netlink.js';
import type { Family } from './netlink/messages.js';
import { IFF, RT_SCOPE } from './netlink/constants.js';

export type AddressScope = 'global' | 'site' | 'link' | 'host' | 'nowhere' | number;

export interface InterfaceAddress {
  address: string;
  prefixLen: number;
  family: Family;
  scope: AddressScope;
}

export interface Interface {
  index: number;
  name: string;
  /** ifi_flags (IFF_UP 0x1, IFF_LOOPBACK 0x8, IFF_RUNNING 0x40, IFF_LOWER_UP 0x10000, …) */
  flags: number;
  up: boolean;
  /** IFF_LOOPBACK */
  loopback: boolean;
  mtu: number;
  mac: string;
  kind?: string;
  addresses: InterfaceAddress[];
}

export function scopeName(scope: number): AddressScope {
  switch (scope) {
    case RT_SCOPE.UNIVERSE:
      return 'global';
    case RT_SCOPE.SITE:
      return 'site';
    case RT_SCOPE.LINK:
      return 'link';
    case RT_SCOPE.HOST:
      return 'host';
    case RT_SCOPE.NOWHERE:
      return 'nowhere';
    default:
      return scope;
  }
}

/** Interfaces ordered by index, addresses in kernel order. */
export async function listInterfaces(nl: Netlink): Promise<Interface[]> {
  const [links, addrs] = await Promise.all([nl.listLinks(), nl.listAddresses()]);
  const byIndex = new Map<number, Interface>();
  for (const l of links.sort((a, b) => a.index - b.index)) {
    byIndex.set(l.index, {
      index: l.index,
      name: l.name,
      flags: l.flags,
      up: l.up,
      loopback: (l.flags & IFF.LOOPBACK) !== 0,
      mtu: l.mtu,
      mac: l.mac,
      ...(l.kind ? { kind: l.kind } : {}),
      addresses: [],
    });
  }
  for (const a of addrs) {
    byIndex.get(a.index)?.addresses.push({ address: a.address, prefixLen: a.prefixLen, family: a.family, scope: scopeName(a.scope) });
  }
  return [...byIndex.values()];
}
