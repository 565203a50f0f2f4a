// BGP finite state machine, RFC 4271 §8, as data: `step(fsm, event) → {next, actions}`.
// The table TRANSITIONS[state][event] reads against §8.2.2; a (state, event) pair without a row
// is an FSM error (NOTIFICATION 5/x per RFC 6608 when a BGP connection exists, else back to Idle).
// Actions are values (send, timer, connect, close, established, down, deliver); the session
// (session.ts) performs them. One FSM runs per TCP connection; the session owns the per-peer state
// (config, restart scheduling) and the collision detection of §6.8 between two connections.
// Deviation (as BIRD does): a failed TCP connect in Connect/Active goes to Active and retries
// after ConnectRetryTimer instead of Idle.
import type { Buffer } from 'node:buffer';
import type { NotificationMessage, OpenMessage, RouteRefreshMessage, UpdateMessage } from './codec/types.js';
import { BgpMessageError } from './codec/types.js';
import { negotiate, type LocalOpenConfig, type Negotiated } from './negotiate.js';

export type BgpState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';
export const STATES: readonly BgpState[] = ['Idle', 'Connect', 'Active', 'OpenSent', 'OpenConfirm', 'Established'];

/** RFC 4271 §8.1 events (administrative, timer, TCP, message) that tabby uses. */
export type FsmEvent =
  | { type: 'ManualStart' } // 1 (ManualStart_with_PassiveTcpEstablishment when config.passive)
  | { type: 'ManualStop'; subcode?: number; data?: Buffer; silent?: boolean } // 2 (Cease subcode, default 2 admin shutdown; data e.g. 6/1 limit; silent: no NOTIFICATION, for graceful restart)
  | { type: 'AutomaticStart' } // 3 / 5
  | { type: 'ConnectRetryTimerExpires' } // 9
  | { type: 'HoldTimerExpires' } // 10
  | { type: 'KeepaliveTimerExpires' } // 11
  | { type: 'TcpCrAcked' } // 16: our outgoing connection is up
  | { type: 'TcpConnectionConfirmed' } // 17: an incoming connection was accepted
  | { type: 'TcpConnectionFails'; reason: string } // 18
  | { type: 'BGPOpen'; open: OpenMessage } // 19
  | { type: 'BGPHeaderErr'; error: BgpMessageError } // 21
  | { type: 'BGPOpenMsgErr'; error: BgpMessageError } // 22
  | { type: 'OpenCollisionDump' } // 23
  | { type: 'NotifMsgVerErr'; msg: NotificationMessage } // 24
  | { type: 'NotifMsg'; msg: NotificationMessage } // 25
  | { type: 'KeepAliveMsg' } // 26
  | { type: 'UpdateMsg'; msg: UpdateMessage } // 27
  | { type: 'UpdateMsgErr'; error: BgpMessageError } // 28
  | { type: 'RouteRefreshMsg'; msg: RouteRefreshMessage }; // RFC 2918 (Established only)

export type EventType = FsmEvent['type'];
export type TimerName = 'connectRetry' | 'hold' | 'keepalive';

export type Action =
  | { type: 'connect' } // initiate the outgoing TCP connection
  | { type: 'close' } // drop this TCP connection
  | { type: 'send-open' }
  | { type: 'send-keepalive' }
  | { type: 'send-notification'; code: number; subcode: number; data: Buffer }
  /** Start (seconds > 0) or stop (seconds 0) a timer; `jitter`: apply RFC 4271 §10 jitter. */
  | { type: 'timer'; timer: TimerName; seconds: number; jitter: boolean }
  | { type: 'collision-check'; negotiated: Negotiated } // session: §6.8 before going on
  | { type: 'established'; negotiated: Negotiated }
  | { type: 'down'; reason: string; error?: { code: number; subcode: number; sent: boolean } }
  | { type: 'deliver-update'; msg: UpdateMessage }
  | { type: 'deliver-route-refresh'; msg: RouteRefreshMessage };

export interface FsmConfig extends LocalOpenConfig {
  passive: boolean;
  connectRetryTime: number; // seconds (RFC 4271 suggests 120; tabby/Calico use ~5)
  /** Hold time while waiting for the OPEN (RFC 4271 §8.2.2 suggests 4 minutes). */
  largeHoldTime?: number;
}

export interface Fsm {
  readonly state: BgpState;
  readonly config: FsmConfig;
  connectRetryCounter: number;
  negotiated?: Negotiated;
}

export interface Step {
  next: Fsm;
  actions: Action[];
}

export function newFsm(config: FsmConfig): Fsm {
  return { state: 'Idle', config, connectRetryCounter: 0 };
}

const stop = (timer: TimerName): Action => ({ type: 'timer', timer, seconds: 0, jitter: false });
const notify = (code: number, subcode: number, data: Buffer = Buffer0()): Action => ({ type: 'send-notification', code, subcode, data });
function Buffer0(): Buffer {
  return globalThis.Buffer.alloc(0);
}
const stopAll: Action[] = [stop('connectRetry'), stop('hold'), stop('keepalive')];

