// The cluster check, pure: what the configuration implies (sessions from the mesh, BGPPeers, selectors
// and route reflectors — the same computePeers the agents run; every confirmed block routed by every
// other node) against what each node reports (its NodeStatusRecord: published to the datastore by the
// agent, or read live from its status socket by the lab). Used by `tabbyctl cluster status` and by
// `tabbyctl lab up` to wait for convergence. Every mismatch is one Finding naming the node and step.
import {
  computePeers,
  type DesiredPeer,
  type PeerNode,
  type PeerResource,
  type PeerBgpConfig,
  type PeerType,
  type SelectorMatch,
} from './peers.js';
import type { BgpState } from '../bgp/index.js';

/** The compact status one agent publishes (Calico's CalicoNodeStatus idea). */
export interface NodeStatusRecord {
  node: string;
  mode: 'node' | 'route-reflector';
  version: string;
  /** ISO 8601: when the record was written (staleness). */
  updatedAt: string;
  /** The publisher writes at least this often (ms); a record older than 3x is stale. */
  intervalMs?: number;
  /** The agent's process start (a restart shows as a new value). */
  startedAt: string;
  address?: string;
  sessions: { peer: string; type: PeerType; state: BgpState; since: string; info: string }[];
  /** Own affine blocks. */
  blocks: { cidr: string; state: string }[];
  /** Prefixes the node originates over BGP (own confirmed blocks, borrowed /32s). */
  exports?: string[];
  /** Own prefixes an export filter keeps from a peer (peer address), and the deciding rule. */
  exportRejected?: { prefix: string; peer: string; filter: string; rule: number; decidedBy: string }[];
  /** Destinations of the kernel routes the agent programs (remote blocks, own blackholes, borrowed /32s). */
  routes: string[];
  /** `routes` is cut at the agent's status limit: blocks beyond it are not checked one by one. */
  routesTruncated?: boolean;
  /** The last kernel apply succeeded with deletes allowed (the kernel matches `routes`). */
  kernelInSync: boolean;
  ready: boolean;
  problems: string[];
  lastError?: string;
}

export interface ClusterBlock {
  cidr: string;
  node: string | null;
  affinityState: string | null;
  pool: string | null;
  inUse: number;
}

export interface ClusterInput {
  nodes: (PeerNode & { routeReflector: boolean })[];
  peers: PeerResource[];
  bgp: PeerBgpConfig;
  blocks: ClusterBlock[];
  /** Disabled pools by name (their blocks are not routed by tabby). */
  disabledPools: ReadonlySet<string>;
  records: ReadonlyMap<string, NodeStatusRecord>;
  selector: SelectorMatch;
  now: Date;
  /** A record older than this is stale (its agent stopped publishing). 0 = never stale (live status);
   *  STALE_AUTO = 3x the record's own publishing interval. */
  staleAfterMs: number;
  /** Nodes that must exist (the lab's): one without a Node resource is a finding, not silently absent. */
  expectNodes?: readonly string[];
}

export const STALE_AUTO = -1;
const DEFAULT_INTERVAL_MS = 30_000;

export type FindingKind =
  | 'not-registered'
  | 'no-status'
  | 'stale-status'
  | 'session-down'
  | 'session-unexpected'
  | 'block-not-routed'
  | 'kernel-out-of-sync'
  | 'disabled-pool-in-use'
  | 'export-filtered'
  | 'agent-problem';

export interface Finding {
  kind: FindingKind;
  node: string;
  detail: string;
}

export interface NodeCheck {
  node: string;
  role: 'node' | 'route-reflector';
  status: 'ok' | 'no-status' | 'stale' | 'mismatch';
  sessionsExpected: number;
  sessionsEstablished: number;
  /** Remote confirmed blocks this node should route / routes. */
  blocksExpected: number;
  blocksRouted: number;
  updatedAt?: string;
  version?: string;
}

