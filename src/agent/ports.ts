// The agent's view of the modules it wires together (datastore resources, IPAM, BGP speaker, dataplane,
// autodetection). The Agent (agent.ts) only sees these small interfaces; wiring-*.ts adapt the real
// modules to them and the unit tests pass fakes.
import type { PeerStatus } from '../bgp/index.js';
import type { Route } from '../dataplane/routes.js';
import type { PrefixIds } from '../dataplane/prefix-ids.js';
import type { BfdSpec, BGPConfiguration, BGPPeer, IPPool, Node, ResourceMeta } from '../datastore/resources.js';
import type { BfdTimers } from '../bfd/fsm.js';
import type { BfdSessionStatus, BfdStateEvent } from '../bfd/service.js';
import type { NeighEntry, FdbEntry } from './routes.js';
import type { NamedFilter } from '../bgp/filter/types.js';
import type { LargeCommunity } from '../bgp/codec/types.js';
import type { ExportRejection, RouteReportEntry } from '../bgp/route-report.js';
import type { FilterRes } from './bgp-policy.js';
import type { SessionEventInput } from './session-history.js';

// ---- resources: the datastore's own types (one model; the store has validated and normalised them,
// e.g. asNumber is already a number) ----
export type NodeRes = Node;
export type PoolRes = IPPool;
export type BgpPeerRes = BGPPeer;
export type BgpConfigRes = BGPConfiguration;
export type BfdSpecRes = BfdSpec;
export type Meta = ResourceMeta;
/** A tunnel address's use: IPIP, VXLAN (IPv4 pools), VXLAN over IPv6 (IPv6 pools). */
export type TunnelKind = 'ipip' | 'vxlan' | 'vxlan-v6';

export interface BgpFilterRes extends FilterRes {
  apiVersion: 'projectcalico.org/v3';
  kind: 'BGPFilter';
  metadata: Meta;
}

export type AnyRes = NodeRes | PoolRes | BgpPeerRes | BgpConfigRes | BgpFilterRes;
export type ResKind = AnyRes['kind'];

export interface ResourcesPort {
  get<T extends AnyRes>(kind: T['kind'], name: string): Promise<T | undefined>;
  list<T extends AnyRes>(kind: T['kind']): Promise<T[]>;
  /** Create; fails when it exists. */
  create<T extends AnyRes>(res: T): Promise<T>;
  /** Update with CAS on metadata.resourceVersion. */
  update<T extends AnyRes>(res: T): Promise<T>;
}

// ---- IPAM ----
export interface BlockInfo {
  cidr: string;
  /** Node the block is affine to (null: none). */
  node: string | null;
  /** Addresses allocated in the block with their owner node attribute (for borrowed /32s). */
  allocated: { ip: string; node?: string; handle?: string | null }[];
  size: number;
}

export interface IpamPort {
  /** Claim an affine block for the node in the family if it has none (agent start). */
  ensureBlock(node: string, family: 4 | 6): Promise<void>;
  blocksAffineTo(node: string): Promise<{ cidr: string; state: 'pending' | 'confirmed' }[]>;
  listBlocks(): Promise<BlockInfo[]>;
  /** The tunnel address of the node (handle `<kind>-tunnel-addr-<node>`, as Calico), assigning one if needed; undefined when no pool serves the node. */
  tunnelAddress(node: string, kind: TunnelKind, poolCidrs: readonly string[]): Promise<string | undefined>;
}

// ---- BGP speaker ----

export interface SpeakerPeerConfig {
  address: string;
  asn: number;
  localAddress?: string;
  passive?: boolean;
  routeReflectorClient?: boolean;
  keepOriginalNextHop?: boolean;
  /** TCP-MD5 key (the secret's value). */
  password?: string;
  /** Peer's TCP port when not 179. */
  port?: number;
  /** Graceful restart time advertised on this session, seconds. */
  restartTime?: number;
  families: ('ipv4' | 'ipv6')[];
  description?: string;
  type?: string;
  ttlSecurity?: number;
  allowOwnAs?: number;
  nextHopSelf?: boolean;
  /** BGPFilters in BGPPeer.filters order. */
  filters?: NamedFilter[];
  /** Our AS on this session (BGPPeer localASNumber). */
  localAsn?: number;
}

