// The BgpSpeaker's public types: configuration, status, events (typed maps for the speaker and the
// per-peer session port), and the transport port (PeerSession/SessionFactory) the speaker codes
// against; speaker-sessions.ts adapts session.ts's TCP sessions to it.
import type { BgpState } from './fsm.js';
import type { EventEmitter } from 'node:events';
import type { Buffer } from 'node:buffer';
import type { Logger } from '../common/log.js';
import type { Clock } from './clock.js';
import type { RouteAttributes } from './rib/attrs.js';
import type { GrOptions } from './graceful-restart.js';
import type { BestChanges } from './best-changes.js';
import type { LargeCommunity, RouteRefreshMessage, UpdateMessage } from './codec/types.js';
import type { NamedFilter } from './filter/types.js';
import type { Negotiated } from './negotiate.js';

export interface MaxPrefixConfig {
  limit: number;
  /** 'warn': log once; 'shutdown' (default): Cease 6/1 with the limit in data (RFC 4486 §4). */
  action?: 'warn' | 'shutdown';
  /** After a shutdown, start the peer again after this many seconds (default: stay down). */
  restartAfter?: number;
}

export interface PeerConfig {
  address: string;
  asn: number;
  localAddress?: string;
  passive?: boolean;
  routeReflectorClient?: boolean;
  nextHopSelf?: boolean;
  keepOriginalNextHop?: boolean;
  password?: string;
  ttlSecurity?: number;
  maxPrefix?: number | MaxPrefixConfig;
  holdTime?: number;
  families: ('ipv4' | 'ipv6')[];
  description?: string;
  /** mesh | global | node | … (informational, shown in status). */
  type?: string;
  port?: number;
  /** Calico numAllowedLocalASNumbers: own AS may appear this many times in a received AS_PATH. */
  allowOwnAs?: number;
  /** Our IPv6 next hop for IPv6 routes on this session when it runs over IPv4. */
  localAddress6?: string;
  /** Graceful restart toward this peer (default: the speaker's setting). */
  gracefulRestart?: boolean;
  /** Restart time advertised to this peer, seconds (default: the speaker's restartTime). */
  restartTime?: number;
  /** BGPFilters in BGPPeer.filters order (changing them never resets the session). */
  filters?: NamedFilter[];
  /** Our AS on this session instead of the speaker's (BGPPeer localASNumber). */
  localAsn?: number;
}

/** How a prefix is originated (originate()). */
export interface OriginateOptions {
  nextHop?: string;
  /** RFC 1997 communities as 32-bit values. */
  communities?: number[];
  /** RFC 8092 large communities. */
  largeCommunities?: LargeCommunity[];
  localPref?: number;
  med?: number;
  /** The route's outgoing interface (what a BGPFilter `interface` rule matches). */
  interface?: string;
  /** An interface (device) route, Calico's `protocol direct`: sent only to peers whose export filter
   *  has a rule that accepts it (no filter, or the default Accept, keeps it home). */
  direct?: boolean;
}

export interface PeerStatus {
  address: string;
  asn: number;
  state: BgpState;
  since: Date;
  info: string;
  prefixesReceived: number;
  prefixesAccepted: number;
  type?: string;
  description?: string;
  /** Routes kept stale for a restarting peer (RFC 4724). */
  prefixesStale: number;
  prefixesAdvertised: number;
  routerId?: string;
  /** Received messages waiting to be processed, and the most ever waiting (bounded by inboundQueueMax). */
  inboundQueued: number;
  inboundPeak: number;
  /** Encoded bytes queued for the peer's socket (update groups), and the most ever queued. */
  outboundQueued: number;
  outboundPeak: number;
  /** The update group the peer shares its Adj-RIB-Out with (update-group.ts), if any. */
  updateGroup?: number;
}

export interface BestRouteEvent {
  prefix: string;
  /** Next hops of the best path (several with multipath). */
  nextHops: string[];
  attrs: Readonly<RouteAttributes>;
  /** The peer the best path came from ('' = originated here). */
  source: string;
  /** The best path is kept stale for a restarting peer. */
  stale: boolean;
}

export interface WithdrawnRouteEvent {
  prefix: string;
}

export interface PeerEvent {
  address: string;
  state: BgpState;
  previous: BgpState;
  info: string;
}

