// Reading the cluster check's input (cluster-check.ts) from a datastore: Nodes, BGPPeers, the BGP
// configuration, pools and IPAM blocks, plus the status records the agents publish under
// STATUS_PREFIX (node-status-publisher.ts). Also the one conversion of a live /status answer into the
// record shape, so the lab (which asks each agent's socket) and the published records check alike.
import { STATUS_PREFIX } from '../datastore/keys.js';
import type { Datastore } from '../datastore/types.js';
import { ResourceStore, type BGPConfiguration, type BGPPeer, type IPPool, type Node } from '../datastore/resources.js';
import { Ipam } from '../ipam/index.js';
import { ipOf } from './util.js';
import { parseAsn } from '../datastore/validation.js';
import { peerResourceOf } from './peer-resource.js';
import type { AgentStatusJson } from './status-types.js';
import { STALE_AUTO, type ClusterInput, type NodeStatusRecord } from './cluster-check.js';
import { calicoSelectorMatch } from './wiring-store.js';
import { isoTime } from '../common/iso-time.js';

/** Where agents publish their NodeStatusRecord: `<prefix><node>`. Not under the prefixes agents watch. */
/** The agent's /status lists at most this many routes (agent.ts STATUS_ROUTES_LIMIT). */
const STATUS_ROUTES_CAP = 1000;
export const statusKey = (node: string): string => `${STATUS_PREFIX}${node}`;

/** The record of a live /status answer (updatedAt = when it was read). */
export function recordFromStatus(s: AgentStatusJson, now: Date = new Date()): NodeStatusRecord {
  const r: NodeStatusRecord = {
    node: s.nodeName,
    mode: s.mode,
    version: s.version,
    updatedAt: isoTime(now),
    startedAt: s.startedAt,
    sessions: s.peers.map((p) => ({ peer: p.address, type: p.type, state: p.state, since: p.since, info: p.info })),
    blocks: s.blocks.map((b) => ({ cidr: b.cidr, state: b.state })),
    exports: [...s.exports],
    ...(s.exportRejected?.length ? { exportRejected: s.exportRejected.map((x) => ({ ...x })) } : {}),
    routes: s.routes.map((x) => x.dst),
    kernelInSync: s.readiness.dataplaneInSync,
    ready: s.readiness.ready,
    problems: [...s.problems],
  };
  if (s.address.ipv4) r.address = s.address.ipv4;
  if (s.routing && s.routing.routed + 1 > s.routes.length && s.routes.length >= STATUS_ROUTES_CAP) r.routesTruncated = true;
  const why = s.readiness.reasons.find((x) => /datastore|kernel|program/i.test(x));
  if (why) r.lastError = why;
  return r;
}

export interface ClusterSource {
  /** Records by node; when absent they are read from the datastore (published records). */
  records?: ReadonlyMap<string, NodeStatusRecord>;
  now?: Date;
  staleAfterMs?: number;
}

/** Published records (every node's, whether or not its Node still exists). */
export async function readStatusRecords(ds: Datastore): Promise<Map<string, NodeStatusRecord>> {
  const out = new Map<string, NodeStatusRecord>();
  for (const kv of (await ds.list<NodeStatusRecord>(STATUS_PREFIX)).items) out.set(kv.value.node, kv.value);
  return out;
}

/** Everything checkCluster needs, read from the datastore now. */
export async function loadClusterInput(ds: Datastore, src: ClusterSource = {}): Promise<ClusterInput> {
  const rs = new ResourceStore(ds);
  const [nodes, peers, cfg, pools, blocks] = await Promise.all([
    rs.list('Node'),
    rs.list('BGPPeer'),
    rs.get('BGPConfiguration', 'default'),
    rs.list('IPPool'),
    new Ipam(ds).listBlocks(),
  ]);
  const records = src.records ?? (await readStatusRecords(ds));
  return clusterInputFrom(
    { nodes: nodes.items, peers: peers.items, ...(cfg ? { bgpConfig: cfg } : {}), pools: pools.items, blocks },
    records,
    src,
  );
}

export interface ClusterResources {
  nodes: readonly Node[];
  peers: readonly BGPPeer[];
  bgpConfig?: BGPConfiguration;
  pools: readonly IPPool[];
  blocks: readonly { cidr: string; node: string | null; affinityState: string | null; pool: string | null; inUse: number }[];
}

/** The check's input from resources (pure: `apply --dry-run` feeds it resources as they would be). */
export function clusterInputFrom(
  r: ClusterResources,
  records: ReadonlyMap<string, NodeStatusRecord>,
  src: ClusterSource = {},
): ClusterInput {
  const asn = (v: unknown, fallback: number): number => {
    if (typeof v === 'number') return v;
    if (typeof v === 'string') {
      try {
        return parseAsn(v);
      } catch {
        return fallback;
      }
    }
    return fallback;
  };
  const clusterAsn = asn(r.bgpConfig?.spec.asNumber, 64512);
  const names = new Set(r.nodes.map((n) => n.metadata.name));
  // Records expire with their node: a record whose Node is gone is not part of the cluster.
  const live = new Map([...records].filter(([n]) => names.has(n)));
  return {
    nodes: r.nodes.map((n) => {
      const bgp = n.spec.bgp;
      const p: ClusterInput['nodes'][number] = {
        name: n.metadata.name,
        labels: n.metadata.labels ?? {},
        routeReflector: Boolean(bgp?.routeReflectorClusterID),
      };
      if (bgp?.ipv4Address) p.ipv4 = ipOf(bgp.ipv4Address);
      if (bgp?.ipv6Address) p.ipv6 = ipOf(bgp.ipv6Address);
      if (bgp?.asNumber !== undefined) p.asNumber = asn(bgp.asNumber, clusterAsn);
      if (bgp?.routeReflectorClusterID) p.rrClusterId = bgp.routeReflectorClusterID;
      return p;
    }),
    peers: r.peers.map((b) => {
      const p = peerResourceOf(b);
      if (b.spec.asNumber !== undefined) p.asNumber = asn(b.spec.asNumber, clusterAsn); // `--dry-run` gives it resources not yet stored
      return p;
    }),
    bgp: { asNumber: clusterAsn, nodeToNodeMeshEnabled: r.bgpConfig?.spec.nodeToNodeMeshEnabled ?? true },
    blocks: r.blocks.map((b) => ({ cidr: b.cidr, node: b.node, affinityState: b.affinityState, pool: b.pool, inUse: b.inUse })),
    disabledPools: new Set(r.pools.filter((p) => p.spec.disabled).map((p) => p.metadata.name)),
    records: live,
    selector: calicoSelectorMatch,
    now: src.now ?? new Date(),
    staleAfterMs: src.staleAfterMs ?? STALE_AUTO,
  };
}
