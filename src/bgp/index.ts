// Public surface of tabby's BGP speaker (src/bgp). The agent and the CLI import from here only.
//
//   const s = new BgpSpeaker({ asn: 64512, routerId: '10.0.0.1', listenPort: 179, sessions: tcpSessions(),
//                              gracefulRestart: { restartTime: 120 } });
//   s.on('best', (e: BestRouteEvent) => …install e.prefix via e.nextHops…);
//   s.on('withdrawn', (e: WithdrawnRouteEvent) => …remove e.prefix…);
//   s.on('changes', (c: BestChanges) => …the same, batched per turn: c.prefix(i), c.nextHop(i) (null = withdrawn)…);
//   s.on('peer', (e: PeerEvent) => …);                     // state changes
//   s.addPeer({ address: '10.0.0.2', asn: 64512, families: ['ipv4'], localAddress: '10.0.0.1' });
//   await s.start();
//   s.originate('192.168.10.0/26');                        // own IPAM block
//   s.peers();                                             // PeerStatus[] (for `tabbyctl node status`)
//   s.locRib().get('192.168.20.0/26');                     // best route, or undefined
//   await s.stop({ graceful: true });                      // restart: peers keep our routes (RFC 4724)
//
// Graceful restart: with `gracefulRestart: { restartTime }` the speaker advertises the capability and acts as a
// helper (a dropped peer's routes stay, marked stale, until its End-of-RIB). Pass `restarting: true` when this
// process restarts with its routes still in the kernel: 'best'/'withdrawn' events and exports are then held until
// every peer's End-of-RIB (or `deferralTime`), announced by a 'deferral-done' event.
// Every event and its payload: SpeakerEvents (speaker-types.ts); the transport's: PeerSessionEvents.
// Event payloads share frozen parts (attrs, nextHops): read them, do not mutate them.
//
// Modules: codec/ (wire format), fsm.ts + session.ts + transport.ts (sessions, sockets, MD5/GTSM),
// rib/ (decision process, interned attributes, Adj-RIB-In/Loc-RIB/Adj-RIB-Out, UPDATE packing),
// policy.ts (import/export attribute rules), reflector.ts (RFC 4456 who-gets-what),
// graceful-restart.ts (RFC 4724 + path generations), peer.ts (one peer's runtime), speaker.ts (all of it
// together), speaker-sessions.ts (TCP transport).
export type { BgpState } from './fsm.js';
export {
  BgpSpeaker,
  LocRibView,
  type BgpSpeakerOptions,
  type PeerConfig,
  type PeerStatus,
  type MaxPrefixConfig,
  type BestRouteEvent,
  type WithdrawnRouteEvent,
  type PeerEvent,
  type PeerSession,
  type SessionFactory,
  type SessionParams,
  type SessionDown,
  type SpeakerEvents,
  type PeerSessionEvents,
} from './speaker.js';
export { tcpSessions, type TcpSessionOptions } from './speaker-sessions.js';
export type { BestChanges } from './best-changes.js';
export type { GrOptions } from './graceful-restart.js';
export type { RouteAttributes } from './rib/attrs.js';
export { decide, comparePaths, DECISION_STEPS, type Decision, type DecisionReason, type DecisionOptions } from './rib/decision.js';
export { realClock, VirtualClock, type Clock } from './clock.js';
export { COMMUNITY_NO_EXPORT, COMMUNITY_NO_ADVERTISE, COMMUNITY_NO_EXPORT_SUBCONFED } from './policy.js';
