// The node agent's core: start-up sequence and the reconcile loop, over the ports in ports.ts.
//   start: addresses (autodetect) → Node resource (address/prefix, ASN, RR cluster ID, labels) →
//          default pools → affine block → tunnels the pools need → BGP speaker → first reconcile →
//          watches (resources + IPAM) forever; no restart for any configuration change.
//   reconcile: read a snapshot of the datastore (a failure keeps the last one and marks the datastore
//          down — the kernel is left as it is), compute peers (peers.ts) and routes (routes.ts), diff
//          them into the speaker (peers through peer-sync.ts, originated prefixes) and hand the routes
//          to the dataplane.
//   learned routes: each best-route change goes straight into the route table (route-table.ts), which
//          computes that prefix's kernel route and hands the dataplane a delta — no pass over the table.
//   graceful restart: until BGP has re-converged after start (every peer Established and End-of-RIB
//          or a quiet period, or a deadline), the dataplane holds deletes — nothing a previous run
//          installed is deleted, so kill -9 + restart removes no kernel route on this node.
// Route-reflector mode: no IPAM, no dataplane; the Node carries routeReflectorClusterID.
import { IPAM_PREFIX, RESOURCE_PREFIX } from '../datastore/keys.js';
import { EventEmitter } from 'node:events';
import { cidrContainsCidr, parseCidr, tryParseCidr } from '../common/ip.js';
import { log, type Logger } from '../common/log.js';
import type { Datastore } from '../datastore/types.js';
import type { AgentConfig } from './config.js';
import { peerRoutes } from './bgp-policy.js';
import { interfaceRoutes } from './interface-routes.js';
import { computePeers, type PeerNode, type PeerResource, type SelectorMatch } from './peers.js';
import { computeRoutes, compileRouteContext, type KernelRoute, type RemoteVtep, type RouteOutput, type RoutePool } from './routes.js';
import { RouteTable, type RouteRecord } from './route-table.js';
import { computeReadiness } from './health.js';
import type { AgentStatusJson, PeerStatusJson, PolicyStatusJson, ReadinessJson } from './status-types.js';
import type { StatusSource } from './status-server.js';
import type {
  AddressPort,
  BfdPort,
  BgpConfigRes,
  BgpFilterRes,
  BgpPeerRes,
  BlockInfo,
  DataplanePort,
  IpamPort,
  NodeRes,
  PoolRes,
  ResourcesPort,
  SpeakerOptions,
  SpeakerPort,
} from './ports.js';
import { ipOf, hashRouterId, msg, isRetryable, isExists, isDatastoreDown } from './util.js';
import { DatastoreWatch } from './datastore-watch.js';
import { allowsUse, poolMode, setUpTunnels, withTunnelFields, type TunnelsUp } from './tunnel-setup.js';
import { SessionHistory, sessionsJson, type SessionsJson } from './session-history.js';
import { desiredNode, defaultPools, fitToKernel } from './registration.js';
import { SecretStore, secretKeyRefOf } from './secrets.js';
import { PeerSync } from './peer-sync.js';
import { bfdTimersOf, peerResourceOf, restartTimeSeconds } from './peer-resource.js';
import { communitiesFor, type CommunityConfig } from './bgp-policy.js';
import { serviceAdvertisements, type ServicesPort } from './k8s-services.js';
import type { RouteReportEntry } from '../bgp/route-report.js';
import { isoTime } from '../common/iso-time.js';

export interface AgentDeps {
  config: AgentConfig;
  ds: Datastore;
  resources: ResourcesPort;
  addresses: AddressPort;
  selector: SelectorMatch;
  /** Absent in route-reflector mode. */
  ipam?: IpamPort;
  /** Absent in route-reflector mode and with CALICO_NETWORKING_BACKEND=none. */
  dataplane?: DataplanePort;
  /** Absent unless CALICO_NETWORKING_BACKEND=bird. */
  speakerFactory?: (o: SpeakerOptions) => SpeakerPort;
  /** BFD for sessions that ask for it (absent: BFD settings are reported as a problem). */
  bfd?: BfdPort;
  /** Services and EndpointSlices from the Kubernetes API (absent outside a cluster): per-Service /32s. */
  services?: ServicesPort;
  version?: string;
  logger?: Logger;
  /** Timings (tests shorten them). */
  timing?: Partial<AgentTiming>;
}

export interface AgentTiming {
  /** Coalesce bursts of datastore events. */
  resyncDebounceMs: number;
  /** Full resync even without events (safety net). */
  periodicResyncMs: number;
  /** Datastore reachability probe. */
  probeIntervalMs: number;
  probeTimeoutMs: number;
  /** Graceful restart: at most this long with deletes held back after start. */
  convergeDeadlineMs: number;
  /** …and a peer without End-of-RIB counts as converged after being Established this long with no route change. */
  convergeQuietMs: number;
  routeDebounceMs: number;
  /** How often password secrets are re-read (rotation). */
  secretPollMs: number;
}

const DEFAULT_TIMING: AgentTiming = {
  resyncDebounceMs: 100,
  periodicResyncMs: 30_000,
  probeIntervalMs: 2_000,
  probeTimeoutMs: 1_500,
  convergeDeadlineMs: 30_000,
  convergeQuietMs: 2_000,
  routeDebounceMs: 20,
  secretPollMs: 2_000,
};

interface Snapshot {
  nodes: NodeRes[];
  pools: PoolRes[];
  peers: BgpPeerRes[];
  bgpConfig?: BgpConfigRes;
  filters: BgpFilterRes[];
  blocks: BlockInfo[];
  ownBlocks: { cidr: string; state: 'pending' | 'confirmed' }[];
}

const DEFAULT_ASN = 64512;

