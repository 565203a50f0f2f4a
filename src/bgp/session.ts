// One BGP peer: TCP connection(s) + the RFC 4271 FSM (fsm.ts) + connection collision detection
// (RFC 4271 §6.8) + timers from an injected Clock + framing/decoding + an outgoing queue with
// back-pressure. `BgpListener` accepts connections for the configured peers only (others are
// closed and logged before any OPEN) and hands them to their BgpSession (listener.ts, re-exported here).
//
// Events: typed by SessionEvents below ('established' has the name the speaker's port uses).
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type { Logger } from '../common/log.js';
import { log } from '../common/log.js';
import { realClock, jitter, type Clock, type TimerHandle } from './clock.js';
import { Framer } from './codec/framer.js';
import { decodeMessage, encodeKeepalive, encodeMessage, encodeNotification, encodeUpdate, maxMessageLen } from './codec/message.js';
import { notificationText } from './codec/registry.js';
import type { BgpMessage, CapabilityKind, CodecCaps, RouteRefreshMessage, UpdateMessage } from './codec/types.js';
import { BgpMessageError, DEFAULT_CAPS, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN } from './codec/types.js';
import { newFsm, step, type Action, type Fsm, type FsmConfig, type FsmEvent, type BgpState, type TimerName } from './fsm.js';
import { buildOpen, type FamilyName, type Negotiated } from './negotiate.js';
import { dialTcp, fdOf, normalizeAddress, setTtlSecurity, TransportError } from './transport.js';
import type { NotificationSeen, ConnectErrorSeen } from './speaker-types.js';
export { BgpListener, type ListenerConfig } from './listener.js';
import { parseIp, parseIpv4Number } from '../common/ip.js';

export interface SessionConfig {
  /** Peer address (IPv4 or IPv6). */
  address: string;
  /** Peer TCP port (179). */
  port?: number;
  /** Source address for dialing. */
  localAddress?: string;
  localAsn: number;
  peerAsn: number;
  routerId: string;
  /** Proposed hold time, seconds (default 90; 0 = none; 1–2 invalid). */
  holdTime?: number;
  /** ConnectRetry, seconds (default 5, as Calico's BIRD). */
  connectRetryTime?: number;
  /** Wait after an error before AutomaticStart, seconds (default 5); doubles per consecutive error. */
  idleHoldTime?: number;
  /** Upper bound of that wait (default 30, as Calico's BIRD `error wait time 5,30`). */
  idleHoldMaxTime?: number;
  passive?: boolean;
  families?: FamilyName[];
  password?: string;
  ttlSecurity?: number;
  addPathReceive?: FamilyName[];
  addPathSend?: FamilyName[];
  extendedMessage?: boolean;
  gracefulRestart?: { restartTime: number; restarting?: boolean; forwardingPreserved?: boolean };
  hostname?: string;
  /** Capabilities the peer must advertise, else NOTIFICATION 2/7. */
  requireCapabilities?: CapabilityKind[];
  /** Network namespace path to create sockets in. */
  netns?: string;
  /** Inbound processing budget per turn of the event loop, ms (default 10): keeps timers running during a big dump. */
  inboundSliceMs?: number;
}

export interface SessionStatus {
  address: string;
  asn: number;
  state: BgpState;
  since: Date;
  /** 'Established', or the state and last error as BIRD shows it ('Active Socket: Connection refused'). */
  info: string;
  lastError?: string;
  negotiated?: Negotiated;
}

export interface DownEvent {
  reason: string;
  error?: { code: number; subcode: number; sent: boolean };
}