export interface ClusterReport {
  converged: boolean;
  nodes: NodeCheck[];
  findings: Finding[];
  /** Worth knowing, not a mismatch (they do not make `converged` false). */
  notes: Finding[];
  /** Summary figures. */
  sessions: { expected: number; established: number };
  blocks: { confirmed: number; missingRoutes: number };
}

/** The sessions the configuration implies for one node (as its agent computes them). */
export function expectedSessions(input: Pick<ClusterInput, 'nodes' | 'peers' | 'bgp' | 'selector'>, node: string): DesiredPeer[] {
  const self = input.nodes.find((n) => n.name === node);
  if (!self) return [];
  const safe: SelectorMatch = (sel, labels) => {
    try {
      return input.selector(sel, labels);
    } catch {
      return false;
    }
  };
  return computePeers(self, input.nodes, input.peers, input.bgp, safe);
}

export function checkCluster(input: ClusterInput): ClusterReport {
  const findings: Finding[] = [];
  const nodes: NodeCheck[] = [];
  // Blocks of a disabled pool stay routed (as prefixes outside every pool): still expected everywhere.
  const confirmed = input.blocks.filter((b) => b.node && b.affinityState === 'confirmed');
  const notes: Finding[] = [];
  let sessExp = 0;
  let sessUp = 0;
  let missingRoutes = 0;
  for (const b of input.blocks) {
    if (b.pool && input.disabledPools.has(b.pool) && b.inUse > 0 && b.node) {
      notes.push({
        kind: 'disabled-pool-in-use',
        node: b.node,
        detail: `block ${b.cidr} (${b.inUse} address(es) in use) is in disabled IPPool ${b.pool}: no new address comes from it, and its routes are plain (no IPIP/VXLAN)`,
      });
    }
  }
  const filtered = exportFiltered(input);
  for (const [owner, byPrefix] of filtered) {
    for (const [prefix, rules] of byPrefix) {
      for (const [rule, peers] of rules)
        notes.push({
          kind: 'export-filtered',
          node: owner,
          detail: `does not export ${prefix} to ${[...peers].sort(byName).join(', ')}: BGPFilter ${rule}`,
        });
    }
  }
  for (const name of input.expectNodes ?? []) {
    if (!input.nodes.some((n) => n.name === name))
      findings.push({ kind: 'not-registered', node: name, detail: 'no Node resource yet (its tabby-node has not registered)' });
  }
  for (const n of input.nodes) {
    const role = n.routeReflector ? 'route-reflector' : 'node';
    const rec = input.records.get(n.name);
    const expected = expectedSessions(input, n.name);
    const check: NodeCheck = {
      node: n.name,
      role,
      status: 'ok',
      sessionsExpected: expected.length,
      sessionsEstablished: 0,
      blocksExpected: 0,
      blocksRouted: 0,
    };
    sessExp += expected.length;
    nodes.push(check);
    if (!rec) {
      check.status = 'no-status';
      findings.push({ kind: 'no-status', node: n.name, detail: 'no status from its tabby-node (not running, or never published)' });
      continue;
    }
    check.updatedAt = rec.updatedAt;
    check.version = rec.version;
    const age = input.now.getTime() - new Date(rec.updatedAt).getTime();
    const staleAfter = input.staleAfterMs === STALE_AUTO ? 3 * (rec.intervalMs ?? DEFAULT_INTERVAL_MS) : input.staleAfterMs;
    if (staleAfter > 0 && !(age <= staleAfter)) {
      check.status = 'stale';
      findings.push({
        kind: 'stale-status',
        node: n.name,
        detail: `status last published ${Math.round(age / 1000)} s ago (stale after ${Math.round(staleAfter / 1000)} s): its tabby-node is stopped, stuck or cannot reach the datastore`,
      });
      continue;
    }
    const bad = (f: Finding): void => {
      findings.push(f);
      check.status = 'mismatch';
    };
    const sessions = new Map(rec.sessions.map((s) => [s.peer, s]));
    for (const p of expected) {
      const s = sessions.get(p.address);
      if (s?.state === 'Established') {
        check.sessionsEstablished++;
        sessUp++;
        continue;
      }
      const who = p.peerNode ? `${p.peerNode} (${p.address})` : p.address;
      bad({
        kind: 'session-down',
        node: n.name,
        detail: `${p.type} session with ${who} is ${s ? `${s.state}${s.info && s.info !== s.state ? `: ${s.info}` : ''}` : 'not configured by the agent'}`,
      });
    }
    const want = new Set(expected.map((p) => p.address));
    for (const s of rec.sessions) {
      if (!want.has(s.peer))
        bad({
          kind: 'session-unexpected',
          node: n.name,
          detail: `has a session with ${s.peer} (${s.state}) that the configuration does not imply`,
        });
    }
    for (const pr of rec.problems) bad({ kind: 'agent-problem', node: n.name, detail: pr });
    if (role === 'route-reflector') continue;
    if (!rec.kernelInSync)
      bad({
        kind: 'kernel-out-of-sync',
        node: n.name,
        detail: `kernel routes not in sync${rec.lastError ? `: ${rec.lastError}` : ' (programming pending or failing; see its log)'}`,
      });
    const routed = new Set(rec.routes);
    for (const b of confirmed) {
      if (b.node === n.name) continue;
      check.blocksExpected++;
      if (routed.has(b.cidr)) {
        check.blocksRouted++;
        continue;
      }
      if (rec.routesTruncated) continue;
      missingRoutes++;
      const rules = filtered.get(b.node!)?.get(b.cidr);
      const by = rules ? undefined : reflectedKept(input, b.cidr, n);
      const why = rules
        ? ` (${b.node}'s export filter rejects it: BGPFilter ${[...rules.keys()].join('; ')})`
        : by
          ? ` (kept from it by ${by})`
          : '';
      bad({ kind: 'block-not-routed', node: n.name, detail: `no route to block ${b.cidr} of ${b.node}${why}` });
    }
  }
  nodes.sort((a, b) => byName(a.node, b.node));
  return {
    converged: findings.length === 0,
    nodes,
    findings,
    notes,
    sessions: { expected: sessExp, established: sessUp },
    blocks: { confirmed: confirmed.length, missingRoutes },
  };
}

