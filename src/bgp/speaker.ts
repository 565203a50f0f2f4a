// BgpSpeaker: the listener, the peers and the RIBs; emits best-route changes (the agent installs them).
//
//   peer session (session.ts) ──UPDATE──▶ ingest (sliced, never starves keepalives)
//       ▶ import policy (policy.ts) ▶ Adj-RIB-In ▶ Loc-RIB (decision.ts) ─change─▶ 'best'/'withdrawn'
//       ▶ export (speaker-export.ts): per peer or update group, who gets it ▶ export attrs ▶ Adj-RIB-Out ▶ UPDATEs
//
// RFCs: 4271 (§9 decision/update-send), 4456 (reflection), 4724 (graceful restart, helper and
// restarting side), 7606 (outcomes from the codec: treat-as-withdraw / attribute-discard / reset),
// 2918 + 7313 (route refresh), 4486 (Cease 6/1 max-prefix).
// The per-peer transport (FSM, sockets, OPEN negotiation) comes from the SessionFactory the caller
// passes (tcpSessions() in speaker-sessions.ts, or a test's own). Per-peer runtime: peer.ts.
import type { BgpState } from './fsm.js';
import { parseIpv4Number, tryParseCidr, tryParseIp } from '../common/ip.js';
import { EventEmitter } from 'node:events';
import { Buffer } from 'node:buffer';
import type { Logger } from '../common/log.js';
import { log as makeLog } from '../common/log.js';
import { realClock, type Clock } from './clock.js';
import { encodeNotification, encodeRouteRefresh } from './codec/message.js';
import {
  type PrefixList,
  type RouteRefreshMessage,
  type UpdateMessage,
  FAMILY_IPV4_UNICAST,
  FAMILY_IPV6_UNICAST,
  type FamilyKey,
} from './codec/types.js';
import type { Negotiated } from './negotiate.js';
import { AttrTable, routeAttributesOf, type AttrSet, type RouteAttributes } from './rib/attrs.js';
import { LocRib } from './rib/loc-rib.js';
import { Path, peerSource, LOCAL_SOURCE, currentPath, internPath, uninternPath, type PathSource } from './rib/path.js';
import {
  PrefixTable,
  bucketAt,
  keyAt,
  formatPrefixKey,
  parsePrefixKey,
  afiOfBucket,
  BUCKET_V6,
  PrefixKeyList,
  type PrefixKey,
} from './rib/prefix-table.js';
import { endOfRibFamily } from './rib/update-writer.js';
import { importAttrs, type LocalIdentity, type PeerPolicy } from './policy.js';
import { shouldAdvertise } from './reflector.js';
import { describeDecision, type CompiledRule, type Residual } from './filter/engine.js';
import { routePrefixAt } from './filter/peer-filters.js';
import { reportAttrs, type ExportRejection, type RouteReportEntry } from './route-report.js';
import {
  keepStaleOnDown,
  familiesToFlushOnReturn,
  restartTimeMs,
  staleCount,
  newGeneration,
  markStale,
  endRefresh,
  awaitingEndOfRib,
  SelectionDeferral,
} from './graceful-restart.js';
import type { DecisionOptions } from './rib/decision.js';
import type {
  MaxPrefixConfig,
  PeerConfig,
  PeerStatus,
  BestRouteEvent,
  WithdrawnRouteEvent,
  PeerEvent,
  SessionDown,
  SessionFactory,
  BgpSpeakerOptions,
  SpeakerEvents,
  OriginateOptions,
} from './speaker-types.js';
import { LocRibView } from './speaker-view.js';
import { Peer } from './peer.js';
import { BestChangeBatch } from './best-changes.js';
import { groupLimits } from './update-group.js';
import { Exporter } from './speaker-export.js';

export type * from './speaker-types.js';
export { LocRibView } from './speaker-view.js';

const ALL_AFIS: readonly (1 | 2)[] = [1, 2];

/** A reflector lists the reflected routes its export filters reject only up to this Loc-RIB size (walked per status). */
const REFLECTED_SCAN_MAX = 20_000;

/**
 * A flush of a peer's routes yields after this many removals (a power of two) even within its time
 * slice: each slice's best changes go to the consumer as one batch, and a batch of the whole table
 * made the agent hold every withdrawn prefix at once (the agent's peak RSS was in its withdraw-all).
 */
const FLUSH_SLICE_MAX = 4096;

export class BgpSpeaker extends EventEmitter<SpeakerEvents> {
  readonly asn: number;
  readonly routerId: string;
  readonly clusterId: string | undefined;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly attrTable = new AttrTable();
  /** 'changes': best-route changes batched per event-loop turn (the agent's feed) */
  private readonly changes = new BestChangeBatch((b) => this.emit('changes', b));
  private readonly rib: LocRib;
  private readonly peersByAddr = new Map<string, Peer>();
  private readonly identity: LocalIdentity;
  private readonly sessions: SessionFactory;
  private readonly sliceMs: number;
  private readonly inboundMax: number;
  private nextSourceId = 1;
  /** UPDATEs whose processing threw (a bug if ever > 0). */
  internalErrors = 0;
  private running = false;
  private processing = false;
  private readonly busy = new Set<Peer>();
  /** processSlice's snapshot of `busy`: busyList[0, busyCount) (kept, so no array per round). */
  private readonly busyList: Peer[] = [];
  private busyCount = 0;
  private readonly listBusy = (p: Peer): void => {
    this.busyList[this.busyCount++] = p;
  };
  /** RFC 4724 restarting side: best-path output held back; the prefixes that changed meanwhile. */
  private readonly deferral: SelectionDeferral;
  private readonly localPaths = new PrefixTable<Path>();
  private readonly localSource: PathSource = { ...LOCAL_SOURCE, routes: 0 };
  private readonly bySource = new Map<PathSource, Peer>();
  /** Outgoing interface of originated prefixes that have one (BGPFilter `interface` matches it). */
  private readonly localIface = new PrefixTable<string>();
  /** The node's connected subnets and their interfaces (setConnected): a learned route's interface is
   *  the one whose subnet holds its next hop, as BIRD's `ifname` for a directly connected BGP next hop. */
  private connected: { family: 4 | 6; network: bigint; len: number; iface: string }[] = [];
  private connectedKey = '';
  /** Originated interface (device) routes: exported only where a filter rule accepts them. */
  private readonly localDirect = new PrefixTable<true>();
  /** What each peer is sent, alone or in an update group (speaker-export.ts). */
  private readonly exporter: Exporter;

