// Route computation (pure): what this node exports over BGP and which kernel routes, neighbours and
// FDB entries it wants, from its own blocks, the pools, the best routes BGP learned and (VXLAN) the
// other nodes' blocks and VTEPs in the datastore. As Calico:
//  - own confirmed blocks: a local `blackhole <block>` and a BGP aggregate; borrowed addresses
//    (ours, inside another node's block) as /32s; never host subnets; never VXLAN-pool routes;
//  - a learned best route from next hop N, by the pool it falls in: IPIP Always → `via N dev tunl0
//    onlink`; IPIP CrossSubnet → tunnel only when N is outside our subnet; Never or outside every
//    pool → `via N`; routes inside VXLAN pools are not taken from BGP (they come from the datastore);
//  - VXLAN: each other node's block in a VXLAN pool → `via <its VTEP> dev vxlan.calico onlink`, a
//    permanent neighbour VTEP → VTEP MAC and an FDB entry VTEP MAC → node address
//    (CrossSubnet: a plain `via <node>` when the node shares our subnet); IPv6 blocks the same through
//    the node's IPv6 VTEP on vxlan-v6.calico (FDB toward its IPv6 address);
//  - a pool that needs IPIP on a kernel without ipip gets no tunnel routes at all and one problem
//    message (NO_IPIP_MESSAGE), never half-programmed.
// The per-prefix part (a learned best route → its kernel route or why none) is learnedRoute(), over a
// RouteContext compiled once per pool/node change; the agent's RouteTable (route-table.ts) calls it
// only for the prefixes that changed.
import { parseCidr, parseIp, cidrContains, cidrContainsCidr, formatCidr, parseIpv4Number, type Cidr } from '../common/ip.js';
import type { Route } from '../dataplane/routes.js';
import { IPIP_IF_NAME, VXLAN_IF_NAME, VXLAN_V6_IF_NAME } from '../dataplane/ownership.js';
import { NO_IPIP_MESSAGE } from './constants.js';
import type { PoolMode } from './config.js';

export interface RoutePool {
  cidr: string;
  ipipMode: PoolMode;
  vxlanMode: PoolMode;
  disabled?: boolean;
  /** IPPool disableBGPExport: its blocks keep their kernel routes but are not advertised (Calico). */
  disableBGPExport?: boolean;
}

/** The kernel route: the dataplane's one route type (agent → reconciler → kernel). */
export type KernelRoute = Route;

export interface NeighEntry {
  dev: string;
  ip: string;
  mac: string;
}
export interface FdbEntry {
  dev: string;
  mac: string;
  dst: string;
}

export interface LearnedRoute {
  prefix: string;
  nextHops: readonly string[];
}

/** One VTEP of another node; a dual-stack node has two (IPv4 on vxlan.calico, IPv6 on vxlan-v6.calico),
 *  told apart by the family of vtepIp (address is of the same family). */
export interface RemoteVtep {
  node: string;
  /** The node's address (its underlay address, without prefix). */
  address: string;
  vtepIp: string;
  vtepMac: string;
}

/** The VTEP device of a family. */
export const vxlanDevice = (family: 4 | 6): string => (family === 6 ? VXLAN_V6_IF_NAME : VXLAN_IF_NAME);
const vtepKey = (node: string, family: 4 | 6): string => `${family}|${node}`;

export interface RouteInput {
  /** Our address with prefix ("10.0.0.5/24"): CrossSubnet needs the subnet. */
  nodeAddress4?: string;
  nodeAddress6?: string;
  pools: readonly RoutePool[];
  ownBlocks: readonly { cidr: string; state: 'pending' | 'confirmed' }[];
  /** Addresses this node's workloads hold inside blocks affine to other nodes. */
  borrowed?: readonly string[];
  learned: readonly LearnedRoute[];
  /** Blocks affine to other nodes (VXLAN routes come from these). */
  remoteBlocks?: readonly { cidr: string; node: string }[];
  vteps?: readonly RemoteVtep[];
  kernelHasIpip: boolean;
  /** The uplink device for plain routes (optional: the kernel resolves `via N` by itself). */
  uplink?: string;
  /** Extra prefixes every node advertises (BGPConfiguration serviceClusterIPs / serviceExternalIPs /
   *  serviceLoadBalancerIPs, as Calico): exported over BGP, no kernel route. */
  advertise?: readonly string[];
}

