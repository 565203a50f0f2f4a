// BFD session state machine, RFC 5880 asynchronous mode, as data: `step(session, event) → {next,
// actions}`. TRANSITIONS[state][event] reads against the diagram of §6.2 and the reception rules of
// §6.8.6; a (state, event) pair without a row leaves the state as it is. Timers are actions the shell
// (session.ts) runs on an injected clock, so tests step through time without sleeping.
// Timer rules: §6.8.3 (1 s DesiredMinTx while not Up; a change starts a Poll Sequence, P until F),
// §6.8.4 (Detection Time = remote DetectMult × max(our RequiredMinRx, remote DesiredMinTx)),
// §6.8.7 (transmit at max(our DesiredMinTx, remote RequiredMinRx), jittered 0–25 %, 10–25 % when
// DetectMult is 1; nothing periodic while the remote's RequiredMinRx is 0).
import type { BfdState, ControlPacket } from './packet.js';
import { DIAG } from './packet.js';

/** What a BFD session is configured with (milliseconds, as operators write them). */
export interface BfdTimers {
  /** Our Desired Min TX Interval once Up (default 300). */
  desiredMinTxMs: number;
  /** Our Required Min RX Interval (default 300). */
  requiredMinRxMs: number;
  /** Detect Multiplier (default 3). */
  detectMult: number;
}

export const DEFAULT_BFD_TIMERS: Readonly<BfdTimers> = { desiredMinTxMs: 300, requiredMinRxMs: 300, detectMult: 3 };
/** §6.8.3: at least one second between packets while the session is not Up. */
export const IDLE_TX_US = 1_000_000;

export interface BfdSession {
  readonly timers: BfdTimers;
  state: BfdState;
  remoteState: BfdState;
  localDiscr: number;
  remoteDiscr: number;
  localDiag: number;
  /** Microseconds, as on the wire. */
  desiredMinTxUs: number;
  remoteMinRxUs: number;
  remoteDesiredMinTxUs: number;
  remoteDetectMult: number;
  /** A Poll Sequence of ours is running (P set until a packet with F arrives). */
  polling: boolean;
}

export type BfdEvent = { type: 'rx'; packet: ControlPacket } | { type: 'detect-timeout' } | { type: 'admin-down' } | { type: 'admin-up' };

export type BfdAction =
  | { type: 'send'; final: boolean }
  /** (Re)start the detection timer; ms 0 = stop it. */
  | { type: 'detect-timer'; ms: number }
  /** The periodic transmit interval changed (before jitter); ms 0 = stop sending periodically. */
  | { type: 'tx-interval'; ms: number }
  | { type: 'up' }
  /** remoteAdmin: the peer said AdminDown — not a path failure (§6.8.16: clients must not act on it). */
  | { type: 'down'; diag: number; previous: BfdState; remoteAdmin: boolean };

type TableEvent = 'RecvAdminDown' | 'RecvDown' | 'RecvInit' | 'RecvUp' | 'Timeout' | 'AdminDown' | 'AdminUp';
interface Row {
  next: BfdState;
  diag?: number;
}

/** RFC 5880 §6.2 / §6.8.6. */
export const TRANSITIONS: Readonly<Record<BfdState, Partial<Record<TableEvent, Row>>>> = {
  AdminDown: {
    AdminUp: { next: 'Down', diag: DIAG.none },
  },
  Down: {
    RecvDown: { next: 'Init' },
    RecvInit: { next: 'Up' },
    AdminDown: { next: 'AdminDown', diag: DIAG.adminDown },
  },
  Init: {
    RecvAdminDown: { next: 'Down', diag: DIAG.neighborSignaledDown },
    RecvInit: { next: 'Up' },
    RecvUp: { next: 'Up' },
    Timeout: { next: 'Down', diag: DIAG.controlDetectionTimeExpired },
    AdminDown: { next: 'AdminDown', diag: DIAG.adminDown },
  },
  Up: {
    RecvAdminDown: { next: 'Down', diag: DIAG.neighborSignaledDown },
    RecvDown: { next: 'Down', diag: DIAG.neighborSignaledDown },
    Timeout: { next: 'Down', diag: DIAG.controlDetectionTimeExpired },
    AdminDown: { next: 'AdminDown', diag: DIAG.adminDown },
  },
};

export function newSession(localDiscr: number, timers: BfdTimers = DEFAULT_BFD_TIMERS): BfdSession {
  return {
    timers: { ...timers },
    state: 'Down',
    remoteState: 'Down',
    localDiscr,
    remoteDiscr: 0,
    localDiag: DIAG.none,
    desiredMinTxUs: IDLE_TX_US,
    remoteMinRxUs: 1,
    remoteDesiredMinTxUs: 0,
    remoteDetectMult: 0,
    polling: false,
  };
}