/** Per owner, per prefix, per deciding rule (`<filter> exportV4[i] Reject`): the peers it is kept from (node names). */
/** node-2 before node-10 (the datastore lists names as strings; agents report peers in session order). */
const byName = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

function exportFiltered(input: ClusterInput): Map<string, Map<string, Map<string, string[]>>> {
  const byAddress = new Map<string, string>();
  for (const n of input.nodes) {
    if (n.ipv4) byAddress.set(n.ipv4, n.name);
    if (n.ipv6) byAddress.set(n.ipv6, n.name);
  }
  const out = new Map<string, Map<string, Map<string, string[]>>>();
  for (const [owner, rec] of input.records) {
    if (!input.nodes.some((n) => n.name === owner)) continue;
    for (const x of rec.exportRejected ?? []) {
      let byPrefix = out.get(owner);
      if (!byPrefix) out.set(owner, (byPrefix = new Map()));
      let rules = byPrefix.get(x.prefix);
      if (!rules) byPrefix.set(x.prefix, (rules = new Map()));
      let peers = rules.get(x.decidedBy);
      if (!peers) rules.set(x.decidedBy, (peers = []));
      const who = byAddress.get(x.peer);
      peers.push(who ? `${who} (${x.peer})` : x.peer);
    }
  }
  return out;
}

/** Other nodes' export filters (route reflectors) that keep a block from this node: `rr-1's export filter (BGPFilter …)`. */
function reflectedKept(input: ClusterInput, prefix: string, n: ClusterInput['nodes'][number]): string | undefined {
  const out: string[] = [];
  for (const [name, rec] of input.records) {
    const x = (rec.exportRejected ?? []).find((e) => e.prefix === prefix && (e.peer === n.ipv4 || e.peer === n.ipv6));
    if (x) out.push(`${name}'s export filter (BGPFilter ${x.decidedBy})`);
  }
  return out.length ? out.join(', ') : undefined;
}