export interface RouteOutput {
  routes: KernelRoute[];
  neighbors: NeighEntry[];
  fdb: FdbEntry[];
  /** Prefixes to originate over BGP. */
  exports: string[];
  needsIpip: boolean;
  needsVxlan: boolean;
  problems: string[];
}

interface ParsedPool {
  pool: RoutePool;
  cidr: Cidr;
  net4: number;
  len: number;
}

/** A prefix in the form containment checks want: IPv4 as a number (no BigInt per prefix), IPv6 as a Cidr. */
export interface PrefixNum {
  family: 4 | 6;
  net4: number;
  len: number;
  cidr?: Cidr;
}

/** "10.1.2.0/24" → PrefixNum (the agent's prefixes are canonical: the speaker formats them). */
export function prefixNum(dst: string): PrefixNum {
  const slash = dst.indexOf('/');
  const v4 = slash > 0 ? parseIpv4Number(dst.slice(0, slash)) : -1;
  if (v4 >= 0) return { family: 4, net4: v4, len: Number(dst.slice(slash + 1)) };
  const c = parseCidr(dst);
  return { family: c.family, net4: 0, len: c.prefixLen, cidr: c };
}

const mask4 = (len: number): number => (len === 0 ? 0 : (~0 << (32 - len)) >>> 0);

function poolContains(p: ParsedPool, x: PrefixNum): boolean {
  if (x.family !== p.cidr.family || x.len < p.len) return false;
  if (x.family === 4) return (x.net4 & mask4(p.len)) >>> 0 === p.net4;
  return cidrContainsCidr(p.cidr, x.cidr!);
}

function parsePool(pool: RoutePool): ParsedPool {
  const cidr = parseCidr(pool.cidr);
  return { pool, cidr, net4: cidr.family === 4 ? Number(cidr.network) : 0, len: cidr.prefixLen };
}

/** The pool containing the prefix (the most specific one). */
function poolFor(pools: readonly ParsedPool[], c: Cidr | PrefixNum): ParsedPool | undefined {
  const x: PrefixNum =
    'net4' in c
      ? c
      : c.family === 4
        ? { family: 4, net4: Number(c.network), len: c.prefixLen }
        : { family: 6, net4: 0, len: c.prefixLen, cidr: c };
  let best: ParsedPool | undefined;
  for (const p of pools) {
    if (poolContains(p, x) && (!best || p.len > best.len)) best = p;
  }
  return best;
}

const isVxlan = (p: RoutePool): boolean => p.vxlanMode !== 'Never';
const isIpip = (p: RoutePool): boolean => p.ipipMode !== 'Never';

/** Why a learned prefix has no kernel route. */
export type NoRouteReason = 'own-block' | 'no-usable-next-hop' | 'vxlan-pool' | 'no-ipip';

export const NO_ROUTE_TEXT: Record<NoRouteReason, string> = {
  'own-block': "the prefix is one of this node's own blocks (its blackhole route wins)",
  'no-usable-next-hop': "no next hop of the prefix's family other than this node itself",
  'vxlan-pool': 'inside a VXLAN pool: its route comes from the datastore, not from BGP',
  'no-ipip': 'its pool needs IPIP and this kernel has no ipip (never half-programmed)',
};

/** What a learned route's kernel route depends on besides its own next hops, compiled once per change. */
export interface RouteContext {
  /** enabled pools */
  readonly pools: readonly ParsedPool[];
  readonly own4?: Cidr | undefined;
  readonly own6?: Cidr | undefined;
  /** "family:value" of our own addresses (a next hop that is us is unusable) */
  readonly ownAddrs: ReadonlySet<string>;
  readonly uplink?: string | undefined;
  readonly ipipBroken: boolean;
  /** confirmed own blocks (canonical): their blackhole wins over a learned route */
  readonly ownBlocks: ReadonlySet<string>;
}

