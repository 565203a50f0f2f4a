// `route explain`, the pure part: the chain that makes an address reachable from one node, step by
// step, with the first step that breaks. Inputs are gathered by the CLI (datastore: pools, the block
// and the address's allocation, the owner's published status; the local agent's route record from
// /route (route-table.ts); the local kernel's routes, links and neighbours over netlink):
//   pool → block and affinity → owning node → exported by it (or the BGPFilter rule that keeps it from a
//   peer) → received here (peer, next hops, the Loc-RIB decision step that chose the path) →
//   kernel route (and why via tunl0 / vxlan.calico / the uplink) → for a local pod, its cali interface.
import { cidrContains, formatCidr, parseCidr, parseIp, tryParseCidr } from '../common/ip.js';
import { IPIP_IF_NAME, VXLAN_IF_NAME, VXLAN_V6_IF_NAME } from '../dataplane/ownership.js';
import type { NodeStatusRecord } from './cluster-check.js';

export type StepName = 'pool' | 'block' | 'owner' | 'export' | 'received' | 'kernel' | 'workload';

export interface ExplainStep {
  step: StepName;
  ok: boolean;
  detail: string;
  fix?: string;
}

export interface ExplainPool {
  name: string;
  cidr: string;
  ipipMode?: string;
  vxlanMode?: string;
  disabled?: boolean;
}
export interface ExplainBlock {
  cidr: string;
  node: string | null;
  affinityState: string | null;
}
export interface ExplainAllocation {
  allocated: boolean;
  handle: string | null;
  attrs: Record<string, string>;
}
/** The agent's /route answer (RouteExplanation). */
export interface AgentRouteAnswer {
  origin: 'bgp' | 'datastore';
  prefix: string;
  nextHops: readonly string[];
  source: string;
  pool?: string;
  route?: { dst: string; type?: string; gateway?: string; dev?: string; onlink?: boolean };
  reason?: string;
  why?: string;
  /** The Loc-RIB's decision reason for the best path ('only-path', 'local-pref', …). */
  decision?: string;
  /** Kernel route priority from a BGPFilter setPriority. */
  metric?: number;
}

/** The Loc-RIB decision step (bgp/rib/decision.ts DecisionReason) in words. */
const DECISION_WORDS: Record<string, string> = {
  'only-path': 'the only path (no other peer sent it)',
  local: 'originated on this node',
  'local-pref': 'highest LOCAL_PREF',
  'as-path': 'shortest AS_PATH',
  origin: 'lowest ORIGIN (IGP < EGP < incomplete)',
  med: 'lowest MED (same neighbouring AS)',
  ebgp: 'eBGP preferred over iBGP',
  'router-id': 'lowest router ID / ORIGINATOR_ID',
  'cluster-list': 'shortest CLUSTER_LIST',
  'peer-address': 'lowest peer address',
  equal: 'equal-cost paths (multipath)',
};
export const decisionWords = (d: string): string => DECISION_WORDS[d] ?? d;
export interface ExplainKernelRoute {
  dst: string;
  type: string;
  gateway?: string;
  dev?: string;
  protocol: number;
}

export interface ExplainInput {
  query: string;
  /** This node (where the kernel is looked at). */
  here: string;
  /** This node's address with prefix (for "same subnet"). */
  hereAddress?: string;
  pools: readonly ExplainPool[];
  block?: ExplainBlock;
  allocation?: ExplainAllocation;
  /** Published status of the owner (undefined: none). */
  ownerRecord?: NodeStatusRecord;
  /** Published status of the route reflectors (their export filters can keep a block from this node). */
  reflectorRecords?: readonly NodeStatusRecord[];
  ownerRecordStale?: boolean;
  /** Whether a Node resource exists for the owner. */
  ownerExists: boolean;
  /** The local agent's answer for the query (undefined: no route covers it, or no agent). */
  agent?: AgentRouteAnswer;
  agentRunning: boolean;
  /** Kernel routes of this node that cover the address (most specific first), tabby's protocol marked. */
  kernelRoutes: readonly ExplainKernelRoute[];
  /** For a pod on this node: the cali link for its /32 route, and its neighbour entry. */
  workloadLink?: { name: string; up: boolean };
  workloadNeighbour?: string;
  tabbyProtocol: number;
}