/** What the agent reads of a peer's status: the speaker's own PeerStatus, a part of it. */
export type SpeakerPeerStatus = Pick<PeerStatus, 'address' | 'asn' | 'state' | 'since' | 'info' | 'prefixesReceived' | 'prefixesAccepted'> &
  Partial<Pick<PeerStatus, 'prefixesAdvertised'>>;

export interface SpeakerOptions {
  asn: number;
  routerId: string;
  /** BGPConfiguration bindMode NodeIP: the node's own address(es); unset = every address. */
  listenAddress?: string | readonly string[];
  listenPort: number;
  clusterId?: string;
  gracefulRestart?: { restartTime: number };
}

export interface SpeakerPort {
  start(): Promise<void>;
  stop(opts: { graceful: boolean }): Promise<void>;
  addPeer(p: SpeakerPeerConfig): void;
  updatePeer(p: SpeakerPeerConfig): void;
  removePeer(address: string): void;
  originate(
    prefix: string,
    opts?: { nextHop?: string; communities?: number[]; largeCommunities?: LargeCommunity[]; interface?: string; direct?: boolean },
  ): void;
  withdraw(prefix: string): void;
  /** The node's connected subnets → interface: what an import rule's `interface` matches (the next hop's). */
  setConnected?(subnets: readonly { prefix: string; iface: string }[]): void;
  peers(): SpeakerPeerStatus[];
  /** A prefix's best route changed: its next hops (interned by the speaker: the same array for the same
   *  attribute set) and the peer it came from. */
  onBest(fn: (ev: { prefix: string; nextHops: readonly string[]; source?: string; metric?: number }) => void): void;
  onWithdrawn(fn: (ev: { prefix: string }) => void): void;
  /** The same changes batched (the speaker's 'changes'): when present the agent uses this instead of
   *  onBest/onWithdrawn. A batch is valid only during the call. */
  onChanges?(fn: (c: BestChangesView) => void): void;
  onPeerChange(fn: () => void): void;
  /** Take the peer's session down now and drop its routes (no graceful restart), then reconnect (RFC 5882: BFD down). */
  resetPeer?(address: string, reason: string): void;
  /** `tabbyctl bgp routes`: per-prefix report toward/from one peer (undefined: no such peer). */
  routeReport?(peer: string, dir: 'received' | 'advertised'): RouteReportEntry[] | undefined;
  /** Originated prefixes an export filter keeps from a peer, with the rule (route explain, cluster status). */
  exportRejections?(): ExportRejection[];
  /** End-of-RIB received from a peer (RFC 4724), when the speaker reports it. */
  onEndOfRib?(fn: (ev: { address: string }) => void): void;
  /** Session history for diagnostics: transitions, NOTIFICATIONs, TCP connect errors (session-history.ts). */
  onSessionEvent?(fn: (ev: SessionEventInput) => void): void;
  /** Why the best path of a prefix won ('only-path', 'local-pref', …; the Loc-RIB's decision), for `route explain`. */
  decisionReason?(prefix: string): string | undefined;
}

export interface BestChangesView {
  readonly count: number;
  prefix(i: number): string;
  /** null: the prefix has no best route any more */
  nextHop(i: number): readonly string[] | null;
  source(i: number): string;
  /** kernel route priority from a BGPFilter setPriority (undefined: the kernel's default) */
  metric?(i: number): number | undefined;
  /** an IPv4 change's prefix length (its network: net4), or -1 — the prefix without a string */
  len4?(i: number): number;
  net4?(i: number): number;
}