export class Agent extends EventEmitter implements StatusSource {
  private readonly cfg: AgentConfig;
  private readonly logger: Logger;
  private readonly timing: AgentTiming;
  private readonly startedAt = new Date();
  private starting: string | undefined = 'detecting the node address';
  private address4: string | undefined;
  private address6: string | undefined;
  private uplink: string | undefined;
  private asn = DEFAULT_ASN;
  private routerId = '0.0.0.0';
  private listenPort = 179;
  private listenAddresses: string[] = [];
  private snapshot: Snapshot = { nodes: [], pools: [], peers: [], filters: [], blocks: [], ownBlocks: [] };
  private speaker: SpeakerPort | undefined;
  private readonly secrets: SecretStore;
  /** The desired peers handed to the speaker and to BFD, and the ones held back (peer-sync.ts). */
  private readonly peerSync: PeerSync;
  /** learned routes (node mode with a dataplane): one record per prefix */
  private routeTable: RouteTable | undefined;
  /** kernel routes computed from the datastore (own blocks, VXLAN), as handed to the dataplane */
  private staticRoutes = new Map<string, KernelRoute>();
  private exported = new Set<string>();
  /** Interface (device) routes originated: prefix → interface (interface-routes.ts). */
  private ifRoutes = new Map<string, string>();
  private ifRoutesBusy = false;
  /** Communities each originated prefix was sent with (re-originated when they change). */
  private exportedAttrs = new Map<string, string>();
  private routeOut: RouteOutput | undefined;
  private kernelHasIpip = true;
  private readonly tunnels: TunnelsUp = { ipip: false, vxlan: false, vxlan6: false };
  private problems: string[] = [];
  private blockError: string | undefined;
  private readonly dsWatch: DatastoreWatch;
  private dataplaneInSync: boolean | undefined;
  private readonly history = new SessionHistory();
  private converged = false;
  private firstReconcileDone = false;
  private readonly convergeDeadline: number;
  private readonly endOfRib = new Set<string>();
  private lastRouteChange = Date.now();
  private lastTick = Date.now();
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;
  private routeTimer: NodeJS.Timeout | undefined;
  private resyncRunning: Promise<void> | undefined;
  private resyncAgain = false;
  private applyRunning: Promise<void> | undefined;
  private applyAgain = false;

  constructor(private readonly deps: AgentDeps) {
    super();
    this.cfg = deps.config;
    this.logger = deps.logger ?? log('agent', { node: deps.config.nodeName });
    this.timing = { ...DEFAULT_TIMING, ...deps.timing };
    this.convergeDeadline = Date.now() + this.timing.convergeDeadlineMs;
    deps.services?.onChange(() => this.scheduleRoutes());
    this.dsWatch = new DatastoreWatch({
      ds: deps.ds,
      prefixes: [RESOURCE_PREFIX, IPAM_PREFIX],
      logger: this.logger,
      onChange: () => this.scheduleResync(),
      probeIntervalMs: this.timing.probeIntervalMs,
      probeTimeoutMs: this.timing.probeTimeoutMs,
    });
    this.secrets = new SecretStore({
      dir: this.cfg.secretsDir,
      pollMs: this.timing.secretPollMs,
      logger: this.logger,
      onChange: () => this.scheduleResync(),
    });
    this.peerSync = new PeerSync({
      logger: this.logger,
      secrets: this.secrets,
      bfd: deps.bfd,
      onResync: () => this.scheduleResync(),
      onRemoved: (addr) => {
        this.history.forget(addr);
        this.endOfRib.delete(addr);
      },
    });
    deps.bfd?.on('state', (e) => {
      this.peerSync.onBfdState(e, this.speaker);
      this.emit('peers');
    });
  }

  get isRouteReflector(): boolean {
    return this.cfg.mode === 'route-reflector';
  }