/** Events of BgpSession. 'down' comes only after Established. */
export interface SessionEvents {
  state: [state: BgpState, prev: BgpState];
  established: [negotiated: Negotiated, localAddress: string];
  down: [DownEvent];
  update: [UpdateMessage];
  'route-refresh': [RouteRefreshMessage];
  drain: [];
  collision: [{ kept: Dir; localRouterId: string; peerRouterId: string }];
  /** Diagnostics: a NOTIFICATION sent or received. */
  notification: [NotificationSeen];
  /** Diagnostics: a TCP connect failed (errno name), or the peer closed before Established (ECLOSED). */
  'connect-error': [ConnectErrorSeen];
}

type Dir = 'out' | 'in';

/** One TCP connection and its FSM (two exist during a collision). */
class Connection {
  socket?: net.Socket;
  readonly timers = new Map<TimerName, TimerHandle>();
  /**
   * Frames up to 65535 bytes when we offer extended messages (RFC 8654), so a big UPDATE in the
   * same TCP chunk as the peer's KEEPALIVE is framed; decodeMessage enforces 4096 until negotiated.
   */
  framer = new Framer();
  caps: CodecCaps = DEFAULT_CAPS;
  dialing = false;
  dead = false;
  holdMs = 0;
  holdDeadline = 0;
  inbox: Buffer[] = [];
  inboxAt = 0;
  scheduled = false;
  constructor(
    public fsm: Fsm,
    public dir: Dir,
  ) {
    this.newStream();
  }

  /**
   * A new TCP connection is a new byte stream: OpenSent + TCP failure → Active keeps this object
   * for the next connection, and half a message left from the old socket must not prefix it.
   */
  newStream(): void {
    this.framer = new Framer();
    if (this.fsm.config.extendedMessage) this.framer.maxLength = MAX_EXTENDED_MESSAGE_LEN;
    this.caps = DEFAULT_CAPS;
    this.inbox = [];
    this.inboxAt = 0;
  }
}

const STATE_ORDER: Record<BgpState, number> = { Idle: 0, Connect: 1, Active: 1, OpenSent: 2, OpenConfirm: 3, Established: 4 };

export class BgpSession extends EventEmitter<SessionEvents> {
  readonly address: string;
  private readonly cfg: FsmConfig;
  private main: Connection;
  private other: Connection | undefined;
  private stopped = true;
  private idleTimer: TimerHandle | undefined;
  private since: number;
  private lastError: string | undefined;
  private readonly logger: Logger;
  /** The consumer asked us to stop reading (its queue is full): the socket stays paused until released. */
  private inputHeld = false;

  constructor(
    readonly config: SessionConfig,
    private readonly clock: Clock = realClock,
    logger?: Logger,
  ) {
    super();
    this.address = normalizeAddress(config.address);
    this.logger = logger ?? log('bgp', { peer: this.address });
    this.cfg = {
      localAsn: config.localAsn,
      routerId: config.routerId,
      peerAsn: config.peerAsn,
      holdTime: config.holdTime ?? 90,
      families: config.families ?? [parseIp(this.address).family === 4 ? 'ipv4' : 'ipv6'],
      passive: config.passive ?? false,
      connectRetryTime: config.connectRetryTime ?? 5,
      ...(config.addPathReceive ? { addPathReceive: config.addPathReceive } : {}),
      ...(config.addPathSend ? { addPathSend: config.addPathSend } : {}),
      ...(config.extendedMessage ? { extendedMessage: true } : {}),
      ...(config.gracefulRestart ? { gracefulRestart: config.gracefulRestart } : {}),
      ...(config.hostname ? { hostname: config.hostname } : {}),
      ...(config.requireCapabilities ? { requireCapabilities: config.requireCapabilities } : {}),
    };
    if (this.cfg.holdTime === 1 || this.cfg.holdTime === 2) throw new RangeError('hold time must be 0 or ≥ 3 seconds');
    this.main = new Connection(newFsm(this.cfg), 'out');
    this.since = clock.now();
  }

  // ------------------------------------------------------------ public API