export interface Explanation {
  query: string;
  here: string;
  steps: ExplainStep[];
  /** The first step that is not ok (undefined: the chain is whole). */
  broken?: StepName;
}

function sameSubnet(addrWithPrefix: string | undefined, ip: string): boolean | undefined {
  const c = addrWithPrefix ? tryParseCidr(addrWithPrefix) : undefined;
  if (!c) return undefined;
  try {
    return cidrContains(c, parseIp(ip));
  } catch {
    return undefined;
  }
}

/** Why the kernel route goes the way it does (pool mode, same subnet or not). */
export function whyPath(pool: ExplainPool | undefined, route: AgentRouteAnswer['route'], hereAddress: string | undefined): string {
  if (!route) return '';
  if (route.type === 'blackhole') return "blackhole: this node's own block (its pods have /32 routes of their own)";
  const nh = route.gateway ?? '';
  const same = nh ? sameSubnet(hereAddress, nh) : undefined;
  const net = hereAddress ? tryParseCidr(hereAddress) : undefined;
  const subnet = net ? formatCidr(net) : hereAddress;
  const where =
    same === undefined
      ? ''
      : same
        ? ` (next hop ${nh} is in this node's subnet ${subnet})`
        : ` (next hop ${nh} is outside this node's subnet ${subnet})`;
  if (route.dev === IPIP_IF_NAME)
    return `via tunl0: pool ${pool?.name ?? '?'} ipipMode ${pool?.ipipMode ?? '?'}${pool?.ipipMode === 'CrossSubnet' ? where : ''}`;
  if (route.dev === VXLAN_IF_NAME || route.dev === VXLAN_V6_IF_NAME)
    return `via ${route.dev}: pool ${pool?.name ?? '?'} vxlanMode ${pool?.vxlanMode ?? '?'}${pool?.vxlanMode === 'CrossSubnet' ? where : ''}`;
  if (!pool) return `via ${nh || route.dev}: outside every pool, a plain route${where}`;
  const modes = `ipipMode ${pool.ipipMode ?? 'Never'}, vxlanMode ${pool.vxlanMode ?? 'Never'}`;
  return `via the uplink${route.dev ? ` ${route.dev}` : ''}: pool ${pool.name} ${modes}${where}`;
}

