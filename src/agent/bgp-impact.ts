// `tabbyctl apply|create|replace|delete --dry-run`: what a change would do to BGP, before it is made.
// The sessions the configuration implies (cluster-check.ts expectedSessions, the agents' own peer
// computation) are computed for every node before and after the change; the difference is printed
// per node, and a change that leaves a node with no BGP session at all (mesh off with no route
// reflector or BGPPeer selecting it — a partition) is a warning. Pure over resources.
import type { BGPConfiguration, BGPPeer, IPPool, Node, Resource } from '../datastore/resources.js';
import { expectedSessions } from './cluster-check.js';
import { clusterInputFrom, type ClusterResources } from './cluster-input.js';

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

function applyChanges(r: ClusterResources, changes: readonly ResourceChange[]): ClusterResources {
  const upsert = <T extends Resource>(list: readonly T[], c: ResourceChange): T[] => {
    const rest = list.filter((x) => x.metadata.name !== c.name);
    return c.res ? [...rest, c.res as T] : rest;
  };
  let nodes = [...r.nodes] as Node[];
  let peers = [...r.peers] as BGPPeer[];
  let pools = [...r.pools] as IPPool[];
  let bgpConfig = r.bgpConfig;
  for (const c of changes) {
    if (c.kind === 'Node') nodes = upsert(nodes, c);
    else if (c.kind === 'BGPPeer') peers = upsert(peers, c);
    else if (c.kind === 'IPPool') pools = upsert(pools, c);
    else if (c.kind === 'BGPConfiguration' && c.name === 'default') bgpConfig = c.res as BGPConfiguration | undefined;
  }
  return { nodes, peers, pools, blocks: r.blocks, ...(bgpConfig ? { bgpConfig } : {}) };
}

const label = (p: { address: string; peerNode?: string; type: string }): string =>
  `${p.peerNode ? `${p.peerNode} (${p.address})` : p.address} [${p.type}]`;

export function bgpImpact(current: ClusterResources, changes: readonly ResourceChange[]): BgpImpact {
  const before = clusterInputFrom(current, new Map());
  const after = clusterInputFrom(applyChanges(current, changes), new Map());
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
  return { nodes, warnings };
}
