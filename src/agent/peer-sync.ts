// PeerSync: hands the desired BGP peers (computed by peers.ts) to the speaker and to BFD, and holds back
// every peer a setting of which cannot be honoured — with the reason, which status shows as its info:
//   - a password whose secret cannot be read (never a session without TCP-MD5 when one is configured);
//   - reachableBy on an agent that programs no kernel routes (route-reflector mode, no dataplane);
//   - a failed BFD session (RFC 5882 §4.2), until BFD is Up again — as BIRD's error wait and FRR's
//     strict BFD keep it: reconnecting over a path BFD calls dead would bring its routes back and flap.
// Each peer's speaker configuration is kept as its JSON, so only a change reaches the speaker.
import type { Logger } from '../common/log.js';
import { resolveFilters, nextHopFlags } from './bgp-policy.js';
import type { BfdTimersJson } from './peer-resource.js';
import type { DesiredPeer } from './peers.js';
import type { BfdPort, BgpFilterRes, SpeakerPeerConfig, SpeakerPort } from './ports.js';
import { refText, type SecretKeyRef, type SecretStore } from './secrets.js';
import { msg } from './util.js';

type BfdStateEvent = Parameters<Parameters<BfdPort['on']>[1]>[0];

export interface PeerSyncDeps {
  logger: Logger;
  secrets: SecretStore;
  bfd?: BfdPort | undefined;
  /** A BFD session failed or came back: the peers need another pass. */
  onResync(): void;
  /** A peer is gone from the speaker for good: what is kept per peer elsewhere goes with it. */
  onRemoved(address: string): void;
}

export interface PeerSyncInput {
  /** The node's AS number (a peer's localASNumber equal to it is no override). */
  asn: number;
  /** The BGPFilters peers may name. */
  filters: readonly BgpFilterRes[];
  /** false: no kernel routes here (route-reflector mode or no dataplane), so reachableBy cannot be honoured. */
  programsRoutes: boolean;
}

export class PeerSync {
  /** The desired peers of the last pass, by address (held ones included). */
  desired = new Map<string, DesiredPeer>();
  /** Desired peers not handed to the speaker, with why. */
  private readonly held = new Map<string, string>();
  /** What the speaker was given per peer (JSON of its SpeakerPeerConfig). */
  private readonly configs = new Map<string, string>();
  /** Peers with a BFD session: address → its timers (JSON). */
  private readonly bfdPeers = new Map<string, string>();
  /** Peers whose BFD session failed (Up → Down, not AdminDown): no BGP session until BFD is Up again. */
  private readonly bfdFailed = new Set<string>();
  /** BFD asked for but not running (no BFD in this agent, or its socket could not be opened). */
  bfdProblem: string | undefined;
  /** Settings of the last pass that cannot be honoured (a missing BGPFilter, reachableBy without routes). */
  policyProblems: string[] = [];

  constructor(private readonly deps: PeerSyncDeps) {}

  /** Why a desired peer is not handed to the speaker, or undefined. */
  heldReason(address: string): string | undefined {
    return this.held.get(address);
  }

  /** A BFD session changed state. A failure (not the peer's AdminDown: its agent stopping, RFC 5880
   *  §6.8.16, where graceful restart applies) takes the BGP session down now, not at the hold timer. */
  onBfdState(e: BfdStateEvent, sp: SpeakerPort | undefined): void {
    if (e.state === 'Down' && e.previous === 'Up' && !e.remoteAdminDown && this.desired.get(e.peer)?.bfd) {
      this.deps.logger.warn({ peer: e.peer, diag: e.diag }, 'BFD session down: closing the BGP session and removing its routes');
      this.bfdFailed.add(e.peer);
      sp?.resetPeer?.(e.peer, `BFD session down (${e.diag})`);
      this.deps.onResync();
    } else if (e.state === 'Up' && this.bfdFailed.delete(e.peer)) {
      this.deps.logger.info({ peer: e.peer }, 'BFD session up again: connecting');
      this.deps.onResync();
    }
  }

  /** A new speaker has no peers yet. */
  speakerStarted(): void {
    this.configs.clear();
  }

  /** Take every peer out of the speaker (the node's address changed: they are computed again). */
  removeAll(sp: SpeakerPort | undefined): void {
    this.configs.clear();
    if (sp) for (const addr of this.desired.keys()) sp.removePeer(addr);
    this.desired.clear();
  }

