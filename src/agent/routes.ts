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
//    (CrossSubnet: a plain `via <node>` when the node shares our subnet);
//  - a pool that needs IPIP on a kernel without ipip gets no tunnel routes at all and one problem
//    message (NO_IPIP_MESSAGE), never half-programmed.
import { parseCidr, parseIp, cidrContains, cidrContainsCidr, formatCidr, type Cidr } from '../common/ip.js';
import { IPIP_DEVICE, VXLAN_DEVICE, NO_IPIP_MESSAGE } from './constants.js';
import type { PoolMode } from './config.js';

export interface RoutePool {
  cidr: string;
  ipipMode: PoolMode;
  vxlanMode: PoolMode;
  disabled?: boolean;
}

export interface KernelRoute {
  dst: string;
  type?: 'unicast' | 'blackhole';
  gateway?: string;
  dev?: string;
  onlink?: boolean;
}

export interface NeighEntry { dev: string; ip: string; mac: string }
export interface FdbEntry { dev: string; mac: string; dst: string }

export interface LearnedRoute { prefix: string; nextHops: readonly string[] }

export interface RemoteVtep {
  node: string;
  /** The node's address (its underlay address, without prefix). */
  address: string;
  vtepIp: string;
  vtepMac: string;
}

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

interface ParsedPool { pool: RoutePool; cidr: Cidr }

/** The enabled pool containing the prefix (the most specific one). */
function poolFor(pools: readonly ParsedPool[], c: Cidr): ParsedPool | undefined {
  let best: ParsedPool | undefined;
  for (const p of pools) {
    if (cidrContainsCidr(p.cidr, c) && (!best || p.cidr.prefixLen > best.cidr.prefixLen)) best = p;
  }
  return best;
}

const isVxlan = (p: RoutePool): boolean => p.vxlanMode !== 'Never';
const isIpip = (p: RoutePool): boolean => p.ipipMode !== 'Never';

export function computeRoutes(input: RouteInput): RouteOutput {
  const pools: ParsedPool[] = input.pools.filter((p) => !p.disabled).map((pool) => ({ pool, cidr: parseCidr(pool.cidr) }));
  const allPools: ParsedPool[] = input.pools.map((pool) => ({ pool, cidr: parseCidr(pool.cidr) }));
  const own4 = input.nodeAddress4 ? parseCidr(input.nodeAddress4) : undefined;
  const own6 = input.nodeAddress6 ? parseCidr(input.nodeAddress6) : undefined;
  const ownAddrs = new Set([own4, own6].filter((c): c is Cidr => !!c).map((c) => `${c.family}:${c.ip}`));
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
    const which = pools.filter((p) => isIpip(p.pool) && !isVxlan(p.pool)).map((p) => p.pool.cidr).join(', ');
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
    if (!pool || !isVxlan(pool.pool)) exports.push(dst);
  }
  for (const a of input.borrowed ?? []) {
    const c = parseCidr(a);
    const host = formatCidr({ ...c, prefixLen: c.family === 4 ? 32 : 128, network: c.ip });
    const pool = poolFor(allPools, c);
    if (pool && isVxlan(pool.pool)) continue;
    if (ownCidrs.some((o) => cidrContainsCidr(o, c))) continue;
    exports.push(host);
  }

  for (const a of input.advertise ?? []) exports.push(formatCidr(parseCidr(a)));

  // Learned best routes → kernel routes.
  for (const l of input.learned) {
    const c = parseCidr(l.prefix);
    const dst = formatCidr(c);
    if (ownCidrs.some((o) => o.network === c.network && o.prefixLen === c.prefixLen && o.family === c.family)) continue;
    const nh = l.nextHops.find((n) => { const ip = parseIp(n); return ip.family === c.family && !ownAddrs.has(`${ip.family}:${ip.value}`); });
    if (nh === undefined) continue;
    const pool = poolFor(pools, c);
    let r: KernelRoute;
    if (pool && isVxlan(pool.pool)) continue; // VXLAN routes come from the datastore
    if (pool && isIpip(pool.pool) && (pool.pool.ipipMode === 'Always' || !sameSubnet(nh))) {
      if (ipipBroken) continue; // reported above; never half-programmed
      r = { dst, gateway: nh, dev: IPIP_DEVICE, onlink: true };
    } else {
      r = { dst, gateway: nh };
      if (input.uplink && sameSubnet(nh)) r.dev = input.uplink;
    }
    // A borrowed /32 learned from another node wins over nothing; an own-block overlap is skipped above.
    routes.set(dst, r);
  }

  // VXLAN: from the datastore.
  const neighbors: NeighEntry[] = [];
  const fdb: FdbEntry[] = [];
  if (needsVxlan) {
    const vtepByNode = new Map((input.vteps ?? []).map((v) => [v.node, v]));
    const used = new Set<string>();
    for (const b of input.remoteBlocks ?? []) {
      const c = parseCidr(b.cidr);
      const pool = poolFor(pools, c);
      if (!pool || !isVxlan(pool.pool)) continue;
      if (ownCidrs.some((o) => cidrContainsCidr(o, c))) continue;
      const v = vtepByNode.get(b.node);
      if (!v) continue;
      const dst = formatCidr(c);
      if (pool.pool.vxlanMode === 'CrossSubnet' && sameSubnet(v.address)) {
        const r: KernelRoute = { dst, gateway: v.address };
        if (input.uplink) r.dev = input.uplink;
        routes.set(dst, r);
        continue;
      }
      routes.set(dst, { dst, gateway: v.vtepIp, dev: VXLAN_DEVICE, onlink: true });
      used.add(v.node);
    }
    for (const v of input.vteps ?? []) {
      if (!used.has(v.node)) continue;
      neighbors.push({ dev: VXLAN_DEVICE, ip: v.vtepIp, mac: v.vtepMac });
      fdb.push({ dev: VXLAN_DEVICE, mac: v.vtepMac, dst: v.address });
    }
  }

  return {
    routes: [...routes.values()].sort((a, b) => (a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0)),
    neighbors, fdb,
    exports: [...new Set(exports)].sort(),
    needsIpip, needsVxlan,
    problems: [...problems],
  };
}