/** The Control packet the session sends now. */
export function packetOf(s: BfdSession, final = false): ControlPacket {
  return {
    diag: s.localDiag,
    state: s.state,
    poll: s.polling && !final,
    final,
    cpi: false,
    demand: false,
    detectMult: s.timers.detectMult,
    myDiscr: s.localDiscr,
    yourDiscr: s.remoteDiscr,
    desiredMinTx: s.desiredMinTxUs,
    requiredMinRx: s.timers.requiredMinRxMs * 1000,
    requiredMinEchoRx: 0,
  };
}

/** §6.8.7: periodic transmit interval (ms, before jitter); 0 = none (the remote asked for none). */
export function txIntervalMs(s: BfdSession): number {
  if (s.state === 'AdminDown') return IDLE_TX_US / 1000;
  if (s.remoteMinRxUs === 0) return 0;
  return Math.max(s.desiredMinTxUs, s.remoteMinRxUs) / 1000;
}

/** §6.8.4: how long without a packet before the session is declared down (ms); 0 = no remote yet. */
export function detectionTimeMs(s: BfdSession): number {
  if (s.remoteDetectMult === 0) return 0;
  return (s.remoteDetectMult * Math.max(s.timers.requiredMinRxMs * 1000, s.remoteDesiredMinTxUs)) / 1000;
}

/** §6.8.7 jitter: the interval reduced by 0–25 % (10–25 % with DetectMult 1); `r` uniform in [0, 1). */
export function jitterMs(ms: number, detectMult: number, r: number): number {
  const cut = detectMult === 1 ? 0.1 + 0.15 * r : 0.25 * r;
  return ms * (1 - cut);
}

function tableEvent(ev: BfdEvent): TableEvent {
  switch (ev.type) {
    case 'rx':
      return ev.packet.state === 'AdminDown'
        ? 'RecvAdminDown'
        : ev.packet.state === 'Down'
          ? 'RecvDown'
          : ev.packet.state === 'Init'
            ? 'RecvInit'
            : 'RecvUp';
    case 'detect-timeout':
      return 'Timeout';
    case 'admin-down':
      return 'AdminDown';
    case 'admin-up':
      return 'AdminUp';
  }
}

export function step(cur: BfdSession, ev: BfdEvent): { next: BfdSession; actions: BfdAction[] } {
  const s: BfdSession = { ...cur };
  const actions: BfdAction[] = [];
  const txBefore = txIntervalMs(cur);
  let finalNeeded = false;

  if (ev.type === 'rx') {
    if (s.state === 'AdminDown') return { next: cur, actions: [] }; // §6.8.6: discard
    const p = ev.packet;
    s.remoteDiscr = p.myDiscr;
    s.remoteState = p.state;
    s.remoteDesiredMinTxUs = p.desiredMinTx;
    s.remoteMinRxUs = p.requiredMinRx;
    s.remoteDetectMult = p.detectMult;
    if (p.final && s.polling) s.polling = false; // our Poll Sequence is over
    finalNeeded = p.poll; // §6.8.6: answer a Poll with a Final as soon as possible
  }
  if (ev.type === 'detect-timeout' && s.state === 'Down') {
    s.remoteDiscr = 0; // §6.8.1: forget the remote after a Detection Time without packets
  }

  const row = TRANSITIONS[s.state][tableEvent(ev)];
  const previous = s.state;
  if (row && row.next !== s.state) {
    s.state = row.next;
    if (row.diag !== undefined) s.localDiag = row.diag;
    // §6.8.3: 1 s while not Up; on Up the configured interval (a decrease applies at once), announced by a Poll.
    const want = s.state === 'Up' ? s.timers.desiredMinTxMs * 1000 : Math.max(IDLE_TX_US, s.timers.desiredMinTxMs * 1000);
    if (want !== s.desiredMinTxUs) {
      s.desiredMinTxUs = want;
      s.polling = s.state === 'Up';
    }
    if (s.state === 'Up') {
      s.localDiag = DIAG.none;
      actions.push({ type: 'up' });
    } else if (previous === 'Up' || previous === 'Init') {
      actions.push({ type: 'down', diag: s.localDiag, previous, remoteAdmin: ev.type === 'rx' && ev.packet.state === 'AdminDown' });
    }
    if (s.state === 'Down' || s.state === 'AdminDown') s.polling = false;
    actions.push({ type: 'send', final: finalNeeded });
    finalNeeded = false;
  }
  if (finalNeeded) actions.push({ type: 'send', final: true });

  // Detection timer: restarted by every accepted packet, stopped when there is no remote to watch.
  if (ev.type === 'rx') actions.push({ type: 'detect-timer', ms: detectionTimeMs(s) });
  else if (ev.type === 'detect-timeout' || s.state === 'AdminDown') actions.push({ type: 'detect-timer', ms: 0 });
  const txAfter = txIntervalMs(s);
  if (txAfter !== txBefore) actions.push({ type: 'tx-interval', ms: txAfter });
  return { next: s, actions };
}