export function compileRouteContext(
  input: Pick<RouteInput, 'pools' | 'nodeAddress4' | 'nodeAddress6' | 'uplink' | 'kernelHasIpip' | 'ownBlocks'>,
): RouteContext {
  const pools = input.pools.filter((p) => !p.disabled).map(parsePool);
  const own4 = input.nodeAddress4 ? parseCidr(input.nodeAddress4) : undefined;
  const own6 = input.nodeAddress6 ? parseCidr(input.nodeAddress6) : undefined;
  const ownAddrs = new Set([own4, own6].filter((c): c is Cidr => !!c).map((c) => `${c.family}:${c.ip}`));
  const needsIpip = pools.some((p) => isIpip(p.pool) && !isVxlan(p.pool));
  const ownBlocks = new Set(input.ownBlocks.filter((b) => b.state === 'confirmed').map((b) => formatCidr(parseCidr(b.cidr))));
  return { pools, own4, own6, ownAddrs, uplink: input.uplink, ipipBroken: needsIpip && !input.kernelHasIpip, ownBlocks };
}

/** The part of a learned kernel route shared by every prefix with the same pool and next hops. */
export type RouteTemplate = { gateway: string; dev?: string; onlink?: true } | NoRouteReason;

/** The enabled pool of a prefix (index into ctx.pools, -1: none). */
export function poolIndexOf(ctx: RouteContext, x: PrefixNum): number {
  const p = poolFor(ctx.pools, x);
  return p ? ctx.pools.indexOf(p) : -1;
}

/** A learned best route (family, pool, next hops) → its kernel route's template or why none. Pure. */
export function learnedTemplate(ctx: RouteContext, family: 4 | 6, poolIndex: number, nextHops: readonly string[]): RouteTemplate {
  const own = family === 4 ? ctx.own4 : ctx.own6;
  let nh: string | undefined;
  let same = false;
  for (const n of nextHops) {
    const ip = parseIp(n);
    if (ip.family !== family || ctx.ownAddrs.has(`${ip.family}:${ip.value}`)) continue;
    nh = n;
    same = !!own && cidrContains(own, ip);
    break;
  }
  if (nh === undefined) return 'no-usable-next-hop';
  const pool = poolIndex >= 0 ? ctx.pools[poolIndex]!.pool : undefined;
  if (pool && isVxlan(pool)) return 'vxlan-pool';
  if (pool && isIpip(pool) && (pool.ipipMode === 'Always' || !same)) {
    if (ctx.ipipBroken) return 'no-ipip';
    return { gateway: nh, dev: IPIP_IF_NAME, onlink: true };
  }
  return ctx.uplink && same ? { gateway: nh, dev: ctx.uplink } : { gateway: nh };
}

/** The kernel route of one learned prefix, or why none (one prefix: status, tests; the table memoises templates). */
export function learnedRoute(ctx: RouteContext, dst: string, nextHops: readonly string[]): Route | NoRouteReason {
  if (ctx.ownBlocks.has(dst)) return 'own-block';
  const x = prefixNum(dst);
  const t = learnedTemplate(ctx, x.family, poolIndexOf(ctx, x), nextHops);
  return typeof t === 'string' ? t : { dst, ...t };
}