  /** Make the speaker's peers and the BFD sessions those of `desired`. */
  sync(sp: SpeakerPort, desired: readonly DesiredPeer[], input: PeerSyncInput): void {
    const log = this.deps.logger;
    const next = new Map(desired.map((p) => [p.address, p]));
    this.desired = next; // before touching the speaker: its events may ask for the desired peers
    const refs: SecretKeyRef[] = [];
    for (const addr of [...this.held.keys()]) if (!next.has(addr)) this.held.delete(addr);
    for (const addr of [...this.bfdFailed]) if (!next.has(addr)) this.bfdFailed.delete(addr);
    for (const addr of [...this.configs.keys()]) {
      if (!next.has(addr)) {
        sp.removePeer(addr);
        this.configs.delete(addr);
        this.deps.onRemoved(addr);
        log.info({ peer: addr }, 'peer removed');
      }
    }
    const hold = (address: string, reason: string, level: 'warn' | 'error', fields: object = {}, text = reason): void => {
      if (this.held.get(address) !== reason) log[level]({ peer: address, ...fields }, text);
      this.held.set(address, reason);
      if (this.configs.delete(address)) sp.removePeer(address);
    };
    const policyProblems: string[] = [];
    for (const p of desired) {
      const nh = nextHopFlags(p.nextHopMode, p.keepOriginalNextHop);
      const pc: SpeakerPeerConfig = {
        address: p.address,
        asn: p.asn,
        passive: p.passive,
        routeReflectorClient: p.routeReflectorClient,
        keepOriginalNextHop: nh.keepOriginalNextHop,
        families: [p.family === 4 ? 'ipv4' : 'ipv6'],
        description: p.source,
        type: p.type,
      };
      if (nh.nextHopSelf) pc.nextHopSelf = true;
      if (p.localAsn !== undefined && p.localAsn !== input.asn) pc.localAsn = p.localAsn;
      if (p.filters?.length) {
        const r = resolveFilters(p.filters, input.filters);
        pc.filters = r.filters;
        for (const m of r.missing)
          policyProblems.push(
            `BGPPeer "${p.source}" names BGPFilter "${m}", which does not exist: every route to and from ${p.address} is rejected until it does`,
          );
      }
      if (p.reachableBy && !input.programsRoutes) {
        const reason = `BGPPeer "${p.source}" reachableBy ${p.reachableBy}: this tabby-node programs no kernel routes (route-reflector mode or no dataplane), so the route to ${p.address} cannot be added; not connecting`;
        hold(p.address, reason, 'error');
        policyProblems.push(reason);
        continue;
      }
      if (p.localAddress) pc.localAddress = p.localAddress;
      if (p.port !== undefined) pc.port = p.port;
      if (p.maxRestartTime !== undefined) pc.restartTime = p.maxRestartTime;
      if (p.password) {
        refs.push(p.password);
        const sec = this.deps.secrets.read(p.password);
        if (!sec.ok) {
          hold(p.address, sec.reason, 'error', { secret: refText(p.password) }, `${sec.reason}: not connecting to ${p.address}`);
          continue;
        }
        pc.password = sec.value;
      }
      if (!p.bfd) this.bfdFailed.delete(p.address);
      if (this.bfdFailed.has(p.address)) {
        hold(p.address, 'BFD session Down: not connecting until BFD is Up again', 'warn');
        continue;
      }
      this.held.delete(p.address);
      if (p.ttlSecurity) pc.ttlSecurity = p.ttlSecurity;
      if (p.allowOwnAs) pc.allowOwnAs = p.allowOwnAs;
      const key = JSON.stringify(pc);
      const prev = this.configs.get(p.address);
      if (prev === key) continue;
      if (prev === undefined) {
        sp.addPeer(pc);
        log.info({ peer: p.address, type: p.type, asn: p.asn, passive: p.passive, rrClient: p.routeReflectorClient }, 'peer added');
      } else {
        sp.updatePeer(pc);
        log.info({ peer: p.address }, 'peer updated');
      }
      this.configs.set(p.address, key);
    }
    this.deps.secrets.retain(refs);
    for (const pr of policyProblems) if (!this.policyProblems.includes(pr)) log.error(pr);
    this.policyProblems = policyProblems;
    this.syncBfd(desired);
  }

  /** One BFD session per peer that asks for it and is handed to the speaker. */
  private syncBfd(desired: readonly DesiredPeer[]): void {
    const want = new Map<string, string>();
    // A peer held for a failed BFD session keeps it: BFD Up is what lets it connect again.
    for (const p of desired)
      if (p.bfd && (this.configs.has(p.address) || this.bfdFailed.has(p.address))) want.set(p.address, JSON.stringify(p.bfd));
    const bfd = this.deps.bfd;
    if (!bfd) {
      this.bfdProblem = want.size ? `BFD configured for ${[...want.keys()].join(', ')} but not available in this agent` : undefined;
      return;
    }
    for (const addr of [...this.bfdPeers.keys()])
      if (!want.has(addr)) {
        bfd.remove(addr);
        this.bfdPeers.delete(addr);
      }
    for (const [addr, key] of want) {
      if (this.bfdPeers.get(addr) === key) continue;
      try {
        bfd.add({ peer: addr, timers: JSON.parse(key) as Partial<BfdTimersJson> });
        this.bfdPeers.set(addr, key);
        this.bfdProblem = undefined;
        this.deps.logger.info({ peer: addr, timers: key }, 'BFD session configured');
      } catch (e) {
        this.bfdProblem = `BFD cannot run: ${msg(e)}`;
        this.deps.logger.error({ peer: addr, err: msg(e) }, 'cannot start BFD');
      }
    }
  }
}
