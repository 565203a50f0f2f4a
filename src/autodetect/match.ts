// The pure matcher: (interfaces, method, family, facts) → the chosen address with its prefix and
// interface, or the reason nothing qualifies. No kernel, no sockets: the shell (detect.ts) reads
// interfaces over netlink and supplies the two facts that need the outside world — the source
// address the kernel picks toward a can-reach destination, and the Kubernetes InternalIP(s).
//
// Calico's order, kept exactly: interfaces are walked in REVERSE kernel index order (highest
// ifindex first), addresses in the order the kernel lists them; the first address that is global
// unicast (not loopback, link-local, multicast, unspecified or the v4 broadcast) and passes the
// method's filter wins. RFC 1918 and ULA addresses qualify.
import { cidrContains, formatIp, parseIp, tryParseIp, type Cidr, type Family, type Ip } from '../common/ip.js';
import { compileNamePattern, DEFAULT_INTERFACES_TO_EXCLUDE, formatMethod, type AutodetectionMethod, type NamePattern } from './method.js';

/** What the matcher needs of an interface: a structural subset of dataplane's `Interface`. */
export interface InterfaceAddresses {
  index: number;
  name: string;
  addresses: readonly { address: string; prefixLen: number; family: Family }[];
}

/** The chosen node address. `address` carries the prefix (`192.168.26.71/24`): CrossSubnet needs the subnet. */
export interface AddressChoice {
  family: Family;
  /** Address with prefix length, as stored in Node.spec.bgp.ipv4Address / ipv6Address. */
  address: string;
  ip: string;
  prefixLen: number;
  /** The interface that holds it (absent only for an explicit address not found on any interface). */
  interface?: string;
}

export type MatchResult = { ok: true; choice: AddressChoice } | { ok: false; reason: string };

/** Facts only the shell can know. */
export interface MatchFacts {
  /** can-reach: the local address of a UDP socket connected toward the destination. */
  reachSource?: string;
  /** kubernetes-internal-ip: the Node object's InternalIP addresses (either family; the matcher filters). */
  internalIps?: readonly string[];
}

const DEFAULT_EXCLUDE: readonly NamePattern[] = DEFAULT_INTERFACES_TO_EXCLUDE.map(compileNamePattern);

/** Go's net.IP.IsGlobalUnicast, which is what Calico tests. */
export function isGlobalUnicast(ip: Ip): boolean {
  if (ip.family === 4) {
    const v = ip.value;
    if (v === 0n || v === 0xffffffffn) return false; // unspecified, limited broadcast
    if (v >> 24n === 127n) return false; // loopback 127/8
    if (v >> 16n === 0xa9fen) return false; // link-local 169.254/16
    if (v >> 28n === 0xen) return false; // multicast 224/4
    return true;
  }
  const v = ip.value;
  if (v === 0n || v === 1n) return false; // :: and ::1
  if (v >> 118n === 0x3fan) return false; // fe80::/10 link-local
  if (v >> 120n === 0xffn) return false; // ff00::/8 multicast
  // IPv4-mapped (::ffff:a.b.c.d): judge the embedded IPv4 address, as Go does.
  if (v >> 32n === 0xffffn) return isGlobalUnicast({ family: 4, value: v & 0xffffffffn });
  return true;
}

/** Interfaces in the order Calico walks them: reverse kernel index order. */
export function walkOrder<T extends InterfaceAddresses>(interfaces: readonly T[]): T[] {
  return [...interfaces].sort((a, b) => b.index - a.index);
}

const matchesAny = (name: string, patterns: readonly NamePattern[]): boolean => patterns.some((p) => p.regex.test(name));

function choice(family: Family, iface: string | undefined, ip: string, prefixLen: number): AddressChoice {
  const canon = formatIp(parseIp(ip));
  return { family, address: `${canon}/${prefixLen}`, ip: canon, prefixLen, ...(iface !== undefined ? { interface: iface } : {}) };
}

function seen(interfaces: readonly InterfaceAddresses[], family: Family): string {
  if (interfaces.length === 0) return 'no interfaces';
  return walkOrder(interfaces)
    .map((i) => {
      const addrs = i.addresses.filter((a) => a.family === family).map((a) => `${a.address}/${a.prefixLen}`);
      return `${i.name}[${addrs.join(' ') || `no IPv${family}`}]`;
    })
    .join(', ');
}

