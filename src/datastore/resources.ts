// Typed projectcalico.org/v3 resources (IPPool, BGPConfiguration, BGPPeer, Node) over the datastore,
// so a Calico user's YAML applies unchanged. Files: validation.ts (field checks + defaults),
// selector.ts (Calico selector language), this file (types, kinds, keys, ResourceStore).
// A resource is one key `/tabby/resources/v3/projectcalico.org/<plural>/<name>`; its
// metadata.resourceVersion is the key's datastore revision (as a string, like Kubernetes/Calico),
// and every update is a compare-and-swap on it.
import { RESOURCE_PREFIX } from './keys.js';
import { randomUUID } from 'node:crypto';
import { cidrsOverlap, parseCidr } from '../common/ip.js';
import {
  DatastoreConflict,
  DatastoreExists,
  DatastoreNotFound,
  type Datastore,
  type KVPair,
  type TxnOp,
  type WatchEvent,
} from './types.js';
import {
  type API_VERSION,
  KINDS,
  ValidationError,
  validateDocument,
  type AnyResource,
  type ResourceKind,
  type ResourceMeta,
} from './validation.js';

export { API_VERSION, KINDS, ValidationError, parseAsn, formatAsnDot, parseDuration, InvalidAsn } from './validation.js';
export type { ResourceKind, ResourceMeta, AnyResource } from './validation.js';
export { parseSelector, SelectorError, type Selector, type Labels } from './selector.js';
import type { GlobalNetworkPolicySpec, NetworkPolicySpec, ProfileSpec, WorkloadEndpointSpec } from './policy-types.js';
import { NAMESPACED_KINDS } from './policy-validation.js';
export * from './policy-types.js';

import type { BGPFilterSpec } from './bgpfilter.js';
export type { BGPFilterSpec } from './bgpfilter.js';
import type { IPReservationSpec } from './ipreservation.js';
import { isoTime } from '../common/iso-time.js';
export type { IPReservationSpec } from './ipreservation.js';

export type EncapMode = 'Always' | 'CrossSubnet' | 'Never';

export interface IPPoolSpec {
  cidr: string;
  blockSize: number;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  natOutgoing: boolean;
  disabled: boolean;
  disableBGPExport?: boolean;
  nodeSelector: string;
  allowedUses: ('Workload' | 'Tunnel')[];
  assignmentMode?: 'Automatic' | 'Manual';
}

/** BFD timers of a BGP session (RFC 5880); `{}` = 300ms × 3. */
export interface BfdSpec {
  transmitInterval?: string;
  receiveInterval?: string;
  detectMultiplier?: number;
}

export interface BGPConfigurationSpec {
  logSeverityScreen?: 'Debug' | 'Info' | 'Warning' | 'Error' | 'Fatal';
  nodeToNodeMeshEnabled?: boolean;
  asNumber?: number;
  listenPort?: number;
  serviceClusterIPs?: { cidr: string }[];
  serviceExternalIPs?: { cidr: string }[];
  serviceLoadBalancerIPs?: { cidr: string }[];
  communities?: { name: string; value: string }[];
  prefixAdvertisements?: { cidr: string; communities?: string[] }[];
  nodeMeshPassword?: { secretKeyRef: { name: string; key: string } };
  nodeMeshMaxRestartTime?: string;
  /** BFD on every mesh session (tabby's field; shape as BGPPeer bfd). */
  nodeMeshBFD?: BfdSpec;
  bindMode?: 'None' | 'NodeIP';
  ignoredInterfaces?: string[];
  serviceLoadBalancerAggregation?: 'Enabled' | 'Disabled';
}

export interface BGPPeerSpec {
  node?: string;
  nodeSelector?: string;
  peerIP?: string;
  peerSelector?: string;
  asNumber?: number;
  keepOriginalNextHop?: boolean;
  password?: { secretKeyRef: { name: string; key: string } };
  sourceAddress?: 'UseNodeIP' | 'None';
  maxRestartTime?: string;
  /** BFD for this session (tabby's field; MetalLB BFDProfile names). */
  bfd?: BfdSpec;
  numAllowedLocalASNumbers?: number;
  ttlSecurity?: number;
  reachableBy?: string;
  filters?: string[];
  localWorkloadSelector?: string;
  nextHopMode?: 'Auto' | 'Self' | 'Keep';
  localASNumber?: number;
  reversePeering?: 'Auto' | 'Manual';
}