export function computeRoutes(input: RouteInput): RouteOutput {
  const pools: ParsedPool[] = input.pools.filter((p) => !p.disabled).map(parsePool);
  const allPools: ParsedPool[] = input.pools.map(parsePool);
  const own4 = input.nodeAddress4 ? parseCidr(input.nodeAddress4) : undefined;
  const own6 = input.nodeAddress6 ? parseCidr(input.nodeAddress6) : undefined;
  const sameSubnet = (ip: string): boolean => {
    const a = parseIp(ip);
    const own = a.family === 4 ? own4 : own6;
    return !!own && cidrContains(own, a);
  };

  const routes = new Map<string, KernelRoute>();
  const exports: string[] = [];
  const problems = new Set<string>();
  const needsIpip = pools.some((p) => isIpip(p.pool) && !isVxlan(p.pool));
  const needsVxlan = pools.some((p) => isVxlan(p.pool));
  const ipipBroken = needsIpip && !input.kernelHasIpip;
  if (ipipBroken) {
    const which = pools
      .filter((p) => isIpip(p.pool) && !isVxlan(p.pool))
      .map((p) => p.pool.cidr)
      .join(', ');
    problems.add(`${NO_IPIP_MESSAGE} (pool ${which} has ipipMode ${pools.find((p) => isIpip(p.pool))!.pool.ipipMode})`);
  }

  // Own blocks: blackhole + export (unless in a VXLAN pool: no BGP export there).
  const ownCidrs: Cidr[] = [];
  for (const b of input.ownBlocks) {
    if (b.state !== 'confirmed') continue;
    const c = parseCidr(b.cidr);
    ownCidrs.push(c);
    const dst = formatCidr(c);
    routes.set(dst, { dst, type: 'blackhole' });
    // Disabled pools still keep their blocks' routes until the blocks are released (as Calico).
    const pool = poolFor(allPools, c);
    if (!pool || (!isVxlan(pool.pool) && !pool.pool.disableBGPExport)) exports.push(dst);
  }
  for (const a of input.borrowed ?? []) {
    const c = parseCidr(a);
    const host = formatCidr({ ...c, prefixLen: c.family === 4 ? 32 : 128, network: c.ip });
    const pool = poolFor(allPools, c);
    if (pool && (isVxlan(pool.pool) || pool.pool.disableBGPExport)) continue;
    if (ownCidrs.some((o) => cidrContainsCidr(o, c))) continue;
    exports.push(host);
  }

  for (const a of input.advertise ?? []) exports.push(formatCidr(parseCidr(a)));

  // Learned best routes → kernel routes.
  if (input.learned.length) {
    const ctx = compileRouteContext(input);
    for (const l of input.learned) {
      const dst = formatCidr(parseCidr(l.prefix));
      const r = learnedRoute(ctx, dst, l.nextHops);
      if (typeof r !== 'string') routes.set(dst, r);
    }
  }

  // VXLAN: from the datastore.
  const neighbors: NeighEntry[] = [];
  const fdb: FdbEntry[] = [];
  if (needsVxlan) {
    const vtepByNode = new Map((input.vteps ?? []).map((v) => [vtepKey(v.node, parseIp(v.vtepIp).family), v]));
    const used = new Set<string>();
    for (const b of input.remoteBlocks ?? []) {
      const c = parseCidr(b.cidr);
      const pool = poolFor(pools, c);
      if (!pool || !isVxlan(pool.pool)) continue;
      if (ownCidrs.some((o) => cidrContainsCidr(o, c))) continue;
      const v = vtepByNode.get(vtepKey(b.node, c.family));
      if (!v) continue;
      const dst = formatCidr(c);
      if (pool.pool.vxlanMode === 'CrossSubnet' && sameSubnet(v.address)) {
        const r: KernelRoute = { dst, gateway: v.address };
        if (input.uplink) r.dev = input.uplink;
        routes.set(dst, r);
        continue;
      }
      routes.set(dst, { dst, gateway: v.vtepIp, dev: vxlanDevice(c.family), onlink: true });
      used.add(vtepKey(b.node, c.family));
    }
    for (const v of input.vteps ?? []) {
      const family = parseIp(v.vtepIp).family;
      if (!used.has(vtepKey(v.node, family))) continue;
      neighbors.push({ dev: vxlanDevice(family), ip: v.vtepIp, mac: v.vtepMac });
      fdb.push({ dev: vxlanDevice(family), mac: v.vtepMac, dst: v.address });
    }
  }

  return {
    routes: [...routes.values()].sort((a, b) => (a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0)),
    neighbors,
    fdb,
    exports: [...new Set(exports)].sort(),
    needsIpip,
    needsVxlan,
    problems: [...problems],
  };
}
