// `tabbyctl apply|create|replace|delete --dry-run`: what a change would do to BGP, before it is made.
// The sessions the configuration implies (cluster-check.ts expectedSessions, the agents' own peer
// computation) are computed for every node before and after the change; the difference is printed
// per node, and a change that leaves a node with no BGP session at all (mesh off with no route
// reflector or BGPPeer selecting it — a partition) is a warning. Pure over resources.
import type { BGPConfiguration, BGPPeer, IPPool, Node, Resource } from '../datastore/resources.js';
import { expectedSessions } from './cluster-check.js';
import { clusterInputFrom, type ClusterResources } from './cluster-input.js';
import { exportsKept, type ExportKept } from './export-impact.js';
import type { FilterRes } from './bgp-policy.js';

/** The resources a change is applied to (BGPFilters too: an export filter can partition as well). */
export type ImpactResources = ClusterResources & { filters?: readonly FilterRes[] };
/** At most this many export warnings are listed one by one. */
const EXPORT_WARNINGS_MAX = 20;

export interface ResourceChange {
  kind: Resource['kind'];
  name: string /** undefined = deleted */;
  res?: Resource;
}

export interface NodeImpact {
  node: string;
  added: string[];
  removed: string[];
  before: number;
  after: number;
}

export interface BgpImpact {
  nodes: NodeImpact[];
  warnings: string[];
}

function applyChanges(r: ImpactResources, changes: readonly ResourceChange[]): ImpactResources {
  const upsert = <T extends Resource>(list: readonly T[], c: ResourceChange): T[] => {
    const rest = list.filter((x) => x.metadata.name !== c.name);
    return c.res ? [...rest, c.res as T] : rest;
  };
  let nodes = [...r.nodes] as Node[];
  let peers = [...r.peers] as BGPPeer[];
  let pools = [...r.pools] as IPPool[];
  let bgpConfig = r.bgpConfig;
  let filters = [...(r.filters ?? [])] as Resource[];
  for (const c of changes) {
    if (c.kind === 'BGPFilter') filters = upsert(filters, c);
    if (c.kind === 'Node') nodes = upsert(nodes, c);
    else if (c.kind === 'BGPPeer') peers = upsert(peers, c);
    else if (c.kind === 'IPPool') pools = upsert(pools, c);
    else if (c.kind === 'BGPConfiguration' && c.name === 'default') bgpConfig = c.res as BGPConfiguration | undefined;
  }
  return { nodes, peers, pools, blocks: r.blocks, filters: filters as unknown as FilterRes[], ...(bgpConfig ? { bgpConfig } : {}) };
}

const label = (p: { address: string; peerNode?: string; type: string }): string =>
  `${p.peerNode ? `${p.peerNode} (${p.address})` : p.address} [${p.type}]`;

export function bgpImpact(current: ImpactResources, changes: readonly ResourceChange[]): BgpImpact {
  const changed = applyChanges(current, changes);
  const before = clusterInputFrom(current, new Map());
  const after = clusterInputFrom(changed, new Map());
  const names = [...new Set([...before.nodes, ...after.nodes].map((n) => n.name))].sort();
  const nodes: NodeImpact[] = [];
  const warnings: string[] = [];
  for (const name of names) {
    const b = expectedSessions(before, name);
    const a = expectedSessions(after, name);
    const bk = new Map(b.map((p) => [`${p.address}`, p]));
    const ak = new Map(a.map((p) => [`${p.address}`, p]));
    const added = a.filter((p) => !bk.has(p.address)).map(label);
    const removed = b.filter((p) => !ak.has(p.address)).map(label);
    nodes.push({ node: name, added, removed, before: b.length, after: a.length });
    const stillThere = after.nodes.some((n) => n.name === name);
    if (stillThere && b.length > 0 && a.length === 0) {
      warnings.push(
        `${name} would have no BGP session at all: its pods become unreachable from other nodes (a partition)${after.bgp.nodeToNodeMeshEnabled ? '' : ' — the mesh is off and no route reflector or BGPPeer selects it'}`,
      );
    }
  }
  if (before.bgp.nodeToNodeMeshEnabled && !after.bgp.nodeToNodeMeshEnabled && !after.nodes.some((n) => n.routeReflector)) {
    warnings.push(
      'the node-to-node mesh goes off and no node is a route reflector (routeReflectorClusterID): only explicit BGPPeers remain',
    );
  }
  warnings.push(...exportWarnings(current, changed, before, after));
  return { nodes, warnings };
}

/** Pools whose blocks are not announced over BGP at all (VXLAN: routes from the datastore; disableBGPExport). */
const quietPools = (r: ImpactResources): Set<string> =>
  new Set(
    r.pools
      .filter((p) => (p.spec.vxlanMode ?? 'Never') !== 'Never' || (p.spec as { disableBGPExport?: boolean }).disableBGPExport)
      .map((p) => p.metadata.name),
  );

/** Blocks the change newly keeps from a peer (grouped per node, block and rule), and a node that would export nothing. */
function exportWarnings(
  cur: ImpactResources,
  next: ImpactResources,
  before: ReturnType<typeof clusterInputFrom>,
  after: ReturnType<typeof clusterInputFrom>,
): string[] {
  const keyOf = (k: ExportKept) => `${k.node} ${k.block} ${k.peer}`;
  const was = new Set(exportsKept(before, cur.filters ?? [], quietPools(cur), cur.bgpConfig?.spec).map(keyOf));
  const now = exportsKept(after, next.filters ?? [], quietPools(next), next.bgpConfig?.spec);
  const fresh = now.filter((k) => !was.has(keyOf(k)));
  const groups = new Map<string, { k: ExportKept; peers: string[] }>();
  for (const k of fresh) {
    const g = `${k.node} ${k.block} ${k.decidedBy}`;
    const e = groups.get(g);
    if (e) e.peers.push(k.peer);
    else groups.set(g, { k, peers: [k.peer] });
  }
  const out: string[] = [];
  for (const { k, peers } of [...groups.values()].slice(0, EXPORT_WARNINGS_MAX))
    out.push(`${k.node} would stop exporting its block ${k.block} to ${peers.join(', ')}: BGPFilter ${k.decidedBy}`);
  if (groups.size > EXPORT_WARNINGS_MAX) out.push(`… and ${groups.size - EXPORT_WARNINGS_MAX} more block/rule pair(s) kept from peers`);
  // Every block kept from every peer of a node (its pods unreachable from anywhere over BGP).
  const quiet = quietPools(next);
  for (const n of after.nodes) {
    const blocks = after.blocks.filter(
      (b) => b.node === n.name && b.affinityState === 'confirmed' && !b.cidr.includes(':') && !(b.pool && quiet.has(b.pool)),
    );
    const peers = expectedSessions(after, n.name).filter((p) => p.family === 4);
    if (!blocks.length || !peers.length || !fresh.some((k) => k.node === n.name)) continue;
    const kept = new Set(now.filter((k) => k.node === n.name).map((k) => `${k.block} ${k.peer}`));
    const label = (p: (typeof peers)[number]) => (p.peerNode ? `${p.peerNode} (${p.address})` : p.address);
    if (blocks.every((b) => peers.every((p) => kept.has(`${b.cidr} ${label(p)}`))))
      out.push(`${n.name} would export none of its blocks to any BGP peer: its pods become unreachable from other nodes`);
  }
  return out;
}