type Row = (f: Fsm, e: any) => Step; // eslint-disable-line @typescript-eslint/no-explicit-any

const go = (f: Fsm, state: BgpState, actions: Action[], patch: Partial<Fsm> = {}): Step => ({ next: { ...f, ...patch, state }, actions });

/** To Idle after an error: drop the connection, count it (RFC 4271 §8.2.2 "ConnectRetryCounter += 1"). */
function toIdle(f: Fsm, reason: string, pre: Action[] = [], error?: { code: number; subcode: number; sent: boolean }): Step {
  const down: Action = error ? { type: 'down', reason, error } : { type: 'down', reason };
  const { negotiated: _n, ...rest } = f;
  return go(rest, 'Idle', [...pre, ...stopAll, { type: 'close' }, down], { connectRetryCounter: f.connectRetryCounter + 1 });
}

function fsmError(f: Fsm, what: string): Step {
  // RFC 6608 subcodes: 1 OpenSent, 2 OpenConfirm, 3 Established.
  const sub = f.state === 'OpenSent' ? 1 : f.state === 'OpenConfirm' ? 2 : f.state === 'Established' ? 3 : 0;
  if (f.state === 'Connect' || f.state === 'Active') return toIdle(f, `FSM error: ${what} in ${f.state}`);
  return toIdle(f, `FSM error: ${what} in ${f.state}`, [notify(5, sub)], { code: 5, subcode: sub, sent: true });
}

function start(f: Fsm): Step {
  const cr: Action = { type: 'timer', timer: 'connectRetry', seconds: f.config.connectRetryTime, jitter: true };
  if (f.config.passive) return go(f, 'Active', [cr]);
  return go(f, 'Connect', [cr, { type: 'connect' }]);
}

function connected(f: Fsm): Step {
  // §8.2.2 Connect/Active + Tcp_CR_Acked/TcpConnectionConfirmed: send OPEN, hold timer to a large value.
  return go(f, 'OpenSent', [
    stop('connectRetry'),
    { type: 'send-open' },
    { type: 'timer', timer: 'hold', seconds: f.config.largeHoldTime ?? 240, jitter: false },
  ]);
}

function connectFailed(f: Fsm, e: { reason: string }): Step {
  return go(f, 'Active', [
    { type: 'close' },
    { type: 'timer', timer: 'connectRetry', seconds: f.config.connectRetryTime, jitter: true },
    { type: 'down', reason: e.reason },
  ]);
}

function manualStop(f: Fsm, e: { subcode?: number; data?: Buffer; silent?: boolean }): Step {
  const sub = e.subcode ?? 2;
  const pre =
    !e.silent && (f.state === 'OpenSent' || f.state === 'OpenConfirm' || f.state === 'Established') ? [notify(6, sub, e.data)] : [];
  const { negotiated: _n, ...rest } = f;
  return go(
    rest,
    'Idle',
    [
      ...pre,
      ...stopAll,
      { type: 'close' },
      { type: 'down', reason: 'Administrative stop', ...(pre.length ? { error: { code: 6, subcode: sub, sent: true } } : {}) },
    ],
    { connectRetryCounter: 0 },
  );
}

const holdExpired: Row = (f) => toIdle(f, 'Hold timer expired', [notify(4, 0)], { code: 4, subcode: 0, sent: true });
const sendError: Row = (f, e: { error: BgpMessageError }) =>
  toIdle(f, e.error.message, [notify(e.error.code, e.error.subcode, e.error.data)], {
    code: e.error.code,
    subcode: e.error.subcode,
    sent: true,
  });
const notifRecv: Row = (f, e: { msg: NotificationMessage }) =>
  toIdle(f, `Received: ${e.msg.code}/${e.msg.subcode}`, [], { code: e.msg.code, subcode: e.msg.subcode, sent: false });
const collisionDump: Row = (f) => toIdle(f, 'Connection collision', [notify(6, 7)], { code: 6, subcode: 7, sent: true });
const tcpFailsLate: Row = (f, e: { reason: string }) => toIdle(f, e.reason);
const keepaliveTimer: Row = (f) =>
  go(f, f.state, [
    { type: 'send-keepalive' },
    { type: 'timer', timer: 'keepalive', seconds: f.negotiated?.keepaliveTime ?? 0, jitter: true },
  ]);
const restartHold = (f: Fsm): Action => ({ type: 'timer', timer: 'hold', seconds: f.negotiated?.holdTime ?? 0, jitter: false });

