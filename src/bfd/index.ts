// Public surface of tabby's BFD (Bidirectional Forwarding Detection): RFC 5880 asynchronous mode,
// RFC 5881 single hop over UDP 3784 with TTL 255 checked on receive; RFC 5882 use by BGP is the
// agent's (a session Down closes that BGP session at once). Files: packet.ts (Control packet codec,
// §6.8.6 checks), fsm.ts (the state table and timer rules, pure), service.ts (sessions over a
// transport on an injected clock), udp.ts (the sockets, made by the native addon).
export {
  BfdService,
  type BfdTransport,
  type BfdPeerOptions,
  type BfdSessionStatus,
  type BfdStateEvent,
  type BfdServiceEvents,
  type BfdClock,
} from './service.js';
export { udpTransport, BFD_CONTROL_PORT, type UdpTransportOptions } from './udp.js';
export { DEFAULT_BFD_TIMERS, type BfdTimers } from './fsm.js';
export type { BfdState } from './packet.js';