export interface NodeSpec {
  bgp?: {
    ipv4Address?: string;
    ipv6Address?: string;
    asNumber?: number;
    routeReflectorClusterID?: string;
    ipv4IPIPTunnelAddr?: string;
  };
  ipv4VXLANTunnelAddr?: string;
  ipv6VXLANTunnelAddr?: string;
  vxlanTunnelMACAddr?: string;
  vxlanTunnelMACAddrV6?: string;
  addresses?: { address: string; type?: 'CalicoNodeIP' | 'InternalIP' | 'ExternalIP' }[];
  orchRefs?: { nodeName?: string; orchestrator: string }[];
  interfaceName?: string;
}

interface Base<K extends ResourceKind, S> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: ResourceMeta;
  spec: S;
}
export type IPPool = Base<'IPPool', IPPoolSpec>;
export type BGPConfiguration = Base<'BGPConfiguration', BGPConfigurationSpec>;
export type BGPPeer = Base<'BGPPeer', BGPPeerSpec>;
export type Node = Base<'Node', NodeSpec> & { status?: Record<string, unknown> };
export type BGPFilter = Base<'BGPFilter', BGPFilterSpec>;
export type IPReservation = Base<'IPReservation', IPReservationSpec>;
export type WorkloadEndpoint = Base<'WorkloadEndpoint', WorkloadEndpointSpec>;
export type NetworkPolicy = Base<'NetworkPolicy', NetworkPolicySpec>;
export type GlobalNetworkPolicy = Base<'GlobalNetworkPolicy', GlobalNetworkPolicySpec>;
export type Profile = Base<'Profile', ProfileSpec>;
export type Resource =
  | IPPool
  | BGPConfiguration
  | BGPPeer
  | Node
  | BGPFilter
  | IPReservation
  | WorkloadEndpoint
  | NetworkPolicy
  | GlobalNetworkPolicy
  | Profile;
export interface KindMap {
  IPPool: IPPool;
  BGPConfiguration: BGPConfiguration;
  BGPPeer: BGPPeer;
  Node: Node;
  BGPFilter: BGPFilter;
  IPReservation: IPReservation;
  WorkloadEndpoint: WorkloadEndpoint;
  NetworkPolicy: NetworkPolicy;
  GlobalNetworkPolicy: GlobalNetworkPolicy;
  Profile: Profile;
}

export const PLURALS: Record<ResourceKind, string> = {
  IPPool: 'ippools',
  BGPConfiguration: 'bgpconfigurations',
  BGPPeer: 'bgppeers',
  Node: 'nodes',
  BGPFilter: 'bgpfilters',
  IPReservation: 'ipreservations',
  WorkloadEndpoint: 'workloadendpoints',
  NetworkPolicy: 'networkpolicies',
  GlobalNetworkPolicy: 'globalnetworkpolicies',
  Profile: 'profiles',
};

/** Names a user may type for a kind, as calicoctl accepts them. */
const KIND_ALIASES: Record<ResourceKind, string[]> = {
  IPPool: ['ippool', 'ippools', 'ipp', 'ipps', 'pool', 'pools'],
  BGPConfiguration: ['bgpconfiguration', 'bgpconfigurations', 'bgpconfig', 'bgpconfigs'],
  BGPPeer: ['bgppeer', 'bgppeers', 'bgpp', 'bgpps', 'bp', 'bps'],
  Node: ['node', 'nodes', 'no', 'nos'],
  BGPFilter: ['bgpfilter', 'bgpfilters', 'bgpf', 'bgpfs'],
  IPReservation: ['ipreservation', 'ipreservations', 'ipr', 'iprs'],
  WorkloadEndpoint: ['workloadendpoint', 'workloadendpoints', 'wep', 'weps'],
  NetworkPolicy: ['networkpolicy', 'networkpolicies', 'policy', 'netpol', 'np', 'nps'],
  GlobalNetworkPolicy: ['globalnetworkpolicy', 'globalnetworkpolicies', 'gnp', 'gnps'],
  Profile: ['profile', 'profiles', 'pro', 'pros'],
};