  get state(): BgpState {
    return this.main.fsm.state;
  }
  get established(): boolean {
    return this.main.fsm.state === 'Established';
  }
  /** The Established connection's socket is still open (it can be destroyed before its 'close' event reaches the FSM). */
  get connected(): boolean {
    const s = this.main.socket;
    return !!s && !s.destroyed;
  }
  /** Negotiated capabilities/timers of the Established session. */
  get negotiated(): Negotiated | undefined {
    return this.established ? this.main.fsm.negotiated : undefined;
  }
  /** Codec context of the Established session (DEFAULT_CAPS otherwise). */
  get caps(): CodecCaps {
    return this.main.caps;
  }
  /** Largest message the peer accepts (4096, or 65535 with extended messages). */
  get maxMessageLength(): number {
    return this.established && this.main.caps.extendedMessage ? MAX_EXTENDED_MESSAGE_LEN : MAX_MESSAGE_LEN;
  }

  status(): SessionStatus {
    const state = this.state;
    const s: SessionStatus = {
      address: this.address,
      asn: this.config.peerAsn,
      state,
      since: new Date(this.since),
      info: state === 'Established' ? 'Established' : this.lastError ? `${state} ${this.lastError}` : state,
    };
    if (this.lastError) s.lastError = this.lastError;
    const n = this.negotiated;
    if (n) s.negotiated = n;
    return s;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.dispatch(this.main, { type: 'ManualStart' });
  }

  /** Our address on the Established (or current) connection, '' when none. */
  get localAddress(): string {
    return normalizeAddress(this.main.socket?.localAddress);
  }

  /** Queue any encoded message on the Established session (false = buffer full, wait for 'drain'). */
  send(buf: Buffer): boolean {
    return this.sendUpdate(buf);
  }

  /** Administrative stop: Cease (6/2 by default, RFC 4486) and no automatic restart until start(). */
  stop(subcode = 2, data?: Buffer): void {
    this.stopped = true;
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    const ev: FsmEvent = data ? { type: 'ManualStop', subcode, data } : { type: 'ManualStop', subcode };
    if (this.other) this.dispatch(this.other, ev);
    this.dispatch(this.main, ev);
  }

  /**
   * Stop without a NOTIFICATION: just close the TCP connection(s) (a graceful-restart stop,
   * RFC 4724 §4: the peer keeps our routes as stale). No automatic restart until start().
   */
  close(): void {
    this.stopped = true;
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    if (this.other) this.dispatch(this.other, { type: 'ManualStop', silent: true });
    this.dispatch(this.main, { type: 'ManualStop', silent: true });
  }

  /** Send Cease with a subcode and restart after idle hold (e.g. 6/4 admin reset, 6/6 config change). */
  reset(subcode = 4): void {
    const c = this.main;
    if (c.fsm.state === 'Idle') return;
    this.dispatch(c, { type: 'ManualStop', subcode });
    if (!this.stopped) this.scheduleRestart();
  }

  /**
   * Queue an UPDATE (typed or already encoded with `this.caps`). Returns false when the socket's
   * buffer is full: wait for 'drain' (or use sendUpdates). Throws when not Established.
   */
  sendUpdate(m: UpdateMessage | Buffer): boolean {
    const c = this.main;
    if (c.fsm.state !== 'Established' || !c.socket || c.socket.destroyed) throw new Error(`session ${this.address} is not Established`);
    const buf = Buffer.isBuffer(m) ? m : encodeUpdate(m, c.caps);
    // RFC 8654: never send more than the peer accepts (it would answer 1/2 and reset).
    if (buf.length > this.maxMessageLength)
      throw new RangeError(`message of ${buf.length} bytes exceeds ${this.maxMessageLength} for ${this.address}`);
    return c.socket.write(buf);
  }

  /**
   * Queue bytes holding one or more whole encoded messages, each within the negotiated maximum
   * (the caller packed them: a speaker writes a round of UPDATEs in one write). false = buffer full.
   */
  sendFrames(buf: Buffer): boolean {
    const c = this.main;
    if (c.fsm.state !== 'Established' || !c.socket || c.socket.destroyed) throw new Error(`session ${this.address} is not Established`);
    return c.socket.write(buf);
  }