  // ---------------------------------------------------------------- start-up
  async start(): Promise<void> {
    const { resources } = this.deps;
    // 1. Addresses, checked against the other Nodes.
    const existing = await resources.get<NodeRes>('Node', this.cfg.nodeName);
    const others = (await resources.list<NodeRes>('Node')).filter((n) => n.metadata.name !== this.cfg.nodeName);
    const stored: { ipv4?: string; ipv6?: string } = {};
    if (existing?.spec.bgp?.ipv4Address) stored.ipv4 = existing.spec.bgp.ipv4Address;
    if (existing?.spec.bgp?.ipv6Address) stored.ipv6 = existing.spec.bgp.ipv6Address;
    const addrs = await this.deps.addresses.resolve(stored, others);
    this.address4 = addrs.ipv4;
    this.address6 = addrs.ipv6;
    if (this.address4 && this.deps.dataplane?.uplinkFor) this.uplink = await this.deps.dataplane.uplinkFor(ipOf(this.address4));
    else if (addrs.interface4) this.uplink = addrs.interface4;
    if (!this.address4 && !this.address6 && this.cfg.networkingBackend === 'bird') {
      throw new Error('the node has neither an IPv4 nor an IPv6 address (IP=none and IP6 unset): BGP needs one');
    }
    this.logger.info({ ipv4: this.address4, ipv6: this.address6, uplink: this.uplink }, 'node addresses');

    // 2. The Node resource.
    this.starting = 'registering the Node';
    await this.registerNode();

    // 3. Default pools, 4. an affine block, 5. tunnels.
    if (!this.isRouteReflector) {
      // The kernel first: the default pool's encapsulation depends on it (registration.fitToKernel).
      if (this.deps.dataplane) {
        await this.deps.dataplane.ensureForwarding().catch((e: unknown) => this.logger.warn({ err: msg(e) }, 'cannot enable forwarding'));
        this.kernelHasIpip = await this.deps.dataplane.kernelHasIpip();
      }
      this.starting = 'ensuring default pools';
      await this.ensureDefaultPools();
      this.starting = 'claiming an address block';
      await this.ensureBlocks();
    }
    await this.readSnapshot();
    if (!this.isRouteReflector) {
      this.starting = 'setting up tunnels';
      await this.ensureTunnels();
    }

    // 6. BGP.
    this.applyBgpConfig();
    if (this.deps.speakerFactory && this.cfg.networkingBackend === 'bird') {
      this.starting = 'starting BGP';
      await this.startSpeaker();
    }
    this.starting = undefined;
    if (!this.converged) this.deps.dataplane?.holdDeletes(true);
    await this.recompute();
    this.firstReconcileDone = true;

    // 7. Forever: watches, probe, periodic resync.
    this.dsWatch.start();
    this.secrets.start();
    this.every(this.timing.periodicResyncMs, () => this.scheduleResync());
    this.every(500, () => {
      this.lastTick = Date.now();
      this.checkConverged();
    });
    // Interface routes: a periodic address list (no netlink watch): an address change shows within 2 s.
    this.every(2000, () => void this.syncInterfaceRoutes());
    this.logger.info({ mode: this.cfg.mode, asn: this.asn, routerId: this.routerId }, 'tabby-node started');
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t as unknown as NodeJS.Timeout);
  }

  private async registerNode(): Promise<void> {
    const w = await this.writeNode((cur) => desiredNode(cur, this.cfg, { ipv4: this.address4, ipv6: this.address6 }));
    if (w)
      this.logger.info(
        { ipv4: w.node.spec.bgp?.ipv4Address, ipv6: w.node.spec.bgp?.ipv6Address },
        w.created ? 'Node created' : 'Node updated',
      );
  }

  /** Write our Node resource as `next(current)` says (undefined: leave it), again on a conflict with
   *  another writer; what was written, or undefined when nothing changed. */
  private async writeNode(
    next: (cur: NodeRes | undefined) => NodeRes | undefined,
  ): Promise<{ node: NodeRes; created: boolean } | undefined> {
    const { resources } = this.deps;
    for (let attempt = 0; ; attempt++) {
      const cur = await resources.get<NodeRes>('Node', this.cfg.nodeName);
      const node = next(cur);
      if (!node || (cur && JSON.stringify(cur) === JSON.stringify(node))) return undefined;
      try {
        if (cur) await resources.update(node);
        else await resources.create(node);
        return { node, created: !cur };
      } catch (e) {
        if (attempt >= 5 || !isRetryable(e)) throw e;
      }
    }
  }

  private async ensureDefaultPools(): Promise<void> {
    for (const pool of defaultPools(this.cfg, await this.deps.resources.list<PoolRes>('IPPool'), this.kernelHasIpip)) {
      try {
        await this.deps.resources.create(pool);
        this.logger.info(
          { pool: pool.metadata.name, cidr: pool.spec.cidr, ipipMode: pool.spec.ipipMode, vxlanMode: pool.spec.vxlanMode },
          'created the default pool',
        );
        if (pool.metadata.name === 'default-ipv4-ippool' && fitToKernel(this.cfg.ipv4Pool, this.kernelHasIpip).switched) {
          this.logger.warn(
            { pool: pool.metadata.name },
            'this kernel has no ipip support and neither CALICO_IPV4POOL_IPIP nor CALICO_IPV4POOL_VXLAN is set: the default pool uses VXLAN (vxlanMode Always) instead of IPIP',
          );
        }
      } catch (e) {
        if (!isExists(e)) throw e; // another node created it first: fine
      }
    }
  }

  private async ensureBlocks(): Promise<void> {
    if (!this.deps.ipam) return;
    for (const fam of [4, 6] as const) {
      if ((fam === 4 ? this.address4 : this.address6) === undefined && fam === 6) continue;
      // Already holding a confirmed block of the family: nothing to claim (saves reads on every resync).
      if (this.snapshot.ownBlocks.some((b) => b.state === 'confirmed' && parseCidr(b.cidr).family === fam)) continue;
      const pools = await this.deps.resources.list<PoolRes>('IPPool');
      if (!pools.some((p) => !p.spec.disabled && parseCidr(p.spec.cidr).family === fam && allowsUse(p, 'Workload'))) continue;
      try {
        await this.deps.ipam.ensureBlock(this.cfg.nodeName, fam);
        this.blockError = undefined;
      } catch (e) {
        if (isDatastoreDown(e)) throw e;
        if (this.blockError !== msg(e))
          this.logger.warn({ err: msg(e), family: fam }, 'cannot claim an affine block (will retry on the next resync)');
        this.blockError = msg(e);
      }
    }
  }

  private async ensureTunnels(): Promise<void> {
    const { dataplane, ipam } = this.deps;
    if (!dataplane || !ipam) return;
    const deps = { dataplane, ipam, logger: this.logger, nodeName: this.cfg.nodeName, kernelHasIpip: this.kernelHasIpip };
    const fields = await setUpTunnels({ ...deps, address4: this.address4, address6: this.address6 }, this.snapshot.pools, this.tunnels);
    if (Object.keys(fields).length) await this.writeNode((cur) => cur && withTunnelFields(cur, fields));
  }

  private applyBgpConfig(): void {
    const c = this.snapshot.bgpConfig?.spec;
    const self = this.snapshot.nodes.find((n) => n.metadata.name === this.cfg.nodeName);
    let globalAsn = DEFAULT_ASN;
    if (c?.asNumber !== undefined) {
      globalAsn = c.asNumber; // the store normalised it (asdot, 4-byte) when it was written
    }
    this.asn = this.cfg.asNumber ?? self?.spec.bgp?.asNumber ?? globalAsn;
    this.listenPort = c?.listenPort ?? 179;
    // bindMode NodeIP: listen only on the node's own addresses (Calico: BIRD `listen bgp address`).
    this.listenAddresses = c?.bindMode === 'NodeIP' ? [this.address4, this.address6].filter((a): a is string => Boolean(a)).map(ipOf) : [];
    this.routerId =
      this.cfg.routerId === 'hash' || (!this.cfg.routerId && !this.address4)
        ? hashRouterId(this.cfg.nodeName)
        : (this.cfg.routerId ?? ipOf(this.address4!));
  }

  private async startSpeaker(): Promise<void> {
    const opts: SpeakerOptions = { asn: this.asn, routerId: this.routerId, listenPort: this.listenPort };
    if (this.listenAddresses.length) opts.listenAddress = this.listenAddresses;
    if (this.cfg.rrClusterId) opts.clusterId = this.cfg.rrClusterId;
    if (this.cfg.gracefulRestartTimeSec > 0) opts.gracefulRestart = { restartTime: this.cfg.gracefulRestartTimeSec };
    const sp = this.deps.speakerFactory!(opts);
    if (sp.onChanges) {
      sp.onChanges((c) => {
        this.lastRouteChange = Date.now();
        const table = this.routeTable;
        if (!table) return;
        for (let i = 0; i < c.count; i++) {
          const nh = c.nextHop(i);
          // IPv4 as numbers: no prefix string per change
          const len = c.len4 ? c.len4(i) : -1;
          if (len >= 0) {
            if (nh) table.update4(c.net4!(i), len, nh, c.source(i), c.metric?.(i));
            else table.remove4(c.net4!(i), len);
          } else if (nh) table.update(c.prefix(i), nh, c.source(i), c.metric?.(i));
          else table.remove(c.prefix(i));
        }
      });
    } else {
      sp.onBest((ev) => {
        this.routeTable?.update(ev.prefix, ev.nextHops, ev.source ?? '', ev.metric);
        this.lastRouteChange = Date.now();
      });
      sp.onWithdrawn((ev) => {
        this.routeTable?.remove(ev.prefix);
        this.lastRouteChange = Date.now();
      });
    }
    sp.onPeerChange(() => {
      this.checkConverged();
      this.emit('peers');
    });
    sp.onEndOfRib?.((ev) => {
      this.endOfRib.add(ev.address);
      this.checkConverged();
    });
    sp.onSessionEvent?.((ev) => this.history.record(ev));
    this.speaker = sp;
    this.peerSync.speakerStarted();
    this.exported.clear();
    this.ifRoutes.clear();
    await sp.start();
    this.logger.info(
      {
        asn: opts.asn,
        routerId: opts.routerId,
        port: opts.listenPort,
        listen: opts.listenAddress ?? 'every address',
        clusterId: opts.clusterId,
      },
      'BGP speaker started',
    );
  }

  // ---------------------------------------------------------------- reconcile
  scheduleResync(): void {
    if (this.stopped || this.starting) return;
    if (this.resyncTimer) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      void this.resync();
    }, this.timing.resyncDebounceMs);
  }

  /** Re-read the datastore and reconcile everything (serialised; a request during a run runs once more after it). */
  async resync(): Promise<void> {
    if (this.resyncRunning) {
      this.resyncAgain = true;
      return this.resyncRunning;
    }
    this.resyncRunning = (async () => {
      do {
        this.resyncAgain = false;
        try {
          if (!this.isRouteReflector) await this.ensureBlocks();
          await this.readSnapshot();
          this.dsWatch.mark(true);
          if (!this.stopped && !this.snapshot.nodes.some((n) => n.metadata.name === this.cfg.nodeName)) {
            this.logger.warn('our Node resource was deleted while running: registering it again');
            await this.registerNode();
            await this.readSnapshot();
          }
          await this.ensureTunnels().catch((e: unknown) => this.logger.warn({ err: msg(e) }, 'tunnel setup failed'));
          await this.reconcileSpeakerIdentity();
          await this.recompute();
        } catch (e) {
          if (isDatastoreDown(e)) this.dsWatch.mark(false, e);
          else this.logger.error({ err: msg(e) }, 'resync failed');
        }
      } while (this.resyncAgain && !this.stopped);
    })().finally(() => {
      this.resyncRunning = undefined;
    });
    return this.resyncRunning;
  }

  private async readSnapshot(): Promise<void> {
    const r = this.deps.resources;
    const [nodes, pools, peers, bgpConfigs, filters] = await Promise.all([
      r.list<NodeRes>('Node'),
      r.list<PoolRes>('IPPool'),
      r.list<BgpPeerRes>('BGPPeer'),
      r.list<BgpConfigRes>('BGPConfiguration'),
      r.list<BgpFilterRes>('BGPFilter'),
    ]);
    let blocks: BlockInfo[] = [];
    let ownBlocks: Snapshot['ownBlocks'] = [];
    if (this.deps.ipam && !this.isRouteReflector) {
      [blocks, ownBlocks] = await Promise.all([this.deps.ipam.listBlocks(), this.deps.ipam.blocksAffineTo(this.cfg.nodeName)]);
    }
    const snap: Snapshot = { nodes, pools, peers, filters, blocks, ownBlocks };
    const def = bgpConfigs.find((c) => c.metadata.name === 'default');
    if (def) snap.bgpConfig = def;
    this.snapshot = snap;
  }

  /** AS number, router ID, listen port or address changed: a new speaker (BGP cannot change them on a live session). */
  private async reconcileSpeakerIdentity(): Promise<void> {
    const identity = () => ({ asn: this.asn, routerId: this.routerId, port: this.listenPort, listen: this.listenAddresses.join(',') });
    const before = identity();
    this.applyBgpConfig();
    if (!this.speaker) return;
    const now = identity();
    if (JSON.stringify(before) === JSON.stringify(now)) return;
    this.logger.info({ before, now }, 'BGP identity changed: restarting the speaker');
    await this.speaker.stop({ graceful: false });
    this.routeTable?.clear();
    await this.startSpeaker();
  }

  private peerNodes(): PeerNode[] {
    return this.snapshot.nodes.map((n) => {
      const p: PeerNode = { name: n.metadata.name, labels: n.metadata.labels ?? {} };
      if (n.spec.bgp?.ipv4Address) p.ipv4 = ipOf(n.spec.bgp.ipv4Address);
      if (n.spec.bgp?.ipv6Address) p.ipv6 = ipOf(n.spec.bgp.ipv6Address);
      if (n.spec.bgp?.asNumber !== undefined) p.asNumber = n.spec.bgp.asNumber;
      if (n.spec.bgp?.routeReflectorClusterID) p.rrClusterId = n.spec.bgp.routeReflectorClusterID;
      return p;
    });
  }

  private selfPeerNode(): PeerNode {
    const self: PeerNode = {
      name: this.cfg.nodeName,
      labels: this.snapshot.nodes.find((n) => n.metadata.name === this.cfg.nodeName)?.metadata.labels ?? this.cfg.labels,
      asNumber: this.asn,
    };
    if (this.address4) self.ipv4 = ipOf(this.address4);
    if (this.address6) self.ipv6 = ipOf(this.address6);
    if (this.cfg.rrClusterId) self.rrClusterId = this.cfg.rrClusterId;
    return self;
  }

  private async recompute(): Promise<void> {
    if (this.speaker) this.reconcilePeers();
    await this.reconcileRoutes();
  }

  private reconcilePeers(): void {
    const sp = this.speaker!;
    const c = this.snapshot.bgpConfig?.spec;
    const peerRes: PeerResource[] = this.snapshot.peers.map(peerResourceOf);
    const selector: SelectorMatch = (sel, labels) => {
      try {
        return this.deps.selector(sel, labels);
      } catch (e) {
        this.logger.warn({ selector: sel, err: msg(e) }, 'bad selector: matches nothing');
        return false;
      }
    };
    const bgpCfg: Parameters<typeof computePeers>[3] = {
      asNumber: this.asn,
      nodeToNodeMeshEnabled: c?.nodeToNodeMeshEnabled ?? true,
      listenPort: this.listenPort,
    };
    if (c?.nodeMeshPassword !== undefined)
      bgpCfg.nodeMeshPassword = secretKeyRefOf(c.nodeMeshPassword) ?? { name: '(invalid nodeMeshPassword)', key: 'default' };
    const meshMrt = restartTimeSeconds(c?.nodeMeshMaxRestartTime);
    if (c?.nodeMeshBFD) bgpCfg.nodeMeshBFD = bfdTimersOf(c.nodeMeshBFD);
    if (meshMrt !== undefined) bgpCfg.nodeMeshMaxRestartTime = meshMrt;
    const desired = computePeers(this.selfPeerNode(), this.peerNodes(), peerRes, bgpCfg, selector);
    this.peerSync.sync(sp, desired, {
      asn: this.asn,
      filters: this.snapshot.filters,
      programsRoutes: !!this.deps.dataplane && !this.isRouteReflector,
    });
  }

  private routePools(): RoutePool[] {
    return this.snapshot.pools.map((p) => ({
      cidr: p.spec.cidr,
      ipipMode: poolMode(p.spec.ipipMode),
      vxlanMode: poolMode(p.spec.vxlanMode),
      disabled: Boolean(p.spec.disabled),
      ...(p.spec.disableBGPExport ? { disableBGPExport: true } : {}),
    }));
  }

  private scheduleRoutes(): void {
    if (this.routeTimer || this.stopped) return;
    this.routeTimer = setTimeout(() => {
      this.routeTimer = undefined;
      void this.reconcileRoutes();
    }, this.timing.routeDebounceMs);
  }

  private async reconcileRoutes(): Promise<void> {
    if (this.starting) return;
    const self = this.cfg.nodeName;
    const borrowed: string[] = [];
    const remoteBlocks: { cidr: string; node: string }[] = [];
    for (const b of this.snapshot.blocks) {
      if (b.node !== self) {
        if (b.node) remoteBlocks.push({ cidr: b.cidr, node: b.node });
        for (const a of b.allocated) if (a.node === self) borrowed.push(a.ip);
      }
    }
    // every other node's VTEPs: IPv4 (vxlan.calico) and IPv6 (vxlan-v6.calico), each once fully known
    const vteps: RemoteVtep[] = [];
    for (const n of this.snapshot.nodes) {
      if (n.metadata.name === self) continue;
      const { spec } = n;
      for (const [address, vtepIp, vtepMac] of [
        [spec.bgp?.ipv4Address, spec.ipv4VXLANTunnelAddr, spec.vxlanTunnelMACAddr],
        [spec.bgp?.ipv6Address, spec.ipv6VXLANTunnelAddr, spec.vxlanTunnelMACAddrV6],
      ])
        if (address && vtepIp && vtepMac) vteps.push({ node: n.metadata.name, address: ipOf(address), vtepIp, vtepMac });
    }
    const input: Parameters<typeof computeRoutes>[0] = {
      pools: this.routePools(),
      ownBlocks: this.isRouteReflector ? [] : this.snapshot.ownBlocks,
      borrowed,
      learned: [],
      remoteBlocks,
      vteps,
      kernelHasIpip: this.kernelHasIpip,
    };
    if (this.address4) input.nodeAddress4 = this.address4;
    if (this.address6) input.nodeAddress6 = this.address6;
    if (this.uplink) input.uplink = this.uplink;
    const bc = this.snapshot.bgpConfig?.spec;
    if (!this.isRouteReflector && bc) {
      input.advertise = serviceAdvertisements(bc, this.deps.services?.state, self);
    }
    const out = computeRoutes(input);
    this.routeOut = out;
    const dp = this.deps.dataplane;
    if (dp && !this.isRouteReflector) {
      // learned routes: only what the changed pools/addresses/blocks affect is recomputed
      const ctx = compileRouteContext(input);
      if (this.routeTable) this.routeTable.setContext(ctx);
      else this.routeTable = new RouteTable(ctx, dp, (p) => this.speaker?.decisionReason?.(p));
      // datastore routes (own blocks, VXLAN, peers' reachableBy): a small set, diffed into the same desired state
      const next = new Map(out.routes.map((r) => [r.dst, r]));
      for (const r of peerRoutes(this.peerSync.desired.values())) if (!next.has(r.dst)) next.set(r.dst, r);
      for (const dst of this.staticRoutes.keys()) {
        if (next.has(dst)) continue;
        if (this.routeTable.lookup(dst)?.route)
          dp.setRoute(this.routeTable.lookup(dst)!.route!); // a learned route takes its place
        else dp.deleteRoute(dst);
      }
      for (const [dst, r] of next) if (JSON.stringify(this.staticRoutes.get(dst)) !== JSON.stringify(r)) dp.setRoute(r);
      this.staticRoutes = next;
    }
    for (const p of out.problems) if (!this.problems.includes(p)) this.logger.error(p);
    this.problems = out.problems;

    // Exports (BGP originate/withdraw).
    if (this.speaker && !this.isRouteReflector) {
      const next = new Set(out.exports);
      for (const p of this.exported)
        if (!next.has(p)) {
          this.speaker.withdraw(p);
          this.logger.info({ prefix: p }, 'withdrawn');
        }
      const comm = this.snapshot.bgpConfig?.spec as CommunityConfig | undefined;
      for (const p of next) {
        // BGPConfiguration prefixAdvertisements: communities on originated routes.
        const c = communitiesFor(p, comm);
        const attrsKey = JSON.stringify(c);
        if (this.exported.has(p) && this.exportedAttrs.get(p) === attrsKey) continue;
        const fam = p.includes(':') ? 6 : 4;
        const nh = fam === 4 ? this.address4 : this.address6;
        this.speaker.originate(p, {
          ...(nh ? { nextHop: ipOf(nh) } : {}),
          ...(c.communities.length ? { communities: c.communities } : {}),
          ...(c.largeCommunities.length ? { largeCommunities: c.largeCommunities } : {}),
        });
        this.exportedAttrs.set(p, attrsKey);
        this.logger.info(
          { prefix: p, ...(c.communities.length || c.largeCommunities.length ? { communities: attrsKey } : {}) },
          'originated',
        );
      }
      for (const p of this.exportedAttrs.keys()) if (!next.has(p)) this.exportedAttrs.delete(p);
      this.exported = next;
      void this.syncInterfaceRoutes();
    }
    // Kernel.
    if (this.deps.dataplane && !this.isRouteReflector) await this.applyDataplane();
  }

  /**
   * Originate the node's interface routes (Calico's direct routes) while some BGPFilter has an export
   * Accept rule — the only thing that can send one out; withdraw those whose address went.
   */
  private async syncInterfaceRoutes(): Promise<void> {
    const sp = this.speaker;
    const dp = this.deps.dataplane;
    if (!sp || this.isRouteReflector || !dp?.interfaceAddresses || this.ifRoutesBusy) return;
    this.ifRoutesBusy = true;
    try {
      const filters = this.snapshot.filters;
      const wanted = filters.some((f) => [...(f.spec.exportV4 ?? []), ...(f.spec.exportV6 ?? [])].some((r) => r.action === 'Accept'));
      // Import rules naming an interface (the one a learned route's next hop is on) need the subnets too.
      const byInterface = filters.some((f) => [...(f.spec.importV4 ?? []), ...(f.spec.importV6 ?? [])].some((r) => r.interface));
      const ignored = (this.snapshot.bgpConfig?.spec as { ignoredInterfaces?: string[] } | undefined)?.ignoredInterfaces ?? [];
      // No filter that uses interfaces: no address dump every 2 s (a filter applied later resyncs, which lists at once).
      const addrs = wanted || byInterface ? await dp.interfaceAddresses() : [];
      const next = wanted ? interfaceRoutes(addrs, ignored) : new Map<string, string>();
      if (this.speaker !== sp) return;
      sp.setConnected?.([...interfaceRoutes(addrs, [], true)].map(([prefix, iface]) => ({ prefix, iface })));
      for (const p of this.exported) next.delete(p); // a pool block or service range stays what it is
      for (const [p, iface] of this.ifRoutes)
        if (next.get(p) !== iface && !this.exported.has(p)) {
          sp.withdraw(p);
          this.logger.info({ prefix: p, interface: iface }, 'interface route withdrawn');
        }
      for (const [p, iface] of next) {
        if (this.ifRoutes.get(p) === iface) continue;
        const nh = p.includes(':') ? this.address6 : this.address4;
        sp.originate(p, { ...(nh ? { nextHop: ipOf(nh) } : {}), interface: iface, direct: true });
        this.logger.info({ prefix: p, interface: iface }, 'interface route originated');
      }
      this.ifRoutes = next;
    } catch (e) {
      this.logger.warn({ err: (e as Error).message }, 'interface addresses: list failed; will retry');
    } finally {
      this.ifRoutesBusy = false;
    }
  }

  private async applyDataplane(): Promise<void> {
    if (this.applyRunning) {
      this.applyAgain = true;
      return this.applyRunning;
    }
    this.applyRunning = (async () => {
      do {
        this.applyAgain = false;
        const out = this.routeOut;
        if (!out) break;
        try {
          const t0 = process.hrtime.bigint();
          await this.deps.dataplane!.apply({ neighbors: out.neighbors, fdb: out.fdb });
          this.emit('routeSync', Number(process.hrtime.bigint() - t0) / 1e9);
          this.dataplaneInSync = true; // the pass ran; readiness also asks the reconciler (it keeps programming)
        } catch (e) {
          this.dataplaneInSync = false;
          this.logger.error({ err: msg(e) }, 'programming the kernel failed (retrying)');
          setTimeout(() => this.scheduleRoutes(), 1000).unref();
        }
        try {
          await this.deps.dataplane!.applyNat(
            this.snapshot.pools
              .filter((p) => !p.spec.disabled)
              .map((p) => ({ cidr: p.spec.cidr, natOutgoing: Boolean(p.spec.natOutgoing) })),
          );
        } catch (e) {
          this.logger.warn({ err: msg(e) }, 'NAT outgoing rules not applied');
        }
      } while (this.applyAgain && !this.stopped);
    })().finally(() => {
      this.applyRunning = undefined;
    });
    return this.applyRunning;
  }

  /** Graceful restart (RFC 4724 §4.1, receiving side): deletes are held until routing has converged. */
  private checkConverged(): void {
    if (this.converged || this.starting || !this.firstReconcileDone) return;
    const now = Date.now();
    let done = now >= this.convergeDeadline;
    if (!done) {
      const status = this.speaker?.peers() ?? [];
      done = [...this.peerSync.desired.keys()].every((addr) => {
        const s = status.find((p) => p.address === addr);
        if (!s || s.state !== 'Established') return false;
        return (
          this.endOfRib.has(addr) ||
          (now - s.since.getTime() >= this.timing.convergeQuietMs && now - this.lastRouteChange >= this.timing.convergeQuietMs)
        );
      });
    }
    if (!done) return;
    this.converged = true;
    this.logger.info({ afterMs: now - this.startedAt.getTime() }, 'routing converged: stale kernel routes may now be removed');
    this.deps.dataplane?.holdDeletes(false);
    this.scheduleRoutes();
  }

  // ---------------------------------------------------------------- address changes
  /** Current addresses (for the re-detection poller). */
  addresses(): { ipv4?: string; ipv6?: string } {
    const a: { ipv4?: string; ipv6?: string } = {};
    if (this.address4) a.ipv4 = this.address4;
    if (this.address6) a.ipv6 = this.address6;
    return a;
  }

  /** Re-detect the addresses (AUTODETECT_POLL_INTERVAL); the conflict check runs against the other Nodes. */
  async redetect(): Promise<{ ipv4?: string; ipv6?: string }> {
    const others = this.snapshot.nodes.filter((n) => n.metadata.name !== this.cfg.nodeName);
    const r = await this.deps.addresses.resolve(this.addresses(), others);
    const out: { ipv4?: string; ipv6?: string } = {};
    if (r.ipv4) out.ipv4 = r.ipv4;
    if (r.ipv6) out.ipv6 = r.ipv6;
    return out;
  }

  /** The node's address changed: update the Node, then peers/next hops/router ID follow on the resync. */
  async onAddressesChanged(now: { ipv4?: string | undefined; ipv6?: string | undefined }): Promise<void> {
    this.logger.warn({ before: this.addresses(), now }, 'node address changed: updating the Node and re-peering');
    this.address4 = now.ipv4;
    this.address6 = now.ipv6;
    if (this.address4 && this.deps.dataplane?.uplinkFor) this.uplink = await this.deps.dataplane.uplinkFor(ipOf(this.address4));
    await this.registerNode();
    // Exports carry the old next hop: originate them again.
    if (this.speaker) {
      for (const p of this.exported) this.speaker.withdraw(p);
      this.exported.clear();
      for (const p of this.ifRoutes.keys()) this.speaker.withdraw(p);
      this.ifRoutes.clear();
    }
    this.peerSync.removeAll(this.speaker);
    await this.resync();
  }

  // ---------------------------------------------------------------- status
  private peerStatus(): PeerStatusJson[] {
    const live = this.speaker?.peers() ?? [];
    const bfd = this.deps.bfd?.status() ?? [];
    return [...this.peerSync.desired.values()].map((d) => {
      const b = bfd.find((x) => x.peer === d.address);
      const held = this.peerSync.heldReason(d.address);
      const s = held === undefined ? live.find((p) => p.address === d.address) : undefined;
      return {
        address: d.address,
        family: d.family,
        asn: d.asn,
        type: d.type,
        state: s?.state ?? 'Idle',
        since: isoTime(s?.since ?? this.startedAt),
        info: held ?? s?.info ?? 'Idle',
        prefixesReceived: s?.prefixesReceived ?? 0,
        prefixesAccepted: s?.prefixesAccepted ?? 0,
        ...(b
          ? { bfd: { state: b.state, diag: b.diag, detectionTimeMs: b.detectionTimeMs, downs: b.downs, lastDownDiag: b.lastDownDiag } }
          : {}),
        prefixesAdvertised: s?.prefixesAdvertised ?? 0,
      };
    });
  }

  private allProblems(): string[] {
    const bfd = this.peerSync.bfdProblem;
    return bfd ? [...this.problems, bfd] : [...this.problems];
  }

  readiness(): ReadinessJson {
    const i: Parameters<typeof computeReadiness>[0] = {
      peers: this.peerStatus(),
      datastoreUp: this.dsWatch.isUp,
      problems: this.allProblems(),
    };
    if (this.dsWatch.lastError) i.datastoreError = this.dsWatch.lastError;
    if (this.starting) i.starting = this.starting;
    if (this.deps.dataplane && !this.isRouteReflector) {
      // live: the reconciler keeps programming between the agent's passes
      i.dataplaneInSync =
        this.dataplaneInSync !== false && this.firstReconcileDone && this.converged && this.deps.dataplane.progress().inSync;
    }
    return computeReadiness(i);
  }

  liveness(): { live: boolean; reasons: string[] } {
    const stale = Date.now() - this.lastTick;
    if (!this.starting && stale > 30_000) return { live: false, reasons: [`main loop stuck for ${Math.round(stale / 1000)} s`] };
    return { live: true, reasons: [] };
  }

  status(): AgentStatusJson {
    const address: AgentStatusJson['address'] = {};
    if (this.address4) address.ipv4 = this.address4;
    if (this.address6) address.ipv6 = this.address6;
    return {
      nodeName: this.cfg.nodeName,
      mode: this.cfg.mode,
      version: this.deps.version ?? 'unknown',
      pid: process.pid,
      startedAt: isoTime(this.startedAt),
      address,
      asNumber: this.asn,
      routerId: this.routerId,
      peers: this.peerStatus(),
      routes: this.statusRoutes(),
      routing: this.routeFigures(),
      blocks: this.snapshot.ownBlocks.map((b) => ({ ...b })),
      exports: [...this.exported],
      ...this.exportRejected(),
      problems: [...this.allProblems(), ...this.peerSync.policyProblems],
      readiness: this.readiness(),
      ...(this.policyStatus ? { policy: this.policyStatus() } : {}),
    };
  }

  /** Set by tabby-node when it runs the policy engine. */
  policyStatus?: () => PolicyStatusJson;

  /** Own prefixes an export filter keeps from a peer (route explain and cluster status name the rule). */
  private exportRejected(): Pick<AgentStatusJson, 'exportRejected'> {
    const r = this.speaker?.exportRejections?.() ?? [];
    return r.length ? { exportRejected: r } : {};
  }

  /** Kernel routes for /status: the datastore's, then learned ones up to a limit (a table may hold 1M). */
  private statusRoutes(limit = STATUS_ROUTES_LIMIT): AgentStatusJson['routes'] {
    const out: AgentStatusJson['routes'] = [...this.staticRoutes.values()].map((r) => ({ ...r }));
    if (!this.deps.dataplane) out.push(...(this.routeOut?.routes ?? []).map((r) => ({ ...r })));
    out.push(...(this.routeTable?.routes(Math.max(0, limit - out.length)) ?? []));
    return out;
  }

  /** The route pipeline's figures: learned prefixes, kernel routes wanted/pending/held, the last error. */
  routeFigures(): NonNullable<AgentStatusJson['routing']> {
    const c = this.routeTable?.counts() ?? { learned: 0, routed: 0, byReason: {} };
    const p = this.deps.dataplane && !this.isRouteReflector ? this.deps.dataplane.progress() : undefined;
    const r: NonNullable<AgentStatusJson['routing']> = {
      learned: c.learned,
      routed: c.routed,
      noRoute: c.byReason,
      kernel: {
        desired: p?.desired ?? 0,
        pending: p?.pending ?? 0,
        held: p?.held ?? 0,
        inSync: p?.inSync ?? false,
        deletesHeld: !this.converged,
      },
    };
    if (p?.lastError) r.lastError = { message: p.lastError.message, at: isoTime(p.lastError.at) };
    if (p?.resync) r.kernel.resync = p.resync;
    return r;
  }

  /** `route explain`: the record deciding where traffic to an address or prefix goes — a learned
   *  route (with its next hops, peer, kernel route or why none) or one computed from the datastore. */
  explainRoute(query: string): RouteExplanation | undefined {
    const c = tryParseCidr(query);
    if (!c) return undefined;
    const learned = this.routeTable?.explain(query);
    let best: KernelRoute | undefined;
    let bestLen = -1;
    for (const r of this.staticRoutes.values()) {
      const d = parseCidr(r.dst);
      if (d.prefixLen > bestLen && cidrContainsCidr(d, c)) {
        best = r;
        bestLen = d.prefixLen;
      }
    }
    if (best && (!learned || bestLen >= parseCidr(learned.prefix).prefixLen)) {
      return { origin: 'datastore', prefix: best.dst, nextHops: best.gateway ? [best.gateway] : [], source: '', route: { ...best } };
    }
    return learned ? { origin: 'bgp', ...learned } : undefined;
  }

  /** `tabbyctl bgp routes`: per-prefix report for one peer, or for every peer when none is given. */
  bgpRoutes(
    peer: string | undefined,
    dir: 'received' | 'advertised',
  ): { peer: string; direction: string; routes: RouteReportEntry[] }[] | { error: string } {
    const sp = this.speaker;
    if (!sp?.routeReport) return { error: 'BGP is not running on this node' };
    const peers = peer ? [peer] : [...this.peerSync.desired.keys()];
    if (peer && !this.peerSync.desired.has(peer))
      return { error: `no BGP peer ${peer} on this node (peers: ${[...this.peerSync.desired.keys()].join(', ') || 'none'})` };
    return peers.map((p) => ({ peer: p, direction: dir, routes: sp.routeReport!(p, dir) ?? [] }));
  }

  sessions(): SessionsJson {
    return sessionsJson(this.cfg.nodeName, this.asn, this.peerSync.desired.values(), this.peerStatus(), this.history);
  }

  ipamFigures(): { blocks: number; addressesAllocated: number; addressesTotal: number } {
    const own = this.snapshot.blocks.filter((b) => b.node === this.cfg.nodeName);
    return {
      blocks: own.length,
      addressesAllocated: own.reduce((n, b) => n + b.allocated.length, 0),
      addressesTotal: own.reduce((n, b) => n + b.size, 0),
    };
  }

  /** For tests and the status: has routing converged since start? */
  get hasConverged(): boolean {
    return this.converged;
  }

  // ---------------------------------------------------------------- stop
  /** graceful=true (SIGTERM): BGP sessions end so that peers keep our routes for the restart time; kernel routes stay. */
  async stop(opts: { graceful: boolean } = { graceful: true }): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.dsWatch.stop();
    this.secrets.stop();
    await this.deps.bfd?.close().catch(() => undefined);
    for (const t of this.timers) clearInterval(t);
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    if (this.routeTimer) clearTimeout(this.routeTimer);
    await this.speaker?.stop(opts).catch((e: unknown) => this.logger.warn({ err: msg(e) }, 'BGP stop failed'));
    await this.deps.dataplane?.close().catch(() => undefined);
    this.logger.info({ graceful: opts.graceful }, 'tabby-node stopped');
  }
}

// ---------------------------------------------------------------- helpers
/** /status lists at most this many kernel routes (figures in `routing` count them all). */
export const STATUS_ROUTES_LIMIT = 1000;

export type RouteExplanation = RouteRecord & { origin: 'bgp' | 'datastore' };

export { ipOf, hashRouterId } from './util.js';