// ---- dataplane ----
export interface DataplanePort {
  kernelHasIpip(): Promise<boolean>;
  ensureForwarding(): Promise<void>;
  ensureIpipTunnel(opts: { address?: string; mtu?: number }): Promise<void>;
  /** vxlan.calico, or vxlan-v6.calico when localIp is IPv6. */
  ensureVxlanTunnel(opts: { localIp: string; mac: string; address?: string }): Promise<void>;
  vxlanMacForNode(node: string, family?: 4 | 6): string;
  /** Desired kernel routes as deltas (by destination): add or replace one, delete one. Edits desired
   *  state only: the dataplane programs the kernel in batches by itself (and on apply()). */
  setRoute(route: Route): void;
  deleteRoute(dst: string): void;
  /** The same by prefix id (optional): the dataplane's ids, shared with the agent's route table (one id
   *  per prefix in both, no string); `route` is a template whose dst is not read. */
  prefixIds?: PrefixIds;
  setRouteAt?(id: number, route: Route): void;
  deleteRouteAt?(id: number): void;
  /** Graceful restart: while held, routes tabby owns but no longer wants stay in the kernel. */
  holdDeletes(hold: boolean): void;
  /** Neighbours and FDB on vxlan.calico and vxlan-v6.calico (the whole, small set, by `dev`), then one reconcile pass of everything. */
  apply(vxlan: { neighbors: NeighEntry[]; fdb: FdbEntry[] }): Promise<DataplaneProgress>;
  /** Where the kernel routes stand now. */
  progress(): DataplaneProgress;
  applyNat(pools: { cidr: string; natOutgoing: boolean }[]): Promise<void>;
  /** Name of the interface holding the address (for plain routes), if any. */
  uplinkFor?(address: string): Promise<string | undefined>;
  /** The addresses on the node's interfaces (one netlink address + link dump), for interface routes. */
  interfaceAddresses?(): Promise<InterfaceAddress[]>;
  close(): Promise<void>;
}

export interface InterfaceAddress {
  /** Interface name. */
  iface: string;
  /** "10.0.0.5" */
  address: string;
  prefixLen: number;
  /** rtnetlink scope (0 global, 253 link, 254 host). */
  scope: number;
  /** The link is up. */
  up: boolean;
}

export interface DataplaneProgress {
  /** the kernel matches every desired route and nothing waits */
  inSync: boolean;
  /** kernel routes tabby wants */
  desired: number;
  /** route changes not yet made (waiting for a pass, a device, or a retry) */
  pending: number;
  /** owned routes no longer wanted, kept because deletes are held (graceful restart) */
  held: number;
  /** the last failure programming the kernel (a dump or a change), if any */
  lastError?: { message: string; at: Date };
  /** the resync dumps of the kernel's routes */
  resync?: ResyncStatus;
}

/** A resync dump: running (listing, with the routes listed so far), due (waiting) or not; how often one
 *  gave way to route changes; the last complete one's size and duration. */
export interface ResyncStatus {
  state: 'idle' | 'waiting' | 'listing';
  listed: number;
  gaveWay: number;
  lastListed?: number;
  lastMs?: number;
}

// ---- autodetection ----
export interface DetectedAddresses {
  /** "10.0.0.5/24" */
  ipv4?: string;
  ipv6?: string;
  /** Interface of the IPv4 address. */
  interface4?: string;
}

export interface AddressPort {
  /** Decide the node's addresses (stored = what the Node has now; others for the conflict check). */
  resolve(stored: { ipv4?: string; ipv6?: string }, otherNodes: readonly NodeRes[]): Promise<DetectedAddresses>;
}

// ---- BFD (src/bfd: BfdService) ----
export interface BfdPort {
  add(o: { peer: string; timers?: Partial<BfdTimers> }): void;
  remove(peer: string): void;
  status(): BfdSessionStatus[];
  on(event: 'state', fn: (e: BfdStateEvent) => void): unknown;
  close(): Promise<void>;
}
