// The JSON shape of tabby-node's /status and /readiness answers (HTTP and unix socket). Types only,
// so `tabbyctl node status` can read them without loading the agent.
import type { BgpState } from '../bgp/index.js';
import type { PeerType } from './peers.js';

export interface PeerStatusJson {
  address: string;
  family: 4 | 6;
  asn: number;
  type: PeerType;
  state: BgpState;
  /** ISO 8601: when the session entered its current state. */
  since: string;
  /** 'Established' or the reason, as BIRD shows it: 'Active Socket: Connection refused'. */
  info: string;
  prefixesReceived: number;
  prefixesAccepted: number;
  /** BFD on this session (RFC 5880), when configured. */
  bfd?: { state: 'AdminDown' | 'Down' | 'Init' | 'Up'; diag: string; detectionTimeMs: number; downs: number; lastDownDiag: string };
  /** Prefixes in the Adj-RIB-Out toward the peer. */
  prefixesAdvertised?: number;
}

export interface ReadinessJson {
  ready: boolean;
  /** Why not ready (empty when ready). */
  reasons: string[];
  datastore: 'up' | 'down';
  dataplaneInSync: boolean;
  bgp: { configured: number; established: number };
}

export interface RoutingStatusJson {
  /** prefixes BGP learned (best routes) */
  learned: number;
  /** of which have a kernel route */
  routed: number;
  /** learned prefixes without a kernel route, by reason (own-block, no-usable-next-hop, vxlan-pool, no-ipip) */
  noRoute: Record<string, number>;
  kernel: {
    /** kernel routes wanted */
    desired: number;
    /** changes not made yet (waiting for a pass, a device or a retry) */
    pending: number;
    /** owned routes no longer wanted, kept while deletes are held (graceful restart) */
    held: number;
    inSync: boolean;
    deletesHeld: boolean;
    /** the resync dumps: running or due, how often one gave way to route changes, the last one */
    resync?: { state: 'idle' | 'waiting' | 'listing'; listed: number; gaveWay: number; lastListed?: number; lastMs?: number };
  };
  /** the last failure programming the kernel */
  lastError?: { message: string; at: string };
}

export interface AgentStatusJson {
  nodeName: string;
  mode: 'node' | 'route-reflector';
  version: string;
  pid: number;
  startedAt: string;
  address: { ipv4?: string; ipv6?: string };
  asNumber: number;
  routerId: string;
  peers: PeerStatusJson[];
  /** kernel routes tabby wants: the datastore's (own blocks, VXLAN) and learned ones, at most 1000 */
  routes: { dst: string; type?: string; gateway?: string; dev?: string; onlink?: boolean }[];
  /** the route pipeline (absent from older agents) */
  routing?: RoutingStatusJson;
  blocks: { cidr: string; state: string }[];
  exports: string[];
  /** own prefixes an export filter keeps from a peer, with the deciding rule (absent: none) */
  exportRejected?: { prefix: string; peer: string; filter: string; rule: number; decidedBy: string }[];
  problems: string[];
  readiness: ReadinessJson;
  /** network policy (src/policy/engine.ts; absent on a route reflector and from older agents) */
  policy?: PolicyStatusJson;
}

/** The policy engine: its dataplane, what it enforces, its last program and last error. */
export interface PolicyStatusJson {
  dataplane: 'nftables';
  table: string;
  /** libnftables: transactions in the agent's process; process: an `nft -f -` each */
  nft?: 'libnftables' | 'process';
  synced: boolean;
  programmed: boolean;
  localEndpoints: number;
  policies: number;
  lastProgram?: { mode: string; at: string; ms: number; compileMs: number; nftMs: number; bytes: number };
  lastError?: string;
  /** local endpoints nft refused: held out of the ruleset (their traffic is dropped), tried again later */
  refusedEndpoints?: { name: string; error: string }[];
}