  /** Write many UPDATEs, awaiting 'drain' whenever the socket buffer is full. Resolves false if the session went down. */
  async sendUpdates(msgs: Iterable<UpdateMessage | Buffer>): Promise<boolean> {
    for (const m of msgs) {
      if (!this.established) return false;
      if (!this.sendUpdate(m)) {
        const ok = await this.waitDrain();
        if (!ok) return false;
      }
    }
    return this.established;
  }

  /** Send a ROUTE-REFRESH (RFC 2918; subtype per RFC 7313). */
  sendRouteRefresh(afi: number, safi: number, subtype = 0): void {
    this.sendRaw({ type: 'route-refresh', afi, safi, subtype });
  }

  /** Resolves true on 'drain', false when the session leaves Established first. */
  waitDrain(): Promise<boolean> {
    const s = this.main.socket;
    if (!s || !this.established) return Promise.resolve(false);
    if (!s.writableNeedDrain) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (v: boolean): void => {
        s.off('drain', onDrain);
        s.off('close', onClose);
        resolve(v);
      };
      const onDrain = (): void => done(true);
      const onClose = (): void => done(false);
      s.on('drain', onDrain);
      s.on('close', onClose);
    });
  }

  /** Accept an incoming connection for this peer (called by BgpListener). */
  acceptIncoming(socket: net.Socket): void {
    const reject = (why: string): void => {
      this.logger.info({ remote: socket.remoteAddress, why }, 'incoming connection rejected');
      socket.destroy();
    };
    if (this.stopped) return reject('peer administratively stopped');
    if (this.config.ttlSecurity) {
      const fd = fdOf(socket);
      if (fd !== undefined) setTtlSecurity(fd, parseIp(this.address).family, this.config.ttlSecurity);
    }
    const m = this.main;
    switch (m.fsm.state) {
      case 'Idle':
        // Waiting out the idle hold: the peer is back, start at once (passive side of the handshake).
        this.idleTimer?.cancel();
        this.idleTimer = undefined;
        this.dispatch(m, { type: 'AutomaticStart' });
        if (m.fsm.state === 'Idle') return reject('could not start');
        return this.acceptIncoming(socket);
      case 'Connect':
      case 'Active':
        if (!m.dialing) {
          // No attempt of our own in flight: use this connection (§8.2.2 TcpConnectionConfirmed).
          m.dir = 'in';
          this.attach(m, socket);
          this.dispatch(m, { type: 'TcpConnectionConfirmed' });
          return;
        }
        // Our dial is in flight (simultaneous open): keep both, resolve by BGP Identifier (§6.8).
        return this.acceptSecond(socket, reject);
      case 'OpenSent':
      case 'OpenConfirm':
        return this.acceptSecond(socket, reject);
      case 'Established':
        // §6.8: a collision with an Established session closes the new connection.
        return reject('session already Established');
    }
  }

  private acceptSecond(socket: net.Socket, reject: (why: string) => void): void {
    if (this.other) return reject('a second connection is already being resolved');
    // §6.8: keep both until the OPEN on the new one tells us the peer's identifier.
    const c = new Connection({ ...newFsm(this.cfg), state: 'Active' }, 'in');
    this.other = c;
    this.attach(c, socket);
    this.dispatch(c, { type: 'TcpConnectionConfirmed' });
  }

  // ------------------------------------------------------------ FSM driving

  private dispatch(c: Connection, e: FsmEvent): void {
    if (c.dead && e.type !== 'ManualStop') return;
    const { next, actions } = step(c.fsm, e);
    c.fsm = next;
    for (const a of actions) {
      if (c.dead && a.type !== 'down') continue;
      this.perform(c, a);
    }
    // A second (collision) connection that loses its TCP connection is simply dropped.
    if (c.fsm.state === 'Idle' || (c === this.other && STATE_ORDER[c.fsm.state] < 2)) this.onIdle(c);
    if (this.main.fsm.state !== this.reported) this.onMainState(this.reported);
  }

  private reported: BgpState = 'Idle';
  private onMainState(prev: BgpState): void {
    const state = this.main.fsm.state;
    this.reported = state;
    this.since = this.clock.now();
    if (state === 'Established') this.lastError = undefined;
    this.logger.debug({ from: prev, to: state }, 'state');
    this.emit('state', state, prev);
  }

  private onIdle(c: Connection): void {
    if (c.dead) return;
    this.clearTimers(c);
    if (c.socket) this.closeSocket(c);
    c.dead = true;
    if (c === this.other) {
      this.other = undefined;
      return;
    }
    if (c !== this.main) return;
    if (this.other && !this.other.dead) {
      // The surviving connection of a collision carries on as the session.
      this.main = this.other;
      this.other = undefined;
      return;
    }
    // Fresh connection object for the next attempt; restart after idle hold unless stopped. A hold on
    // input was about the old connection's messages: the next one starts reading (and decoding) freely.
    this.main = new Connection({ ...newFsm(this.cfg), connectRetryCounter: c.fsm.connectRetryCounter }, 'out');
    this.inputHeld = false;
    if (!this.stopped) this.scheduleRestart();
  }

  private scheduleRestart(): void {
    this.idleTimer?.cancel();
    // RFC 4271 §8.1.1 DampPeerOscillations, simply: the idle hold doubles with each error since the
    // last Established (ConnectRetryCounter), up to idleHoldMaxTime; jittered (§10).
    const base = this.config.idleHoldTime ?? 5;
    const max = Math.max(base, this.config.idleHoldMaxTime ?? 30);
    const errors = Math.min(this.main.fsm.connectRetryCounter, 16);
    const ms = jitter(Math.min(max, base * 2 ** Math.max(0, errors - 1)) * 1000, this.clock);
    this.idleTimer = this.clock.setTimer(ms, () => {
      this.idleTimer = undefined;
      if (!this.stopped && this.main.fsm.state === 'Idle') this.dispatch(this.main, { type: 'AutomaticStart' });
    });
  }

  private perform(c: Connection, a: Action): void {
    switch (a.type) {
      case 'connect':
        this.dial(c);
        return;
      case 'close':
        this.closeSocket(c);
        return;
      case 'send-open':
        this.write(c, encodeMessage(buildOpen(this.cfg), DEFAULT_CAPS));
        return;
      case 'send-keepalive':
        this.write(c, encodeKeepalive());
        return;
      case 'send-notification':
        this.logger.info({ code: a.code, subcode: a.subcode, text: notificationText(a.code, a.subcode) }, 'sending NOTIFICATION');
        this.write(c, encodeNotification(a));
        this.emit('notification', { sent: true, code: a.code, subcode: a.subcode, data: a.data });
        return;
      case 'timer':
        this.setTimer(c, a.timer, a.seconds, a.jitter);
        return;
      case 'collision-check':
        // The OPEN is accepted: decode what follows with the negotiated caps (AS4, ADD-PATH).
        c.caps = a.negotiated.caps;
        this.collisionCheck(c, a.negotiated);
        return;
      case 'established': {
        c.caps = a.negotiated.caps;
        if (!this.cfg.extendedMessage) c.framer.maxLength = maxMessageLen(a.negotiated.caps);
        c.fsm.connectRetryCounter = 0; // a good session ends the back-off
        this.wasEstablished.add(c);
        if (c !== this.main) {
          // The other connection won: make it the session, drop the old one (the dispatch
          // epilogue reports the state change of the new main connection).
          const old = this.main;
          this.main = c;
          this.other = undefined;
          if (!old.dead) this.dispatch(old, { type: 'OpenCollisionDump' });
        } else if (this.other) this.dispatch(this.other, { type: 'OpenCollisionDump' });
        this.logger.info({ holdTime: a.negotiated.holdTime, peerRouterId: a.negotiated.peerRouterId }, 'session Established');
        this.emit('established', a.negotiated, normalizeAddress(c.socket?.localAddress));
        return;
      }
      case 'down': {
        const wasUp = this.wasEstablished.has(c);
        if (c === this.main || !this.lastError) {
          this.lastError =
            a.reason === 'Administrative stop'
              ? undefined
              : a.error?.code === 5 && a.error.sent
                ? `BGP Error: ${a.reason}`
                : a.error
                  ? `${a.error.sent ? 'BGP Error' : 'Received'}: ${notificationText(a.error.code, a.error.subcode)}`
                  : `Socket: ${a.reason}`;
        }
        this.logger.info({ reason: a.reason, error: a.error }, 'connection down');
        if (wasUp) {
          const ev: DownEvent = a.error ? { reason: a.reason, error: a.error } : { reason: a.reason };
          this.emit('down', ev);
        }
        return;
      }
      case 'deliver-update':
        this.deliver(c, 'update', a.msg);
        return;
      case 'deliver-route-refresh':
        this.deliver(c, 'route-refresh', a.msg as RouteRefreshMessage);
        return;
    }
  }

  private readonly wasEstablished = new WeakSet<Connection>();

  /**
   * Hand a message to the consumer. A consumer that throws must not take the process down because
   * of one peer's input: log it and reset this session (Cease 6/8, RFC 4486 "Out of Resources").
   */
  private deliver(c: Connection, event: 'update' | 'route-refresh', msg: UpdateMessage | RouteRefreshMessage): void {
    try {
      if (event === 'update') this.emit('update', msg as UpdateMessage);
      else this.emit('route-refresh', msg as RouteRefreshMessage);
    } catch (e) {
      this.logger.error({ err: (e as Error)?.stack ?? String(e), event }, 'consumer failed on a received message; resetting the session');
      // ManualStop → Idle; onIdle schedules the automatic restart (the session is not stopped).
      if (!c.dead) queueMicrotask(() => this.dispatch(c, { type: 'ManualStop', subcode: 8 }));
    }
  }

  /** RFC 4271 §6.8: the connection opened by the speaker with the higher BGP Identifier survives. */
  private collisionCheck(c: Connection, n: Negotiated): void {
    const o = c === this.main ? this.other : this.main;
    if (!o || o.dead || (o.fsm.state !== 'OpenSent' && o.fsm.state !== 'OpenConfirm')) return;
    const local = parseIpv4Number(this.cfg.routerId);
    const remote = parseIpv4Number(n.peerRouterId);
    // RFC 6286 §2.3: equal identifiers (possible on eBGP) are broken by the AS numbers.
    const localWins = local === remote ? this.cfg.localAsn > n.peerAsn : local > remote;
    const keepDir: Dir = localWins ? 'out' : 'in';
    const loser = c.dir === keepDir ? o : c;
    this.logger.info({ local: this.cfg.routerId, remote: n.peerRouterId, keep: keepDir }, 'connection collision');
    this.emit('collision', { kept: keepDir, localRouterId: this.cfg.routerId, peerRouterId: n.peerRouterId });
    this.dispatch(loser, { type: 'OpenCollisionDump' });
  }

  private setTimer(c: Connection, t: TimerName, seconds: number, withJitter: boolean): void {
    if (t === 'hold' && seconds > 0 && c.timers.has('hold') && c.holdMs === seconds * 1000) {
      // Restarting a running hold timer (every UPDATE/KEEPALIVE): just move the deadline; the
      // timer re-arms itself for the remainder when it fires early. No timer churn per message.
      c.holdDeadline = this.clock.now() + c.holdMs;
      return;
    }
    if (t === 'hold') {
      c.holdMs = seconds * 1000;
      c.holdDeadline = this.clock.now() + c.holdMs;
    }
    c.timers.get(t)?.cancel();
    c.timers.delete(t);
    if (seconds <= 0) return;
    const ms = withJitter ? jitter(seconds * 1000, this.clock) : seconds * 1000;
    const ev: FsmEvent =
      t === 'connectRetry'
        ? { type: 'ConnectRetryTimerExpires' }
        : t === 'hold'
          ? { type: 'HoldTimerExpires' }
          : { type: 'KeepaliveTimerExpires' };
    const fire = (): void => {
      const early = t === 'hold' ? c.holdDeadline - this.clock.now() : 0;
      if (early > 0) {
        c.timers.set(t, this.clock.setTimer(early, fire));
        return;
      }
      c.timers.delete(t);
      this.dispatch(c, ev);
    };
    c.timers.set(t, this.clock.setTimer(ms, fire));
  }

  private clearTimers(c: Connection): void {
    for (const t of c.timers.values()) t.cancel();
    c.timers.clear();
  }

  // ------------------------------------------------------------ sockets

  private dial(c: Connection): void {
    this.closeSocket(c);
    c.dialing = true;
    const opts = {
      remote: this.address,
      port: this.config.port ?? 179,
      timeoutMs: Math.max(1000, this.cfg.connectRetryTime * 1000),
      ...(this.config.localAddress ? { local: this.config.localAddress } : {}),
      ...(this.config.password ? { password: this.config.password } : {}),
      ...(this.config.ttlSecurity ? { ttlSecurity: this.config.ttlSecurity } : {}),
      ...(this.config.netns ? { netns: this.config.netns } : {}),
    };
    dialTcp(opts).then(
      (socket) => {
        if (!c.dialing || c.dead || c.fsm.state !== 'Connect') {
          socket.destroy();
          return;
        }
        c.dialing = false;
        this.attach(c, socket);
        this.dispatch(c, { type: 'TcpCrAcked' });
      },
      (err: unknown) => {
        if (!c.dialing || c.dead || c.fsm.state !== 'Connect') return;
        c.dialing = false;
        const reason = err instanceof TransportError ? err.message : String((err as Error)?.message ?? err);
        this.emit('connect-error', {
          code: err instanceof TransportError ? err.code : ((err as NodeJS.ErrnoException)?.code ?? 'EUNKNOWN'),
          message: reason,
        });
        this.dispatch(c, { type: 'TcpConnectionFails', reason });
      },
    );
  }

  private attach(c: Connection, socket: net.Socket): void {
    if (c.socket && c.socket !== socket) c.socket.destroy();
    c.socket = socket;
    c.newStream();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(c, socket, chunk));
    socket.on('error', (err) => this.logger.debug({ err: err.message }, 'socket error'));
    socket.on('close', () => {
      if (c.socket !== socket || c.dead) return;
      c.socket = undefined;
      if (!this.wasEstablished.has(c)) this.emit('connect-error', { code: 'ECLOSED', message: `Connection closed in ${c.fsm.state}` });
      this.dispatch(c, { type: 'TcpConnectionFails', reason: 'Connection closed' });
    });
    socket.on('drain', () => {
      if (c === this.main) this.emit('drain');
    });
    socket.resume();
  }

  private closeSocket(c: Connection): void {
    c.dialing = false;
    const s = c.socket;
    if (!s) return;
    c.socket = undefined;
    c.inbox = [];
    // Let a queued NOTIFICATION go out, then close; never wait long.
    s.end();
    const t = setTimeout(() => s.destroy(), 1000);
    t.unref();
    s.once('close', () => clearTimeout(t));
  }

  private write(c: Connection, buf: Buffer): void {
    const s = c.socket;
    if (!s || s.destroyed) return;
    s.write(buf);
  }

  private sendRaw(m: BgpMessage): void {
    const c = this.main;
    if (c.fsm.state !== 'Established') throw new Error(`session ${this.address} is not Established`);
    this.write(c, encodeMessage(m, c.caps));
  }

  // ------------------------------------------------------------ inbound

  private onData(c: Connection, socket: net.Socket, chunk: Buffer): void {
    if (c.socket !== socket || c.dead) return;
    let frames: Buffer[];
    try {
      frames = c.framer.push(chunk);
    } catch (e) {
      if (e instanceof BgpMessageError) {
        // Deliver what was complete first? The stream is unsynchronised from here: reset now.
        this.dispatch(c, { type: 'BGPHeaderErr', error: e });
        return;
      }
      throw e;
    }
    if (frames.length === 0) return;
    for (const f of frames) c.inbox.push(f);
    this.drainInbox(c, socket);
  }

  /** Process received frames in slices of time so timers (keepalives!) run during a large dump. */
  private drainInbox(c: Connection, socket: net.Socket): void {
    if (c.scheduled) return;
    const budget = this.config.inboundSliceMs ?? 10;
    const t0 = Date.now();
    let n = 0;
    while (c.inbox.length > c.inboxAt) {
      if (c.dead || c.socket !== socket) return;
      // Held by the consumer: the rest stays raw bytes until it asks again (holdInput(false)).
      if (this.inputHeld && c === this.main) return;
      const frame = c.inbox[c.inboxAt++] as Buffer;
      this.onFrame(c, frame);
      if ((++n & 31) === 0 && Date.now() - t0 > budget && c.inbox.length > c.inboxAt) {
        socket.pause();
        c.scheduled = true;
        setImmediate(() => {
          c.scheduled = false;
          if (c.dead || c.socket !== socket) return;
          this.drainInbox(c, socket);
        });
        return;
      }
    }
    c.inbox = [];
    c.inboxAt = 0;
    if (!c.dead && c.socket === socket && socket.isPaused() && !this.inputHeld) socket.resume();
  }

  /**
   * Back-pressure from the consumer: hold = stop reading the socket (TCP's window then slows the
   * peer) and stop decoding what was already read (it waits as bytes). Release resumes both.
   */
  holdInput(hold: boolean): void {
    this.inputHeld = hold;
    const c = this.main;
    const s = c.socket;
    if (!s || c.dead) return;
    if (hold) s.pause();
    else if (!c.scheduled && s.isPaused()) {
      if (c.inbox.length > c.inboxAt) this.drainInbox(c, s);
      else s.resume();
    }
  }

  private onFrame(c: Connection, frame: Buffer): void {
    let m: BgpMessage;
    try {
      m = decodeMessage(frame, c.caps);
    } catch (e) {
      if (!(e instanceof BgpMessageError)) throw e;
      this.logger.info({ code: e.code, subcode: e.subcode, detail: e.message }, 'malformed message');
      const type: FsmEvent['type'] = e.code === 1 ? 'BGPHeaderErr' : e.code === 2 ? 'BGPOpenMsgErr' : 'UpdateMsgErr';
      this.dispatch(c, { type, error: e } as FsmEvent);
      return;
    }
    switch (m.type) {
      case 'open':
        this.dispatch(c, { type: 'BGPOpen', open: m });
        return;
      case 'keepalive':
        this.dispatch(c, { type: 'KeepAliveMsg' });
        return;
      case 'update':
        this.dispatch(c, { type: 'UpdateMsg', msg: m });
        return;
      case 'notification':
        this.emit('notification', { sent: false, code: m.code, subcode: m.subcode, data: m.data });
        this.dispatch(c, m.code === 2 && m.subcode === 1 ? { type: 'NotifMsgVerErr', msg: m } : { type: 'NotifMsg', msg: m });
        return;
      case 'route-refresh':
        this.dispatch(c, { type: 'RouteRefreshMsg', msg: m });
        return;
    }
  }
}