  constructor(readonly opts: BgpSpeakerOptions) {
    super();
    this.asn = opts.asn;
    this.routerId = opts.routerId;
    this.clusterId = opts.clusterId;
    this.clock = opts.clock ?? realClock;
    this.log = opts.logger ?? makeLog('bgp', { routerId: opts.routerId });
    const dopts: DecisionOptions = { multipath: opts.multipath ?? false, alwaysCompareMed: opts.alwaysCompareMed ?? false };
    this.rib = new LocRib(dopts, (path) => this.releasePath(path));
    this.identity = { asn: opts.asn, routerId: opts.routerId, ...(opts.clusterId ? { clusterId: opts.clusterId } : {}) };
    this.sessions = opts.sessions;
    this.sliceMs = opts.sliceMs ?? 15;
    this.inboundMax = Math.max(4, opts.inboundQueueMax ?? 128);
    this.exporter = new Exporter({
      rib: this.rib,
      attrTable: this.attrTable,
      log: this.log,
      sliceMs: this.sliceMs,
      limits: groupLimits(opts.updateGroups),
      localIface: this.localIface,
      localDirect: this.localDirect,
      reflecting: () => this.reflector,
      peers: () => this.peerList,
      deferring: () => this.deferral.deferring,
      identityFor: (p) => this.identityFor(p),
      dumpDone: (address) => this.emit('dump-done', { address }),
      refreshDone: (address, afi) => this.emit('route-refresh', { address, afi }),
    });
    this.deferral = new SelectionDeferral(!!opts.gracefulRestart?.restarting);
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.sessions.listen) {
      // One listener per address (BGPConfiguration bindMode NodeIP on a dual-stack node binds both).
      const la = this.opts.listenAddress;
      for (const a of typeof la === 'string' || la === undefined ? [la] : la) await this.sessions.listen(a, this.opts.listenPort ?? 179);
    }
    for (const p of this.peersByAddr.values()) this.startSession(p);
    if (this.deferral.deferring) {
      const ms = 1000 * (this.opts.gracefulRestart?.deferralTime ?? this.opts.gracefulRestart?.restartTime ?? 120);
      this.deferral.arm(this.clock, ms, () => this.endDeferral('selection deferral timer expired'));
      this.checkDeferral();
    }
  }

  /** Stop every session. graceful: just close the sockets (peers keep our routes, RFC 4724); else Cease 6/2. */
  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    this.running = false;
    this.deferral.cancel();
    for (const p of this.peersByAddr.values()) {
      p.shutdown(opts.graceful ? undefined : { subcode: 2 }); // graceful: silent close (RFC 4724); else Cease 6/2
      this.setState(p, 'Idle', 'Stopped');
    }
    await this.sessions.close?.();
  }

  // ---------------------------------------------------------------- peers

  addPeer(config: PeerConfig): void {
    const address = config.address;
    if (this.peersByAddr.has(address)) throw new Error(`peer ${address} already configured`);
    const ebgp = config.asn !== (config.localAsn ?? this.asn);
    const source = peerSource({ id: this.nextSourceId++, address, ebgp, asn: config.asn, rrClient: !!config.routeReflectorClient });
    const p = new Peer(config, source, this.policyFor(config, config.localAddress ?? ''), this.attrTable, new Date(this.wallNow()));
    this.peersByAddr.set(address, p);
    this.bySource.set(source, p);
    this.updateReflector();
    if (this.running) this.startSession(p);
  }

  /** Change a peer's configuration; the session restarts when something it negotiated changed. */
  updatePeer(config: PeerConfig): void {
    const p = this.peersByAddr.get(config.address);
    if (!p) return this.addPeer(config);
    const old = p.config;
    const sessionKeys: (keyof PeerConfig)[] = [
      'asn',
      'localAddress',
      'passive',
      'password',
      'ttlSecurity',
      'holdTime',
      'families',
      'port',
      'routeReflectorClient',
      'gracefulRestart',
      'restartTime',
      'localAsn',
    ];
    // numAllowedLocalASNumbers decides on import (loops are dropped, not kept): the peer must resend —
    // a route refresh, or a new session when the peer cannot refresh.
    const importPolicy = (old.allowOwnAs ?? 0) !== (config.allowOwnAs ?? 0);
    const canRefresh = p.state !== 'Established' || !!p.negotiated?.routeRefresh;
    const restart = sessionKeys.some((k) => JSON.stringify(old[k]) !== JSON.stringify(config[k])) || (importPolicy && !canRefresh);
    if (restart) {
      this.removePeer(config.address);
      this.addPeer(config);
      return;
    }
    if (p.group) this.exporter.evict(p, 'configuration changed');
    p.config = { ...config };
    p.policy = this.policyFor(config, p.policy.localAddress);
    p.exportCache.clear();
    p.filters.clearExport();
    const changed = p.filters.set(config.filters ?? [], p.policy.ebgp);
    if (importPolicy) p.lastImport.clear(); // decided under the old limit
    // A filter change never resets the session: exports are re-diffed, imports re-requested (RFC 2918).
    if (p.state === 'Established') this.exporter.refreshExports(p);
    if ((changed.import || importPolicy) && p.state === 'Established') this.reimport(p);
  }

  removePeer(address: string): void {
    const p = this.peersByAddr.get(address);
    if (!p) return;
    p.shutdown({ subcode: 3 }); // Cease 6/3 peer de-configured
    p.endSession();
    this.peersByAddr.delete(address);
    this.busy.delete(p);
    this.exporter.forget(p);
    this.flushPeerRoutes(p, null);
    this.bySource.delete(p.source);
    this.updateReflector();
    this.emit('peer', { address, state: 'Idle', previous: p.state, info: 'Removed' } satisfies PeerEvent);
  }

  /**
   * The forwarding path to a peer is gone (RFC 5882 §4.2: BFD went Down): end its session now with
   * Cease 6/10 "BFD Down" (RFC 9384), remove its routes at once — no graceful-restart retention for a
   * detected failure — and start a new session (it comes up when the path is back).
   */
  resetPeer(address: string, reason: string): boolean {
    const p = this.peersByAddr.get(address);
    if (!p?.session) return false;
    p.detach({ subcode: 10 });
    this.onDown(p, { reason, notification: true });
    if (this.running && !p.stopped) this.startSession(p);
    return true;
  }

  peers(): PeerStatus[] {
    return [...this.peersByAddr.values()].map((p) => ({
      address: p.config.address,
      asn: p.config.asn,
      state: p.state,
      since: p.since,
      info: p.info,
      prefixesReceived: p.source.routes + p.filters.rejected.size,
      prefixesAccepted: p.source.routes,
      prefixesStale: staleCount(p),
      prefixesAdvertised: p.group ? p.group.out.sentTo(p.source) : p.adjOut.sent.size,
      inboundQueued: p.inboundQueued,
      inboundPeak: p.inboundPeak,
      outboundQueued: p.outQueue.bytes,
      outboundPeak: p.outQueue.peak,
      ...(p.group ? { updateGroup: p.group.id } : {}),
      ...(p.config.type ? { type: p.config.type } : {}),
      ...(p.config.description ? { description: p.config.description } : {}),
      ...(p.negotiated ? { routerId: p.negotiated.peerRouterId } : {}),
    }));
  }

  /**
   * Per-prefix report for `tabbyctl bgp routes`: what the peer sent us ('received': accepted, best or
   * rejected, and which filter rule decided) or what we send it ('advertised': every Loc-RIB prefix,
   * advertised or not, and why). undefined: no such peer.
   */
  routeReport(address: string, dir: 'received' | 'advertised'): RouteReportEntry[] | undefined {
    const p = this.peersByAddr.get(address);
    if (!p) return undefined;
    const out: RouteReportEntry[] = [];
    const rule = (r: CompiledRule | undefined, list: 'import' | 'export', afi: 1 | 2) =>
      r
        ? {
            decidedBy: describeDecision({ action: r.action, filter: r.filter, rule: r.index }, list, afi),
            filter: r.filter,
            rule: r.index,
            action: r.action,
          }
        : { decidedBy: 'default Accept' };
    if (dir === 'received') {
      this.rib.forEach((best, b, k, slot) => {
        const x = Array.isArray(slot) ? slot.find((q) => q.source === p.source) : slot.source === p.source ? slot : undefined;
        if (!x) return;
        const afi = afiOfBucket(b);
        const d = p.filters.chain.evaluate('import', routePrefixAt(b, k), {
          attrs: x.attrs.attrs,
          fromPeer: true,
          ebgpPeer: p.policy.ebgp,
        }).decision;
        out.push({
          prefix: formatPrefixKey(b, k),
          state: x === best ? 'best' : 'accepted',
          ...(d.filter !== undefined
            ? { decidedBy: describeDecision(d, 'import', afi), filter: d.filter, rule: d.rule!, action: d.action }
            : { decidedBy: 'default Accept' }),
          ...reportAttrs(x.attrs.attrs),
        });
      });
      p.filters.rejected.forEach((r, b, k) =>
        out.push({
          prefix: formatPrefixKey(b, k),
          state: 'rejected',
          ...rule(r.rule, 'import', afiOfBucket(b)),
          ...reportAttrs(r.attrs.attrs),
        }),
      );
      return out;
    }
    this.rib.forEach((best, b, k) => {
      const afi = afiOfBucket(b);
      const prefix = formatPrefixKey(b, k);
      const held = (why: string) => out.push({ prefix, state: 'not-advertised', decidedBy: why, ...reportAttrs(best.attrs.attrs) });
      if (best.source === p.source) return held('learned from this peer');
      if (!shouldAdvertise(best.source, p.target, this.reflector)) {
        return held('iBGP-learned route: not re-advertised to an iBGP peer (RFC 4271 §9.2 / RFC 4456)');
      }
      const fam: FamilyKey = afi === 1 ? FAMILY_IPV4_UNICAST : FAMILY_IPV6_UNICAST;
      if (p.negotiated && !p.negotiated.families.includes(fam))
        return held(`address family IPv${afi === 1 ? 4 : 6} not negotiated with the peer`);
      p.filters.lastRule = undefined;
      const set = this.exporter.exportFor(p, best, b, k);
      const r = p.filters.hasExport(afi) ? (p.filters.lastRule as CompiledRule | undefined) : undefined;
      if (set) return out.push({ prefix, state: 'advertised', ...rule(r, 'export', afi), ...reportAttrs(set.attrs) });
      if (r?.action === 'Reject')
        return out.push({ prefix, state: 'not-advertised', ...rule(r, 'export', afi), ...reportAttrs(best.attrs.attrs) });
      if (best.source.local && this.localDirect.get(b, k)) return held('interface route: no rule accepts it');
      return held('well-known community NO_ADVERTISE / NO_EXPORT (RFC 1997)');
    });
    return out;
  }

  // ---------------------------------------------------------------- local routes

  /** Originate a prefix from this speaker (e.g. an IPAM block). */
  originate(prefix: string, opts: OriginateOptions = {}): void {
    const k = parsePrefixKey(prefix);
    const attrs: RouteAttributes = { origin: 0, asPath: [] };
    if (opts.nextHop) attrs.nextHop = opts.nextHop;
    if (opts.communities?.length) attrs.communities = opts.communities.slice();
    if (opts.largeCommunities?.length) attrs.largeCommunities = opts.largeCommunities.map((c) => ({ ...c }));
    if (opts.interface) this.localIface.set(k.bucket, k.key, opts.interface);
    else this.localIface.delete(k.bucket, k.key);
    const wasDirect = this.localDirect.get(k.bucket, k.key) === true;
    if (opts.direct) this.localDirect.set(k.bucket, k.key, true);
    else this.localDirect.delete(k.bucket, k.key);
    if (opts.localPref !== undefined) attrs.localPref = opts.localPref;
    if (opts.med !== undefined) attrs.med = opts.med;
    const set = this.attrTable.intern(attrs);
    const prev = this.localPaths.get(k.bucket, k.key);
    if (prev && prev.attrs === set && wasDirect === (opts.direct === true)) return;
    const path = new Path(this.localSource, set);
    this.attrTable.ref(set); // the Path's reference, dropped in releasePath()
    this.localPaths.set(k.bucket, k.key, path);
    if (this.rib.upsert(k.bucket, k.key, path)) this.bestChanged(k.bucket, k.key);
  }

  withdraw(prefix: string): void {
    const k = parsePrefixKey(prefix);
    const prev = this.localPaths.get(k.bucket, k.key);
    if (!prev) return;
    this.localPaths.delete(k.bucket, k.key);
    this.localIface.delete(k.bucket, k.key);
    this.localDirect.delete(k.bucket, k.key);
    if (this.rib.remove(k.bucket, k.key, this.localSource)) this.bestChanged(k.bucket, k.key);
  }

  /**
   * Prefixes an export filter keeps from a peer, with the deciding rule: what the status record carries
   * so `route explain` and `cluster status` can name the filter (bounded). Originated prefixes always;
   * on a route reflector also the routes it would reflect (when its Loc-RIB is small enough to walk).
   */
  exportRejections(limit = 200, reflectedMax = REFLECTED_SCAN_MAX): ExportRejection[] {
    const out: ExportRejection[] = [];
    const walkReflected = this.reflector && this.rib.size <= reflectedMax;
    for (const p of this.peersByAddr.values()) {
      if (!p.filters.hasExport(1) && !p.filters.hasExport(2)) continue;
      // Paths share a few attribute sets: the rules left per set, then one match per prefix.
      const residuals = new Map<AttrSet, Residual>();
      const check = (path: Path, b: number, k: PrefixKey): void => {
        const afi = afiOfBucket(b);
        if (out.length >= limit || !p.filters.hasExport(afi)) return;
        let res = residuals.get(path.attrs);
        if (res === undefined) {
          res = p.filters.chain.residual('export', afi, { attrs: path.attrs.attrs, fromPeer: !path.source.local, ebgpPeer: p.policy.ebgp });
          residuals.set(path.attrs, res);
        }
        if (res.rules.length === 0) return;
        // Interface routes stay home unless accepted: a Reject of one explains nothing.
        if (path.source.local && this.localDirect.get(b, k)) return;
        const iface = path.source.local ? this.localIface.get(b, k) : undefined;
        const i = b !== BUCKET_V6 && iface === undefined ? res.match4((k as number) >>> 0, b) : res.match(routePrefixAt(b, k, iface));
        const r = i < 0 ? undefined : res.rules[i]!;
        if (r?.action !== 'Reject') return;
        const d = { action: r.action, filter: r.filter, rule: r.index };
        out.push({
          prefix: formatPrefixKey(b, k),
          peer: p.config.address,
          filter: r.filter,
          rule: r.index,
          decidedBy: describeDecision(d, 'export', afi),
        });
      };
      this.localPaths.forEach(check);
      if (!walkReflected) continue;
      this.rib.forEach((best, b, k) => {
        if (best.source.local || best.source === p.source) return;
        if (!shouldAdvertise(best.source, p.target, this.reflector)) return;
        check(best, b, k);
      });
    }
    return out;
  }

  /** Prefixes originated here. */
  originated(): string[] {
    const out: string[] = [];
    this.localPaths.forEach((_p, b, k) => out.push(formatPrefixKey(b, k)));
    return out;
  }

  // ---------------------------------------------------------------- Loc-RIB view

  /** A read-only view of the Loc-RIB. */
  locRib(): LocRibView {
    return new LocRibView(this.rib);
  }

  /** Update groups (update-group.ts): members, prefixes in the shared Adj-RIB-Out, changes not yet encoded. */
  updateGroups(): ReturnType<Exporter['updateGroups']> {
    return this.exporter.updateGroups();
  }

  /** Distinct interned attribute sets (for metrics and the scale test). */
  get attributeSets(): number {
    return this.attrTable.size;
  }

  /** true while UPDATEs are queued for processing. */
  get idle(): boolean {
    return this.busy.size === 0;
  }

  // ---------------------------------------------------------------- sessions

  private policyFor(config: PeerConfig, localAddress: string): PeerPolicy {
    return {
      asn: config.asn,
      ebgp: config.asn !== (config.localAsn ?? this.asn),
      rrClient: !!config.routeReflectorClient,
      nextHopSelf: !!config.nextHopSelf,
      keepOriginalNextHop: !!config.keepOriginalNextHop,
      allowOwnAs: config.allowOwnAs ?? 0,
      localAddress,
      ...(config.localAddress6 ? { localAddress6: config.localAddress6 } : {}),
    };
  }

  /** Who we are toward a peer: its BGPPeer localASNumber replaces our AS (OPEN, prepend, loop check). */
  private identityFor(p: Peer): LocalIdentity {
    const asn = p.config.localAsn;
    return asn === undefined || asn === this.asn ? this.identity : { ...this.identity, asn };
  }

  /** We reflect (RFC 4456) when we have a cluster ID or any route-reflector client. */
  private reflector = false;
  /** The peers as an array (hot loops avoid allocating Map iterators). */
  private peerList: Peer[] = [];
  private updateReflector(): void {
    this.peerList = [...this.peersByAddr.values()];
    this.reflector = this.clusterId !== undefined || [...this.peersByAddr.values()].some((p) => !!p.config.routeReflectorClient);
  }

  private startSession(p: Peer): void {
    p.stopped = false;
    const gr = this.opts.gracefulRestart;
    const useGr = gr && p.config.gracefulRestart !== false;
    const s = this.sessions.create({
      peer: p.config,
      localAsn: p.config.localAsn ?? this.asn,
      routerId: this.routerId,
      listenPort: this.opts.listenPort ?? 179,
      ...(useGr
        ? {
            gracefulRestart: {
              restartTime: p.config.restartTime ?? gr.restartTime,
              restarting: !!gr.restarting,
              forwardingPreserved: gr.forwardingPreserved ?? true,
            },
          }
        : {}),
      clock: this.clock,
      logger: this.log.child({ peer: p.config.address }),
    });
    p.session = s;
    s.on('state', (state: BgpState, info?: string) => {
      if (p.session === s) this.setState(p, state, info ?? state);
    });
    s.on('established', (n: Negotiated, localAddress: string) => {
      if (p.session === s) this.onEstablished(p, n, localAddress);
    });
    s.on('update', (m: UpdateMessage) => {
      if (p.session === s) this.enqueue(p, m);
    });
    // ROUTE-REFRESH goes through the same queue as UPDATEs: BoRR/EoRR must be seen in stream order.
    s.on('route-refresh', (m: RouteRefreshMessage) => {
      if (p.session === s) this.enqueue(p, m);
    });
    s.on('down', (d: SessionDown) => {
      if (p.session === s) this.onDown(p, d);
    });
    s.on('drain', () => {
      if (p.session === s) {
        p.blocked = false;
        this.exporter.scheduleFlush(p);
      }
    });
    // Session history for diagnostics (the agent keeps it): NOTIFICATIONs and TCP connect errors.
    s.on('notification', (n) => {
      if (p.session === s) this.emit('notification', { address: p.config.address, ...n });
    });
    s.on('connect-error', (e) => {
      if (p.session === s) this.emit('connect-error', { address: p.config.address, ...e });
    });
    s.start();
  }

  private setState(p: Peer, state: BgpState, info: string): void {
    if (p.state === state && p.info === info) return;
    const previous = p.state;
    if (previous !== state) p.since = new Date(this.wallNow());
    p.state = state;
    p.info = info;
    this.emit('peer', { address: p.config.address, state, previous, info } satisfies PeerEvent);
  }

  private wallNow(): number {
    return this.clock === realClock ? Date.now() : this.clock.now();
  }

  private onEstablished(p: Peer, n: Negotiated, localAddress: string): void {
    p.resetForSession(n, this.policyFor(p.config, localAddress || p.config.localAddress || ''));
    p.source.routerId = parseIpv4Number(n.peerRouterId);
    // RFC 4724 §4.2: families without the F bit (or no capability at all) lose their stale routes now.
    newGeneration(p, this.attrTable);
    if (staleCount(p) > 0) {
      p.grTimer?.cancel();
      const flush = familiesToFlushOnReturn(n.peerGracefulRestart, ALL_AFIS);
      if (flush.length) this.sweepStale(p, flush);
      if (staleCount(p) > 0) {
        // Wait for End-of-RIB, bounded by the peer's restart time (at least 60 s).
        const ms = Math.max(60_000, restartTimeMs(n.peerGracefulRestart));
        p.grTimer = this.clock.setTimer(ms, () => this.sweepStale(p, ALL_AFIS));
      }
    }
    this.setState(p, 'Established', 'Established');
    if (!this.deferral.deferring) this.exporter.startDump(p);
    this.checkDeferral();
  }

  private onDown(p: Peer, d: SessionDown): void {
    const wasEstablished = p.state === 'Established';
    const peerGr = p.negotiated?.peerGracefulRestart;
    p.endSession();
    this.busy.delete(p);
    if (wasEstablished) {
      if (this.opts.gracefulRestart && keepStaleOnDown(peerGr, d) && p.source.routes > 0) {
        // RFC 4724 §4.2 helper: keep the routes, mark them stale, bound by the peer's restart time.
        markStale(p, this.attrTable);
        p.grTimer?.cancel();
        const ms = restartTimeMs(peerGr);
        this.log.info({ stale: staleCount(p), restartTimeMs: ms }, 'peer down, keeping its routes stale (graceful restart)');
        p.grTimer = this.clock.setTimer(ms, () => this.sweepStale(p, ALL_AFIS));
      } else {
        this.flushPeerRoutes(p, null);
      }
    }
    this.setState(p, p.stopped ? 'Idle' : 'Active', d.reason);
    this.checkDeferral();
  }

  // ---------------------------------------------------------------- ingest

  private enqueue(p: Peer, m: UpdateMessage | RouteRefreshMessage): void {
    p.enqueue(m, this.inboundMax);
    this.busy.add(p);
    if (!this.processing) {
      this.processing = true;
      setImmediate(() => this.processSlice());
    }
  }

  /** Process queued UPDATEs for at most sliceMs, then yield to the event loop (timers, sockets). */
  private processSlice(): void {
    const deadline = performance.now() + this.sliceMs;
    let n = 0;
    const list = this.busyList;
    while (this.busy.size > 0) {
      // a snapshot in a reused array: a Set iterator per round was garbage per UPDATE (a peer that
      // left meanwhile has an empty queue and is dropped below)
      this.busyCount = 0;
      this.busy.forEach(this.listBusy);
      for (let j = 0, n = this.busyCount; j < n; j++) {
        const p = list[j]!;
        const m = p.takeInbound();
        if (m === undefined) {
          p.clearInbound();
          this.busy.delete(p);
          continue;
        }
        if (p.inputHeld) p.releaseInput(this.inboundMax >> 2);
        try {
          if (m.type === 'update') this.processUpdate(p, m);
          else this.onRouteRefresh(p, m);
        } catch (e) {
          // Never crash on a peer's input; counted so tests and metrics can see it.
          this.internalErrors++;
          this.log.error({ err: e }, 'UPDATE processing failed');
        }
        if (p.inHead >= p.inQueue.length) {
          p.clearInbound();
          this.busy.delete(p);
        }
      }
      if ((++n & 7) === 0 && performance.now() > deadline) break;
    }
    if (this.busy.size > 0) setImmediate(() => this.processSlice());
    else {
      this.processing = false;
      this.emit('idle');
    }
  }

  private processUpdate(p: Peer, m: UpdateMessage): void {
    if (p.state !== 'Established') return;
    const eor = endOfRibFamily(m);
    if (eor) return this.onEndOfRib(p, eor);
    if (m.errors?.length) {
      for (const e of m.errors) this.log.warn({ code: e.code, subcode: e.subcode, handling: e.handling }, `malformed UPDATE: ${e.message}`);
    }
    if (m.treatAsWithdraw) {
      // RFC 7606 §2: every NLRI of this UPDATE is handled as withdrawn.
      this.withdrawList(p, m.withdrawn);
      this.withdrawList(p, m.nlri);
      if (m.attrs?.mpReach) this.withdrawList(p, m.attrs.mpReach.nlri);
      if (m.attrs?.mpUnreach) this.withdrawList(p, m.attrs.mpUnreach.withdrawn);
      return;
    }
    if (m.withdrawn.count) this.withdrawList(p, m.withdrawn);
    const a = m.attrs;
    if (a?.mpUnreach) this.withdrawList(p, a.mpUnreach.withdrawn);
    if (!a) return;
    if (m.nlri.count) {
      const set = this.importSet(p, a, undefined, m.rawAttrs);
      if (set) this.announceList(p, m.nlri, set);
      else this.withdrawList(p, m.nlri);
    }
    const mp = a.mpReach;
    if (mp?.nlri.count && mp.safi === 1) {
      const set = this.importSet(p, a, { nextHop: mp.nextHop, ...(mp.linkLocal ? { linkLocal: mp.linkLocal } : {}) }, undefined);
      if (set) this.announceList(p, mp.nlri, set);
      else this.withdrawList(p, mp.nlri);
    }
    this.checkMaxPrefix(p);
  }

  /** The interned, post-import-policy attribute set of an UPDATE (null: rejected by policy). */
  private importSet(
    p: Peer,
    a: UpdateMessage['attrs'] & object,
    mpNextHop: { nextHop: string; linkLocal?: string } | undefined,
    raw: Buffer | undefined,
  ): AttrSet | null {
    // Fast path: the same attribute bytes as this peer's last UPDATE (the IPv4 case; MP_REACH holds NLRI).
    const cached = raw !== undefined && !a.mpReach;
    if (cached) {
      const hit = p.lastImport.get(raw);
      if (hit !== undefined) return hit;
    }
    const r = importAttrs(this.identityFor(p), p.policy, routeAttributesOf(a, mpNextHop));
    let set: AttrSet | null = null;
    if (r.ok) set = this.attrTable.intern(r.attrs);
    else this.log.debug({ reason: r.reason }, 'path rejected on import');
    if (cached) p.lastImport.put(raw, set);
    return set;
  }

  /** The peer's current-generation Path for an attribute set (created on first use). */
  private pathFor(p: Peer, set: AttrSet): Path {
    let path = currentPath(set, p.source);
    if (path === undefined) {
      path = new Path(p.source, set);
      internPath(path);
      this.attrTable.ref(set); // the Path's reference, dropped in releasePath()
      p.paths.push(path);
    }
    return path;
  }

  private announceList(p: Peer, list: PrefixList, set: AttrSet): void {
    const afi = list.afi as 1 | 2;
    if (p.filters.hasImport(afi)) {
      const res = p.filters.importResidual(set, afi);
      if (res.rules.length > 0) return this.announceFiltered(p, list, set, res);
    }
    if (p.filters.rejected.size > 0) for (let i = 0; i < list.count; i++) p.filters.rejected.delete(bucketAt(list, i), keyAt(list, i));
    const path = this.pathFor(p, set);
    const rib = this.rib;
    if (list.afi === 1) {
      const addrs = list.addrs,
        lens = list.lens;
      for (let i = 0; i < list.count; i++) {
        const b = lens[i]!,
          k = addrs[i]! | 0;
        if (rib.upsert(b, k, path)) this.bestChanged(b, k);
      }
      return;
    }
    for (let i = 0; i < list.count; i++) {
      const b = bucketAt(list, i),
        k = keyAt(list, i);
      if (rib.upsert(b, k, path)) this.bestChanged(b, k);
    }
  }

  /** Import filters (BGPFilter) per prefix, before the Loc-RIB: a rejected prefix never reaches best path or the kernel. */
  private announceFiltered(p: Peer, list: PrefixList, set: AttrSet, res: Residual): void {
    const f = p.filters;
    const iface = this.importIface(p, set, list.afi as 1 | 2);
    for (let i = 0; i < list.count; i++) {
      const b = bucketAt(list, i),
        k = keyAt(list, i);
      const out = f.importDecide(res, set, b, k, iface);
      if (out === null) {
        f.noteRejected(b, k, set, f.lastRule!);
        if (this.rib.remove(b, k, p.source)) this.bestChanged(b, k);
        continue;
      }
      if (f.rejected.size > 0) f.rejected.delete(b, k);
      if (this.rib.upsert(b, k, this.pathFor(p, out))) this.bestChanged(b, k);
    }
  }

  /**
   * The import filters changed: ask the peer to send everything again (RFC 2918 route refresh), so
   * each prefix is decided afresh; a peer without route refresh gets what we hold re-decided here
   * (rejected routes from their received attributes, accepted ones from their current attributes).
   */
  private reimport(p: Peer): void {
    const fams = p.negotiated?.families ?? [];
    if (p.negotiated?.routeRefresh) {
      for (const f of fams) this.requestRefresh(p.config.address, f === FAMILY_IPV6_UNICAST ? 2 : 1);
      return;
    }
    const again: [number, PrefixKey, AttrSet][] = [];
    p.filters.rejected.forEach((r, b, k) => again.push([b, k, r.attrs]));
    p.filters.rejected.clear();
    this.rib.table.forEach((slot, b, k) => {
      const x = Array.isArray(slot) ? slot.find((q) => q.source === p.source) : slot.source === p.source ? slot : undefined;
      if (x && !x.stale) again.push([b, k, x.attrs]);
    });
    for (const [b, k, set] of again) {
      const afi = afiOfBucket(b);
      const res = p.filters.importResidual(set, afi);
      const out = res.rules.length ? p.filters.importDecide(res, set, b, k, this.importIface(p, set, afi)) : set;
      if (out === null) {
        p.filters.noteRejected(b, k, set, p.filters.lastRule!);
        if (this.rib.remove(b, k, p.source)) this.bestChanged(b, k);
      } else if (this.rib.upsert(b, k, this.pathFor(p, out))) this.bestChanged(b, k);
    }
  }

  /** The interface a learned route goes out of, when an import rule asks (undefined: not directly connected). */
  private importIface(p: Peer, set: AttrSet, afi: 1 | 2): string | undefined {
    if (this.connected.length === 0 || !p.filters.importNamesInterface(afi)) return undefined;
    const nh = tryParseIp(set.nextHop);
    if (!nh) return undefined;
    let best: { len: number; iface: string } | undefined;
    for (const c of this.connected) {
      if (c.family !== nh.family || (best && best.len >= c.len)) continue;
      const host = (1n << BigInt((c.family === 4 ? 32 : 128) - c.len)) - 1n;
      if ((nh.value & ~host) === c.network) best = c;
    }
    return best?.iface;
  }

  /**
   * The node's connected subnets (prefix → interface), for import rules that name an interface. When
   * they change, peers with such rules have their routes decided again (a route refresh, no reset).
   */
  setConnected(subnets: readonly { prefix: string; iface: string }[]): void {
    const key = subnets.map((x) => `${x.prefix}=${x.iface}`).join(',');
    if (key === this.connectedKey) return;
    this.connectedKey = key;
    this.connected = subnets.flatMap(({ prefix, iface }) => {
      const c = tryParseCidr(prefix);
      return c ? [{ family: c.family, network: c.network, len: c.prefixLen, iface }] : [];
    });
    for (const p of this.peersByAddr.values()) {
      if (p.state !== 'Established' || !(p.filters.importNamesInterface(1) || p.filters.importNamesInterface(2))) continue;
      p.lastImport.clear();
      this.reimport(p);
    }
  }

  private withdrawList(p: Peer, list: PrefixList): void {
    const rejected = p.filters.rejected;
    for (let i = 0; i < list.count; i++) {
      const b = bucketAt(list, i),
        k = keyAt(list, i);
      if (rejected.size > 0) rejected.delete(b, k);
      if (this.rib.remove(b, k, p.source)) this.bestChanged(b, k);
    }
  }

  /** A Path no prefix holds any more: drop it from its peer's table and release its attribute set. */
  private releasePath(path: Path): void {
    if (path.interned) {
      uninternPath(path);
      this.bySource.get(path.source)?.pathReleased();
    }
    this.attrTable.unref(path.attrs);
  }

  /**
   * Remove a peer's routes: all of its earlier sessions (staleAfis null) or only its stale ones of
   * the given families. The table walk is synchronous; the removals (each may emit events and
   * exports) run in slices so a 1M-route flush never starves keepalives. Paths of the peer's
   * current session are never touched (they are the new generation), so a flush may overlap a
   * re-established session safely.
   */
  private flushPeerRoutes(p: Peer, staleAfis: readonly (1 | 2)[] | null): void {
    const src = p.source;
    const onlyStale = staleAfis !== null;
    if (!onlyStale) newGeneration(p, this.attrTable);
    const doomed = onlyStale ? (x: Path) => x.stale : (x: Path) => !x.interned;
    if (src.routes === 0) {
      // Nothing of this peer's in the Loc-RIB (a route-reflector client that sends nothing): no walk of
      // the table — 50 clients leaving a reflector of 1M routes walked it 50 times.
      p.stalePaths = [];
      this.emit('flushed', { address: p.config.address, removed: 0 });
      return;
    }
    const keys = new PrefixKeyList(src.routes);
    this.rib.table.forEach((slot, b, k) => {
      if (onlyStale && !staleAfis.includes(afiOfBucket(b))) return;
      const x = Array.isArray(slot) ? slot.find((q) => q.source === src) : slot.source === src ? slot : undefined;
      if (x && doomed(x)) keys.push(b, k);
    });
    let i = 0;
    const slice = (): void => {
      const deadline = performance.now() + this.sliceMs;
      while (i < keys.count) {
        const b = keys.bucket(i),
          k = keys.key(i++);
        if (this.rib.remove(b, k, src, doomed)) this.bestChanged(b, k);
        if ((i & 255) === 0 && ((i & (FLUSH_SLICE_MAX - 1)) === 0 || performance.now() > deadline)) break;
      }
      if (i < keys.count) {
        setImmediate(slice);
        return;
      }
      p.stalePaths = p.stalePaths.filter((x) => x.refs > 0);
      this.emit('flushed', { address: p.config.address, removed: keys.count });
    };
    slice();
  }

  private sweepStale(p: Peer, afis: readonly (1 | 2)[]): void {
    const before = staleCount(p);
    if (before === 0) {
      p.stalePaths = [];
      return;
    }
    this.flushPeerRoutes(p, afis);
    const after = staleCount(p);
    this.log.info({ removed: before - after, afis }, 'stale routes removed (graceful restart)');
    if (after === 0) p.grTimer?.cancel();
    this.emit('stale-swept', { address: p.config.address, removed: before - after });
  }

  private onEndOfRib(p: Peer, afi: 1 | 2): void {
    p.eorReceived.add(afi);
    this.emit('end-of-rib', { address: p.config.address, afi });
    if (p.stalePaths.length > 0) this.sweepStale(p, [afi]);
    this.checkDeferral();
  }

  private checkMaxPrefix(p: Peer): void {
    const mp = p.config.maxPrefix;
    if (mp === undefined) return;
    const cfg: MaxPrefixConfig = typeof mp === 'number' ? { limit: mp } : mp;
    if (p.source.routes <= cfg.limit) return;
    if (cfg.action === 'warn') {
      if (!p.maxPrefixWarned) this.log.warn({ limit: cfg.limit, received: p.source.routes }, 'max-prefix limit exceeded');
      p.maxPrefixWarned = true;
      return;
    }
    // RFC 4486 §4: Cease 6/1, data = AFI (2), SAFI (1), the upper bound (4).
    const data = Buffer.alloc(7);
    data.writeUInt16BE(1, 0);
    data.writeUInt8(1, 2);
    data.writeUInt32BE(cfg.limit >>> 0, 3);
    this.log.warn({ limit: cfg.limit, received: p.source.routes }, 'max-prefix limit exceeded: closing the session');
    p.detach({ subcode: 1, data });
    p.endSession();
    this.busy.delete(p);
    this.flushPeerRoutes(p, null);
    this.setState(p, 'Idle', `Max prefix limit ${cfg.limit} exceeded`);
    if (cfg.restartAfter !== undefined && cfg.restartAfter >= 0) {
      p.restartTimer = this.clock.setTimer(cfg.restartAfter * 1000, () => {
        if (this.running && this.peersByAddr.get(p.config.address) === p) this.startSession(p);
      });
    }
  }

  // ---------------------------------------------------------------- best-path output

  private bestChanged(b: number, k: PrefixKey): void {
    if (this.deferral.hold(b, k)) return;
    this.announceChange(b, k);
  }

  private announceChange(b: number, k: PrefixKey): void {
    const best = this.rib.best(b, k);
    if (this.listenerCount('changes') > 0) {
      const nextHops = !best
        ? null
        : this.rib.opts.multipath
          ? this.rib.decision(b, k).multipath.map((x) => x.attrs.nextHop)
          : best.attrs.nextHops;
      this.changes.push(b, k, nextHops, best ? best.source.address : '', best?.attrs.attrs.priority);
    }
    if (best ? this.listenerCount('best') > 0 : this.listenerCount('withdrawn') > 0) {
      const prefix = formatPrefixKey(b, k);
      if (best) {
        const nextHops = this.rib.opts.multipath
          ? this.rib.decision(b, k).multipath.map((x) => x.attrs.nextHop)
          : (best.attrs.nextHops as string[]);
        this.emit('best', {
          prefix,
          nextHops,
          attrs: best.attrs.attrs,
          source: best.source.address,
          stale: best.stale,
        } satisfies BestRouteEvent);
      } else {
        this.emit('withdrawn', { prefix } satisfies WithdrawnRouteEvent);
      }
    }
    this.exporter.announce(b, k, best);
  }

  private onRouteRefresh(p: Peer, m: RouteRefreshMessage): void {
    if (p.state !== 'Established' || m.safi !== 1 || (m.afi !== 1 && m.afi !== 2)) return;
    if (m.subtype === 1 || m.subtype === 2) return this.onPeerRefreshMarker(p, m.subtype, m.afi as 1 | 2);
    if (m.subtype !== 0) return;
    if (!p.session) return;
    // Through the Adj-RIB-Out like any change: written by flush() as the socket allows; a request
    // while one is queued or being written coalesces into it (the same prefixes are queued once).
    const afi = m.afi as 1 | 2;
    if (p.group) this.exporter.evict(p, 'route refresh requested');
    p.adjOut.resendAll(afi);
    if (!p.refreshOut.has(afi)) p.refreshOut.set(afi, 'queued');
    this.exporter.scheduleFlush(p);
  }

  /**
   * RFC 7313 §4: the peer re-sends its Adj-RIB-Out between BoRR and EoRR. At BoRR its current paths
   * become stale (a new path generation); at EoRR the stale ones of that family that were not
   * re-announced are removed, and the rest (other families) are simply current again.
   */
  private onPeerRefreshMarker(p: Peer, subtype: 1 | 2, afi: 1 | 2): void {
    if (subtype === 1) {
      markStale(p, this.attrTable, true);
      p.refreshing.add(afi);
      return;
    }
    if (!p.refreshing.delete(afi)) return;
    this.sweepStale(p, [afi]);
    endRefresh(p);
  }

  /** Ask a peer to resend its routes (RFC 2918). */
  requestRefresh(address: string, afi: 1 | 2 = 1): boolean {
    const p = this.peersByAddr.get(address);
    if (!p?.session || p.state !== 'Established' || !p.negotiated?.routeRefresh) return false;
    p.session.send(encodeRouteRefresh({ afi, safi: 1, subtype: 0 }));
    return true;
  }

  // ---------------------------------------------------------------- restarting side (RFC 4724 §4.1)

  private checkDeferral(): void {
    if (!this.deferral.deferring || !this.running) return;
    if (!this.peerList.some((p) => awaitingEndOfRib(p, FAMILY_IPV4_UNICAST))) this.endDeferral('End-of-RIB from every peer');
  }

  private endDeferral(why: string): void {
    const held = this.deferral.heldCount;
    const d = this.deferral.end();
    if (!d) return;
    this.log.info({ why, changed: held }, 'graceful restart: best-path selection no longer deferred');
    d.forEach((_v, b, k) => this.announceChange(b, k));
    for (const p of this.peersByAddr.values()) if (p.state === 'Established' && !p.dumping && !p.dumpDone) this.exporter.startDump(p);
    this.emit('deferral-done', { why });
  }

  /** Is best-path output deferred (restarting, waiting for End-of-RIB)? */
  get deferringBestPath(): boolean {
    return this.deferral.deferring;
  }

  /** Send NOTIFICATION bytes helper for tests. */
  static notification(code: number, subcode: number, data: Buffer = Buffer.alloc(0)): Buffer {
    return encodeNotification({ code, subcode, data });
  }
}