export class UnknownKind extends Error {
  readonly code = 'EUNKNOWNKIND';
  constructor(readonly input: string) {
    super(`unknown resource kind "${input}" (tabby knows ${KINDS.join(', ')}; e.g. ippool, bgppeer, bgpconfig, node)`);
    this.name = 'UnknownKind';
  }
}

/** "ippools" / "IPPool" / "pool" → "IPPool"; throws UnknownKind. */
export function resolveKind(input: string): ResourceKind {
  const s = input.trim().toLowerCase();
  for (const k of KINDS) if (k.toLowerCase() === s || KIND_ALIASES[k].includes(s)) return k;
  throw new UnknownKind(input);
}

/** A namespaced resource (NetworkPolicy, WorkloadEndpoint) is stored under `<namespace>/<name>`, as
 *  Calico's etcd keys do; the store's `name` argument is that pair for those kinds. */
export function resourceKey(kind: ResourceKind, name: string): string {
  return `${RESOURCE_PREFIX}${PLURALS[kind]}/${name}`;
}

/** The store name of a resource: `<namespace>/<name>` for namespaced kinds, else its name. */
export function storeName(res: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return NAMESPACED_KINDS.has(res.kind) ? `${res.metadata.namespace || 'default'}/${res.metadata.name}` : res.metadata.name;
}

export const isNamespaced = (kind: ResourceKind): boolean => NAMESPACED_KINDS.has(kind);

/** Validate a document (any source: YAML, JSON, code) and return it normalized with defaults filled.
 *  Throws ValidationError listing every problem (`IPPool "p1": spec.blockSize 33 is out of range 20..32 for IPv4`). */
export function validateResource(obj: unknown): Resource {
  return validateDocument(obj) as unknown as Resource;
}

/** The same resource with every default filled in (validates too). */
export function withDefaults<R extends Resource>(res: R): R {
  return validateDocument(res) as unknown as R;
}

// ------------------------------------------------------------------ typed errors with resource-level text

const ref = (kind: string, name: string) => `${kind} "${name}"`;

export class ResourceExists extends DatastoreExists {
  constructor(
    readonly resourceKind: ResourceKind,
    readonly resourceName: string,
  ) {
    super(resourceKey(resourceKind, resourceName));
    this.message = `${ref(resourceKind, resourceName)} already exists (use apply or replace to change it)`;
  }
}

export class ResourceNotFound extends DatastoreNotFound {
  constructor(
    readonly resourceKind: ResourceKind,
    readonly resourceName: string,
  ) {
    super(resourceKey(resourceKind, resourceName));
    this.message = `${ref(resourceKind, resourceName)} does not exist`;
  }
}

export class ResourceConflict extends DatastoreConflict {
  constructor(
    readonly resourceKind: ResourceKind,
    readonly resourceName: string,
    expected: number,
    actual?: number,
  ) {
    super(resourceKey(resourceKind, resourceName), expected, actual);
    this.message =
      `${ref(resourceKind, resourceName)} was modified: resourceVersion ${expected} is stale` +
      `${actual === undefined ? '' : ` (it is now ${actual})`}; get it again and reapply the change`;
  }
}

export interface ResourceList<R> {
  items: R[];
  revision: number;
}

export type ResourceEvent<R> =
  | { type: 'put'; kind: ResourceKind; name: string; resource: R; previous?: R; revision: number }
  | { type: 'delete'; kind: ResourceKind; name: string; previous?: R; revision: number };

type Stored = Omit<AnyResource, 'metadata'> & { metadata: Omit<ResourceMeta, 'resourceVersion'> };

function fromKV<R extends Resource>(kv: KVPair<Stored>): R {
  const v = kv.value;
  const { name, namespace, uid, creationTimestamp, ...rest } = v.metadata;
  // Kubernetes/Calico order: name, resourceVersion, uid, creationTimestamp, then labels/annotations.
  const metadata = {
    name,
    ...(namespace ? { namespace } : {}),
    resourceVersion: String(kv.revision),
    ...(uid ? { uid } : {}),
    ...(creationTimestamp ? { creationTimestamp } : {}),
    ...rest,
  };
  return { ...v, metadata } as unknown as R;
}