function openReceived(f: Fsm, e: { open: OpenMessage }): Step {
  let n: Negotiated;
  try {
    n = negotiate(f.config, e.open);
  } catch (err) {
    if (err instanceof BgpMessageError) return sendError(f, { error: err });
    throw err;
  }
  // §8.2.2 OpenSent + BGPOpen: stop ConnectRetry, send KEEPALIVE, set timers (hold 0 = none), → OpenConfirm.
  // The collision check (§6.8) runs first; the session may answer with OpenCollisionDump.
  return go(
    f,
    'OpenConfirm',
    [
      { type: 'collision-check', negotiated: n },
      stop('connectRetry'),
      { type: 'send-keepalive' },
      { type: 'timer', timer: 'keepalive', seconds: n.keepaliveTime, jitter: true },
      { type: 'timer', timer: 'hold', seconds: n.holdTime, jitter: false },
    ],
    { negotiated: n },
  );
}

/** The transition table: TRANSITIONS[state][event]. Missing entries: Idle ignores; others are FSM errors. */
export const TRANSITIONS: Readonly<Record<BgpState, Partial<Record<EventType, Row>>>> = {
  Idle: {
    ManualStart: (f) => start({ ...f, connectRetryCounter: 0 }),
    AutomaticStart: start,
    ManualStop: (f) => go(f, 'Idle', []),
  },
  Connect: {
    ManualStop: manualStop,
    ConnectRetryTimerExpires: (f) =>
      go(f, 'Connect', [
        { type: 'close' },
        { type: 'timer', timer: 'connectRetry', seconds: f.config.connectRetryTime, jitter: true },
        { type: 'connect' },
      ]),
    TcpCrAcked: connected,
    TcpConnectionConfirmed: connected,
    TcpConnectionFails: connectFailed,
  },
  Active: {
    ManualStop: manualStop,
    ConnectRetryTimerExpires: (f) =>
      f.config.passive
        ? go(f, 'Active', [{ type: 'timer', timer: 'connectRetry', seconds: f.config.connectRetryTime, jitter: true }])
        : go(f, 'Connect', [
            { type: 'timer', timer: 'connectRetry', seconds: f.config.connectRetryTime, jitter: true },
            { type: 'connect' },
          ]),
    TcpCrAcked: connected,
    TcpConnectionConfirmed: connected,
    TcpConnectionFails: connectFailed,
  },
  OpenSent: {
    ManualStop: manualStop,
    HoldTimerExpires: holdExpired,
    TcpConnectionFails: (f, e: { reason: string }) =>
      go(f, 'Active', [
        stop('hold'),
        { type: 'close' },
        { type: 'timer', timer: 'connectRetry', seconds: f.config.connectRetryTime, jitter: true },
        { type: 'down', reason: e.reason },
      ]),
    BGPOpen: openReceived,
    BGPHeaderErr: sendError,
    BGPOpenMsgErr: sendError,
    OpenCollisionDump: collisionDump,
    // §8.2.2: a version-error NOTIFICATION in OpenSent does not count as an error (no counter increment).
    NotifMsgVerErr: (f, e: { msg: NotificationMessage }) => {
      const r = notifRecv(f, e);
      return { ...r, next: { ...r.next, connectRetryCounter: f.connectRetryCounter } };
    },
    NotifMsg: notifRecv,
  },
  OpenConfirm: {
    ManualStop: manualStop,
    HoldTimerExpires: holdExpired,
    KeepaliveTimerExpires: keepaliveTimer,
    TcpConnectionFails: tcpFailsLate,
    NotifMsgVerErr: notifRecv,
    NotifMsg: notifRecv,
    BGPHeaderErr: sendError,
    BGPOpenMsgErr: sendError,
    OpenCollisionDump: collisionDump,
    KeepAliveMsg: (f) => go(f, 'Established', [restartHold(f), { type: 'established', negotiated: f.negotiated as Negotiated }]),
  },
  Established: {
    ManualStop: manualStop,
    HoldTimerExpires: holdExpired,
    KeepaliveTimerExpires: keepaliveTimer,
    TcpConnectionFails: tcpFailsLate,
    NotifMsgVerErr: notifRecv,
    NotifMsg: notifRecv,
    BGPHeaderErr: sendError,
    OpenCollisionDump: collisionDump,
    KeepAliveMsg: (f) => go(f, 'Established', [restartHold(f)]),
    UpdateMsg: (f, e: { msg: UpdateMessage }) => go(f, 'Established', [restartHold(f), { type: 'deliver-update', msg: e.msg }]),
    RouteRefreshMsg: (f, e: { msg: RouteRefreshMessage }) =>
      go(f, 'Established', [restartHold(f), { type: 'deliver-route-refresh', msg: e.msg }]),
    UpdateMsgErr: sendError,
  },
};

/** One FSM step. Pure: no I/O, no clock. */
export function step(f: Fsm, e: FsmEvent): Step {
  const row = TRANSITIONS[f.state][e.type];
  if (row) return row(f, e);
  if (f.state === 'Idle') return { next: f, actions: [] }; // §8.2.2: other events in Idle are ignored
  return fsmError(f, e.type);
}