export function explainChain(i: ExplainInput): Explanation {
  const steps: ExplainStep[] = [];
  const add = (s: ExplainStep): void => {
    steps.push(s);
  };
  const q = tryParseCidr(i.query);
  const ip = q ? i.query.split('/')[0]! : i.query;
  const pool = q
    ? i.pools.filter((p) => {
        try {
          return cidrContains(parseCidr(p.cidr), parseIp(ip));
        } catch {
          return false;
        }
      })[0]
    : undefined;

  // 1. pool
  if (!pool) add({ step: 'pool', ok: false, detail: `no IPPool contains ${ip}`, fix: 'create an IPPool for it, or check the address' });
  else {
    const modes = `ipipMode ${pool.ipipMode ?? 'Never'}, vxlanMode ${pool.vxlanMode ?? 'Never'}`;
    if (pool.disabled)
      add({
        step: 'pool',
        ok: false,
        detail: `IPPool ${pool.name} (${pool.cidr}, ${modes}) is disabled: no new address comes from it, and its prefixes count as outside every pool (plain routes via the next hop — no IPIP/VXLAN even where its mode asks for it)`,
        fix: `enable it (spec.disabled: false), or move the workloads to an enabled pool`,
      });
    else add({ step: 'pool', ok: true, detail: `IPPool ${pool.name} ${pool.cidr}, ${modes}` });
  }

  // 2. block and affinity
  const b = i.block;
  const borrowedBy =
    i.allocation?.allocated && i.allocation.attrs.node && b?.node && i.allocation.attrs.node !== b.node
      ? i.allocation.attrs.node
      : undefined;
  if (!b)
    add({
      step: 'block',
      ok: false,
      detail: `no IPAM block contains ${ip} (released, or never allocated)`,
      fix: 'an address outside every block has no owner and no route: allocate it again (recreate the pod)',
    });
  else if (!b.node)
    add({
      step: 'block',
      ok: false,
      detail: `block ${b.cidr} has no affinity (its node released it)`,
      fix: 'addresses in it are unrouted: tabbyctl ipam check, then recreate the pods',
    });
  else if (b.affinityState !== 'confirmed')
    add({
      step: 'block',
      ok: false,
      detail: `block ${b.cidr} affinity to ${b.node} is ${b.affinityState ?? 'missing'} (only confirmed blocks are routed)`,
      fix: `the claim by ${b.node} did not finish: is its tabby-node running? (tabbyctl ipam check)`,
    });
  else {
    const alloc = i.allocation?.allocated
      ? `; ${ip} is allocated (handle ${i.allocation.handle ?? '-'}${borrowedBy ? `, BORROWED by ${borrowedBy}: routed as a /32` : ''})`
      : q?.prefixLen === (q?.family === 4 ? 32 : 128)
        ? `; ${ip} is not allocated`
        : '';
    add({ step: 'block', ok: true, detail: `block ${b.cidr}, affinity ${b.node} confirmed${alloc}` });
  }
  const owner = borrowedBy ?? b?.node ?? undefined;

  // 3. owner
  if (owner) {
    if (!i.ownerExists)
      add({
        step: 'owner',
        ok: false,
        detail: `node ${owner} has no Node resource (deleted?)`,
        fix: `its blocks are orphans: tabbyctl ipam check --gc`,
      });
    else if (!i.ownerRecord)
      add({
        step: 'owner',
        ok: false,
        detail: `node ${owner} publishes no status (its tabby-node is not running)`,
        fix: `start tabby-node on ${owner}`,
      });
    else if (i.ownerRecordStale)
      add({
        step: 'owner',
        ok: false,
        detail: `node ${owner}'s status is stale (last ${i.ownerRecord.updatedAt}): its tabby-node is stopped or cannot reach the datastore`,
        fix: `check tabby-node on ${owner}`,
      });
    else
      add({
        step: 'owner',
        ok: true,
        detail: `node ${owner}${i.ownerRecord.address ? ` (${i.ownerRecord.address})` : ''}, tabby-node ${i.ownerRecord.version} publishing`,
      });
  }

  // 4. exported by the owner
  const vxlan = pool && (pool.vxlanMode === 'Always' || pool.vxlanMode === 'CrossSubnet');
  if (owner && i.ownerRecord && b) {
    const want = borrowedBy ? `${ip}/32` : b.cidr;
    const exported = (i.ownerRecord.exports ?? []).includes(want);
    const filtered = owner !== i.here ? exportFilterStep(i.ownerRecord, owner, want, i.hereAddress, exported) : undefined;
    if (owner === i.here && !i.ownerRecord.exports)
      add({ step: 'export', ok: true, detail: 'this node owns it (nothing to export to itself)' });
    else if (vxlan)
      add({
        step: 'export',
        ok: true,
        detail: `not over BGP: pool ${pool!.name} is VXLAN, its routes come from the datastore (the owner's VTEP)`,
      });
    else if (filtered) add(filtered);
    else if (exported)
      add(
        (owner !== i.here && reflectorFilterStep(i.reflectorRecords ?? [], owner, want, i.hereAddress)) || {
          step: 'export',
          ok: true,
          detail: `${owner} announces ${want} over BGP`,
        },
      );
    else if (pool?.disabled)
      add({ step: 'export', ok: false, detail: `${owner} does not announce ${want}: its pool ${pool.name} is disabled` });
    else
      add({
        step: 'export',
        ok: false,
        detail: `${owner} does not announce ${want} (its exports: ${(i.ownerRecord.exports ?? []).slice(0, 5).join(', ') || 'none'})`,
        fix: `check ${owner}'s log and BGPFilters that apply to it (an export filter may reject it)`,
      });
  }

  // 5. received here / the agent's record
  const a = i.agent;
  if (!i.agentRunning)
    add({
      step: 'received',
      ok: false,
      detail: `no tabby-node answers on this node (${i.here || '?'})`,
      fix: 'start tabby-node here, or run tabbyctl on the node in question',
    });
  else if (owner === i.here && !borrowedBy) {
    add({
      step: 'received',
      ok: true,
      detail: a?.route ? `own block: ${a.route.type === 'blackhole' ? 'blackhole' : a.route.dst}` : 'own block',
    });
  } else if (!a) {
    add({
      step: 'received',
      ok: false,
      detail: `this node (${i.here}) has no route record covering ${ip}: nothing learned from any peer`,
      fix: owner ? `tabbyctl bgp diagnose here (is the session with ${owner} or a route reflector up?)` : 'see the earlier steps',
    });
  } else if (a.origin === 'datastore') {
    add({
      step: 'received',
      ok: true,
      detail: `from the datastore (VXLAN/own): ${a.prefix}${a.nextHops.length ? ` via ${a.nextHops.join(', ')}` : ''}`,
    });
  } else if (!a.route) {
    add({
      step: 'received',
      ok: false,
      detail: `learned ${a.prefix} from ${a.source || 'this node'} (next hops ${a.nextHops.join(', ') || 'none'}) but no kernel route: ${a.why ?? a.reason ?? 'unknown reason'}`,
      fix: a.reason === 'no-ipip' ? 'use vxlanMode or ipipMode Never on this kernel' : 'see the reason',
    });
  } else {
    add({
      step: 'received',
      ok: true,
      detail: `learned ${a.prefix} from peer ${a.source || '?'}, best next hop(s) ${a.nextHops.join(', ')}${a.decision ? `; best path by: ${decisionWords(a.decision)}` : ''}${a.metric !== undefined ? `; kernel metric ${a.metric} (BGPFilter setPriority)` : ''}`,
    });
  }

  // 6. kernel
  if (i.agentRunning) {
    const wanted = a?.route;
    const k = i.kernelRoutes[0];
    const ours = wanted ? i.kernelRoutes.find((r) => r.dst === wanted.dst) : undefined;
    if (wanted && !ours) {
      add({
        step: 'kernel',
        ok: false,
        detail: `the agent wants ${fmtRoute(wanted)} but the kernel has no route for ${wanted.dst}${k ? ` (traffic follows ${fmtKernel(k)})` : ''}`,
        fix: 'deleted by hand? tabby-node restores its routes within a second — if it stays missing, tabby-node is stuck or stopped (tabbyctl node status)',
      });
    } else if (ours) {
      const diff = wanted && ((wanted.gateway ?? '') !== (ours.gateway ?? '') || (wanted.dev && ours.dev && wanted.dev !== ours.dev));
      if (diff && ours.protocol !== i.tabbyProtocol) {
        add({
          step: 'kernel',
          ok: false,
          detail: `a route not made by tabby (proto ${ours.protocol}) took its place: kernel has ${fmtKernel(ours)}, the agent wants ${fmtRoute(wanted!)}`,
          fix: `tabby never overwrites routes it does not own: delete that one (ip route del ${ours.dst} proto ${ours.protocol}) and tabby-node puts its own back`,
        });
      } else if (diff)
        add({
          step: 'kernel',
          ok: false,
          detail: `kernel has ${fmtKernel(ours)}, the agent wants ${fmtRoute(wanted!)}`,
          fix: 'tabby-node reprograms it on its next pass; if it does not, see its log',
        });
      else
        add({
          step: 'kernel',
          ok: true,
          detail: `${fmtKernel(ours)}${ours.protocol === i.tabbyProtocol ? " (tabby's)" : ''} — ${whyPath(pool, wanted, i.hereAddress)}`,
        });
    } else if (!wanted && k) {
      add({ step: 'kernel', ok: owner === undefined, detail: `no tabby route; the kernel sends it by ${fmtKernel(k)}` });
    } else if (!wanted) {
      add({ step: 'kernel', ok: false, detail: `no route for ${ip} in this node's kernel` });
    }
  }

  // 7. a pod on this node
  if (i.allocation?.allocated && owner === i.here) {
    const pod = i.kernelRoutes.find((r) => r.dst === `${ip}/32`);
    if (!pod)
      add({
        step: 'workload',
        ok: false,
        detail: `${ip} is allocated to this node (handle ${i.allocation.handle ?? '-'}) but the kernel has no ${ip}/32 route to a cali interface`,
        fix: "the pod's wiring is gone: recreate the pod (CNI DEL + ADD), or release the address",
      });
    else if (!i.workloadLink) add({ step: 'workload', ok: false, detail: `${ip}/32 goes to ${pod.dev ?? '?'} which does not exist` });
    else if (!i.workloadLink.up) add({ step: 'workload', ok: false, detail: `${ip}/32 dev ${i.workloadLink.name}: the interface is down` });
    else
      add({
        step: 'workload',
        ok: true,
        detail: `pod interface ${i.workloadLink.name} (${ip}/32 dev ${i.workloadLink.name})${i.workloadNeighbour ? `, neighbour ${i.workloadNeighbour}` : ', no neighbour entry yet (no traffic so far)'}`,
      });
  }
  const broken = steps.find((s) => !s.ok)?.step;
  return { query: i.query, here: i.here, steps, ...(broken ? { broken } : {}) };
}