/** Events of BgpSpeaker (one name from the session up to the agent). */
export interface SpeakerEvents {
  best: [BestRouteEvent];
  withdrawn: [WithdrawnRouteEvent];
  /** The same changes batched per event-loop turn, prefixes in typed arrays (best-changes.ts). */
  changes: [BestChanges];
  /** A peer's state or info changed. */
  peer: [PeerEvent];
  'end-of-rib': [{ address: string; afi: 1 | 2 }];
  /** The initial dump to a peer is written (End-of-RIB sent). */
  'dump-done': [{ address: string }];
  'stale-swept': [{ address: string; removed: number }];
  /** We answered a peer's ROUTE-REFRESH. */
  'route-refresh': [{ address: string; afi: 1 | 2 }];
  /** A peer's routes were removed (session gone, no graceful restart). */
  flushed: [{ address: string; removed: number }];
  /** The inbound queues are drained. */
  idle: [];
  /** Restarting side (RFC 4724 §4.1): best-path output no longer deferred. */
  'deferral-done': [{ why: string }];
  /** Diagnostics (the agent's session history): a NOTIFICATION sent or received on a peer's session. */
  notification: [{ address: string } & NotificationSeen];
  /** Diagnostics: a TCP connect to the peer failed (errno name), or the peer closed before Established (ECLOSED). */
  'connect-error': [{ address: string } & ConnectErrorSeen];
}

export interface NotificationSeen {
  sent: boolean;
  code: number;
  subcode: number;
  data: Buffer;
}
export interface ConnectErrorSeen {
  code: string;
  message: string;
}

// ------------------------------------------------------------------ session port

export interface SessionDown {
  /** Human-readable reason ('Hold timer expired', 'Connection refused', …). */
  reason: string;
  /** A NOTIFICATION was sent or received (graceful restart does not apply, RFC 4724 §4). */
  notification?: boolean;
}

/** Events of a PeerSession. */
export interface PeerSessionEvents {
  state: [state: BgpState, info: string];
  established: [negotiated: Negotiated, localAddress: string];
  update: [UpdateMessage];
  'route-refresh': [RouteRefreshMessage];
  down: [SessionDown];
  /** The socket accepts writes again after send() returned false. */
  drain: [];
  notification: [NotificationSeen];
  'connect-error': [ConnectErrorSeen];
}

/** What the speaker needs from one peer's transport. */
export interface PeerSession extends EventEmitter<PeerSessionEvents> {
  start(): void;
  /** Close with a Cease NOTIFICATION (subcode, data) or silently; go Idle and stay there. */
  stop(cease?: { subcode: number; data?: Buffer }): void;
  /** Queue bytes of one or more whole encoded messages; false = buffer full, wait for 'drain'. */
  send(msg: Buffer): boolean;
  /** Back-pressure: stop (true) or resume (false) reading from the peer. */
  holdInput?(hold: boolean): void;
}

export interface SessionParams {
  peer: PeerConfig;
  localAsn: number;
  routerId: string;
  listenPort: number;
  gracefulRestart?: { restartTime: number; restarting: boolean; forwardingPreserved: boolean };
  clock: Clock;
  logger: Logger;
}

export interface SessionFactory {
  /** Start listening (the speaker calls this from start(), once per listen address). */
  listen?(address: string | undefined, port: number): Promise<void>;
  create(params: SessionParams): PeerSession;
  close?(): Promise<void>;
}

export interface BgpSpeakerOptions {
  asn: number;
  routerId: string;
  /** Address(es) to listen on; default '::' (every address, both families). */
  listenAddress?: string | readonly string[];
  listenPort?: number;
  /** Route reflector cluster ID (RFC 4456); peers with routeReflectorClient are its clients. */
  clusterId?: string;
  gracefulRestart?: GrOptions;
  clock?: Clock;
  logger?: Logger;
  /** ECMP: emit every equal-cost next hop. */
  multipath?: boolean;
  alwaysCompareMed?: boolean;
  /** The transport: tcpSessions() (speaker-sessions.ts) or a test's own. */
  sessions: SessionFactory;
  /** Max milliseconds of UPDATE processing per event-loop turn (default 15). */
  sliceMs?: number;
  /** Received messages queued per peer before its input is held (default 128; the rest waits undecoded in the
   *  session); resumed at a quarter. Small, so a decoded UPDATE is processed before it outlives young-generation GCs. */
  inboundQueueMax?: number;
  /** Update groups: a member's queued bytes that stop the group (default 1 MiB), that let it go on (256 KiB), how long a member may hold it back (3000 ms). */
  updateGroups?: { highWater?: number; lowWater?: number; evictMs?: number };
}