function toStored(res: Resource, keep?: Stored): Stored {
  const { resourceVersion: _rv, ...meta } = res.metadata;
  void _rv;
  return {
    ...res,
    metadata: {
      ...meta,
      creationTimestamp: keep?.metadata.creationTimestamp ?? meta.creationTimestamp,
      uid: keep?.metadata.uid ?? meta.uid,
    },
  } as unknown as Stored;
}

/** CRUD + apply + watch of typed resources; every write is validated, then a CAS on the datastore. */
export class ResourceStore {
  constructor(
    readonly ds: Datastore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async get<K extends ResourceKind>(kind: K, name: string): Promise<KindMap[K] | undefined> {
    const kv = await this.ds.get<Stored>(resourceKey(kind, name));
    return kv ? fromKV<KindMap[K]>(kv) : undefined;
  }

  async list<K extends ResourceKind>(kind: K): Promise<ResourceList<KindMap[K]>> {
    const r = await this.ds.list<Stored>(`${RESOURCE_PREFIX}${PLURALS[kind]}/`);
    return { items: r.items.map((kv) => fromKV<KindMap[K]>(kv)), revision: r.revision };
  }

  /** Checks that need the store (today: IP pools must not overlap, cidr/blockSize are immutable). */
  async checkAgainstStore(res: Resource, current?: Resource): Promise<void> {
    if (res.kind !== 'IPPool') return;
    const problems: string[] = [];
    if (current && current.kind === 'IPPool') {
      if (current.spec.cidr !== res.spec.cidr)
        problems.push(`spec.cidr cannot be changed (it is ${current.spec.cidr}); create a new pool, then disable and delete this one`);
      if (current.spec.blockSize !== res.spec.blockSize)
        problems.push(`spec.blockSize cannot be changed (it is ${current.spec.blockSize})`);
    }
    const mine = parseCidr(res.spec.cidr);
    for (const other of (await this.list('IPPool')).items) {
      if (other.metadata.name === res.metadata.name) continue;
      if (cidrsOverlap(mine, parseCidr(other.spec.cidr)))
        problems.push(`spec.cidr ${res.spec.cidr} overlaps IPPool "${other.metadata.name}" (${other.spec.cidr})`);
    }
    if (problems.length) throw new ValidationError(res.kind, res.metadata.name, problems);
  }

  async create<R extends Resource>(input: R): Promise<R> {
    const res = validateResource(input) as R;
    const name = storeName(res);
    if (await this.get(res.kind, name)) throw new ResourceExists(res.kind, name);
    await this.checkAgainstStore(res);
    const stored = toStored(res);
    stored.metadata.creationTimestamp = isoTime(this.now());
    stored.metadata.uid = randomUUID();
    try {
      return fromKV<R>(await this.ds.create(resourceKey(res.kind, name), stored));
    } catch (e) {
      if (e instanceof DatastoreExists) throw new ResourceExists(res.kind, name);
      throw e;
    }
  }

  /** Replace: a CAS on metadata.resourceVersion when given, else on the revision just read. */
  async update<R extends Resource>(input: R): Promise<R> {
    const res = validateResource(input) as R;
    const name = storeName(res);
    const key = resourceKey(res.kind, name);
    const cur = await this.ds.get<Stored>(key);
    if (!cur) throw new ResourceNotFound(res.kind, name);
    const expected = res.metadata.resourceVersion !== undefined ? Number(res.metadata.resourceVersion) : cur.revision;
    if (expected !== cur.revision) throw new ResourceConflict(res.kind, name, expected, cur.revision);
    await this.checkAgainstStore(res, fromKV(cur));
    try {
      return fromKV<R>(await this.ds.update(key, toStored(res, cur.value), expected));
    } catch (e) {
      if (e instanceof DatastoreConflict) throw new ResourceConflict(res.kind, name, expected, e.actualRevision);
      if (e instanceof DatastoreNotFound) throw new ResourceNotFound(res.kind, name);
      throw e;
    }
  }

  /** Create or update (calicoctl apply). With metadata.resourceVersion set, the update is a CAS on it. */
  async apply<R extends Resource>(input: R): Promise<R> {
    const res = validateResource(input) as R;
    for (let attempt = 0; ; attempt++) {
      const exists = await this.get(res.kind, storeName(res));
      try {
        return exists ? await this.update(res) : await this.create(res);
      } catch (e) {
        // Lost a race between our read and write (someone created/deleted it): decide again, once.
        const raced = (e instanceof ResourceExists && !exists) || (e instanceof ResourceNotFound && exists);
        if (!raced || attempt > 0) throw e;
      }
    }
  }

  /** The write apply() would make, as one operation of a Datastore.commit (to go with other keys):
   *  create when absent, else a CAS on the revision read (metadata.resourceVersion when given). Validated
   *  here; a key that changes before the commit fails it (DatastoreExists / DatastoreConflict). `read`: the
   *  resource as the caller just read it (get(); undefined = absent), so it is not read again. */
  async putOp<R extends Resource>(input: R, read?: { current: R | undefined }): Promise<TxnOp> {
    const res = validateResource(input) as R;
    const name = storeName(res);
    const key = resourceKey(res.kind, name);
    const cur = read ? read.current : await this.get(res.kind, name);
    await this.checkAgainstStore(res, cur);
    if (!cur) {
      const stored = toStored(res);
      stored.metadata.creationTimestamp = isoTime(this.now());
      stored.metadata.uid = randomUUID();
      return { op: 'create', key, value: stored };
    }
    const revision = Number(cur.metadata.resourceVersion);
    const expected = res.metadata.resourceVersion !== undefined ? Number(res.metadata.resourceVersion) : revision;
    if (expected !== revision) throw new ResourceConflict(res.kind, name, expected, revision);
    return { op: 'update', key, value: toStored(res, cur as unknown as Stored), expectedRevision: expected };
  }

  /** Delete, optionally a CAS on resourceVersion; returns what was deleted. */
  async delete<K extends ResourceKind>(kind: K, name: string, resourceVersion?: string | number): Promise<KindMap[K]> {
    const key = resourceKey(kind, name);
    const cur = await this.ds.get<Stored>(key);
    if (!cur) throw new ResourceNotFound(kind, name);
    const expected = resourceVersion !== undefined && resourceVersion !== '' ? Number(resourceVersion) : cur.revision;
    if (expected !== cur.revision) throw new ResourceConflict(kind, name, expected, cur.revision);
    try {
      await this.ds.delete(key, expected);
    } catch (e) {
      if (e instanceof DatastoreConflict) throw new ResourceConflict(kind, name, expected, e.actualRevision);
      if (e instanceof DatastoreNotFound) throw new ResourceNotFound(kind, name);
      throw e;
    }
    return fromKV<KindMap[K]>(cur);
  }

  /** Changes to resources of one kind from `fromRevision` (list().revision + 1 to miss nothing). */
  async *watch<K extends ResourceKind>(kind: K, fromRevision: number, signal?: AbortSignal): AsyncIterable<ResourceEvent<KindMap[K]>> {
    const prefix = `${RESOURCE_PREFIX}${PLURALS[kind]}/`;
    for await (const ev of this.ds.watch<Stored>(prefix, fromRevision, signal)) {
      yield toResourceEvent<KindMap[K]>(kind, prefix, ev);
    }
  }
}

function toResourceEvent<R extends Resource>(kind: ResourceKind, prefix: string, ev: WatchEvent<Stored>): ResourceEvent<R> {
  const name = ev.key.slice(prefix.length);
  // The previous value's own revision is not in the event: its metadata.resourceVersion is left out.
  const prevRes = ev.previous === undefined ? undefined : fromKV<R>({ key: ev.key, value: ev.previous, revision: ev.revision });
  if (prevRes) delete prevRes.metadata.resourceVersion;
  const prev = prevRes ? { previous: prevRes } : {};
  if (ev.type === 'put')
    return {
      type: 'put',
      kind,
      name,
      resource: fromKV<R>({ key: ev.key, value: ev.value, revision: ev.revision }),
      revision: ev.revision,
      ...prev,
    };
  return { type: 'delete', kind, name, revision: ev.revision, ...prev };
}