/**
 * The owner's export filters and this node: broken when a rule keeps the prefix from this node (a direct
 * peer of the owner) or from every peer of its family (nothing can reflect it here); otherwise ok, with
 * the peers it is kept from named. undefined: no export filter rejects it.
 */
function exportFilterStep(
  rec: NodeStatusRecord,
  owner: string,
  want: string,
  hereAddress: string | undefined,
  exported: boolean,
): ExplainStep | undefined {
  const rejected = (rec.exportRejected ?? []).filter((x) => x.prefix === want);
  if (rejected.length === 0) return undefined;
  const hereIp = hereAddress?.split('/')[0];
  const v6 = want.includes(':');
  // In address order, not session order: the same state reads the same.
  const peers = rec.sessions
    .filter((x) => x.peer.includes(':') === v6)
    .map((x) => x.peer)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const toHere = rejected.find((x) => x.peer === hereIp);
  const everyPeer = peers.length > 0 && peers.every((p) => rejected.some((x) => x.peer === p));
  const rules = [...new Set(rejected.map((x) => x.decidedBy))];
  const named = rules.map((r) => `BGPFilter ${r}`).join('; ');
  const x = toHere ?? rejected[0]!;
  const list = x.decidedBy.split(' ')[1] ?? 'exportV4';
  if (toHere || (!peers.includes(hereIp ?? '') && everyPeer) || !exported)
    return {
      step: 'export',
      ok: false,
      detail: `${owner} does not export ${want} to ${toHere ? `this node (${hereIp})` : `any of its peers (${peers.join(', ') || 'none'})`}: ${toHere ? `BGPFilter ${toHere.decidedBy}` : named}`,
      fix: `change rule ${list} of BGPFilter ${x.filter}, or take the filter off the BGPPeer that attaches it to ${owner}'s sessions`,
    };
  return {
    step: 'export',
    ok: true,
    detail: `${owner} announces ${want} over BGP, but not to ${rejected.map((r) => r.peer).join(', ')} (${named})`,
  };
}