/** Calico's FilteredEnumeration: first global-unicast address (optionally inside `cidrs`) on the first kept interface. */
function filtered(
  interfaces: readonly InterfaceAddresses[],
  family: Family,
  include: readonly NamePattern[] | undefined,
  exclude: readonly NamePattern[],
  cidrs: readonly Cidr[] | undefined,
): AddressChoice | undefined {
  for (const iface of walkOrder(interfaces)) {
    if (include && !matchesAny(iface.name, include)) continue;
    if (matchesAny(iface.name, exclude)) continue;
    for (const a of iface.addresses) {
      if (a.family !== family) continue;
      const ip = tryParseIp(a.address);
      if (!ip || ip.family !== family || !isGlobalUnicast(ip)) continue;
      if (cidrs && !cidrs.some((c) => cidrContains(c, ip))) continue;
      return choice(family, iface.name, a.address, a.prefixLen);
    }
  }
  return undefined;
}

/** The interface and prefix that own `ip` (any interface, no exclusions — as Calico's GetLocalCIDR). */
export function findOwner(interfaces: readonly InterfaceAddresses[], ip: string): AddressChoice | undefined {
  const want = tryParseIp(ip);
  if (!want) return undefined;
  for (const iface of walkOrder(interfaces)) {
    for (const a of iface.addresses) {
      const have = tryParseIp(a.address);
      if (have && have.family === want.family && have.value === want.value) return choice(want.family, iface.name, a.address, a.prefixLen);
    }
  }
  return undefined;
}

/** Apply `method` to `interfaces` for one family. Pure: same input, same answer. */
export function matchAddress(
  interfaces: readonly InterfaceAddresses[],
  method: AutodetectionMethod,
  family: Family,
  facts: MatchFacts = {},
): MatchResult {
  const fail = (why: string): MatchResult => ({
    ok: false,
    reason: `${formatMethod(method)}: ${why}; interfaces seen (reverse index order): ${seen(interfaces, family)}`,
  });
  let found: AddressChoice | undefined;
  switch (method.kind) {
    case 'first-found':
      found = filtered(interfaces, family, undefined, DEFAULT_EXCLUDE, undefined);
      return found
        ? { ok: true, choice: found }
        : fail(`no global-unicast IPv${family} address on any interface outside the default exclusion list`);
    case 'interface':
      found = filtered(interfaces, family, method.include, [], undefined);
      return found ? { ok: true, choice: found } : fail(`no global-unicast IPv${family} address on an interface whose name matches`);
    case 'skip-interface':
      found = filtered(interfaces, family, undefined, [...DEFAULT_EXCLUDE, ...method.exclude], undefined);
      return found ? { ok: true, choice: found } : fail(`no global-unicast IPv${family} address on an interface left after skipping`);
    case 'cidr':
      found = filtered(interfaces, family, undefined, [], method.cidrs);
      return found ? { ok: true, choice: found } : fail(`no global-unicast IPv${family} address inside the CIDRs`);
    case 'can-reach': {
      if (facts.reachSource === undefined) return fail(`the kernel gave no IPv${family} source address toward ${method.destination}`);
      found = findOwner(interfaces, facts.reachSource);
      return found
        ? { ok: true, choice: found }
        : fail(`the source address ${facts.reachSource} toward ${method.destination} is on no local interface`);
    }
    case 'kubernetes-internal-ip': {
      const ips = (facts.internalIps ?? []).filter((s) => tryParseIp(s)?.family === family);
      if (ips.length === 0)
        return fail(`the Kubernetes Node has no IPv${family} InternalIP (seen: ${(facts.internalIps ?? []).join(', ') || 'none'})`);
      // Calico takes the first InternalIP of the family and recovers its prefix from the interface holding it.
      const first = ips[0]!;
      found = findOwner(interfaces, first);
      return found ? { ok: true, choice: found } : fail(`the Kubernetes InternalIP ${first} is on no local interface`);
    }
  }
}