/**
 * Route reflectors whose export filters keep the prefix from this node: broken when every reflector
 * this node has a session with rejects it toward this node; ok with them named when only some do.
 */
function reflectorFilterStep(
  rrs: readonly NodeStatusRecord[],
  owner: string,
  want: string,
  hereAddress: string | undefined,
): ExplainStep | undefined {
  const hereIp = hereAddress?.split('/')[0];
  if (!hereIp) return undefined;
  const mine = rrs.filter((r) => r.sessions.some((x) => x.peer === hereIp));
  const rejecting = mine
    .map((r) => ({ rr: r.node, x: (r.exportRejected ?? []).find((x) => x.prefix === want && x.peer === hereIp) }))
    .filter((e): e is { rr: string; x: NonNullable<NodeStatusRecord['exportRejected']>[number] } => e.x !== undefined);
  if (rejecting.length === 0) return undefined;
  const named = rejecting.map((e) => `${e.rr}: BGPFilter ${e.x.decidedBy}`).join('; ');
  if (rejecting.length === mine.length) {
    const x = rejecting[0]!.x;
    return {
      step: 'export',
      ok: false,
      detail: `${owner} announces ${want}, but no route reflector reflects it to this node (${hereIp}): ${named}`,
      fix: `change rule ${x.decidedBy.split(' ')[1] ?? 'exportV4'} of BGPFilter ${x.filter}, or take the filter off the BGPPeer that attaches it to the reflectors' sessions`,
    };
  }
  return {
    step: 'export',
    ok: true,
    detail: `${owner} announces ${want} over BGP (not reflected here by ${named})`,
  };
}

const fmtRoute = (r: NonNullable<AgentRouteAnswer['route']>): string =>
  r.type === 'blackhole'
    ? `blackhole ${r.dst}`
    : `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''}${r.onlink ? ' onlink' : ''}`;
const fmtKernel = (r: ExplainKernelRoute): string =>
  r.type === 'blackhole'
    ? `blackhole ${r.dst}`
    : `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''} proto ${r.protocol}`;
