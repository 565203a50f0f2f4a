// An in-memory transport for BgpSpeaker unit tests: sessions of two speakers meet in a MemHub and
// exchange real encoded BGP messages (the codec's encoder → Framer → decodeMessage), with the real OPEN
// negotiation (negotiate.ts). No sockets and no FSM timers — the FSM and sockets are tested by
// fsm.test and session tests; here the subject is the speaker above them. Faults: kill() (TCP loss, no NOTIFICATION),
// inject(bytes) (raw bytes as if from the peer).
import { EventEmitter } from 'node:events';
import { Buffer } from 'node:buffer';
import { Framer } from '../../../src/bgp/codec/framer.js';
import { decodeMessage, encodeNotification } from '../../../src/bgp/codec/message.js';
import { BgpMessageError, type BgpMessage, type CodecCaps, DEFAULT_CAPS } from '../../../src/bgp/codec/types.js';
import { buildOpen, negotiate, type LocalOpenConfig, type Negotiated } from '../../../src/bgp/negotiate.js';
import {
  BgpSpeaker,
  type PeerSession,
  type PeerSessionEvents,
  type SessionFactory,
  type SessionParams,
  type BgpSpeakerOptions,
} from '../../../src/bgp/speaker.js';

export class MemHub {
  readonly sessions = new Map<string, MemSession>();
  factory(localAddress: string): SessionFactory {
    return { create: (params: SessionParams) => new MemSession(this, localAddress, params) };
  }
  /** Try to connect the session with its counterpart. */
  tryConnect(s: MemSession): void {
    const other = this.sessions.get(`${s.remote}>${s.local}`);
    if (!other || !other.started || other.peerSide || s.peerSide) return;
    const a = s.openConfig();
    const b = other.openConfig();
    let na: Negotiated, nb: Negotiated;
    try {
      na = negotiate(a, buildOpen(b));
      nb = negotiate(b, buildOpen(a));
    } catch (e) {
      s.emit('state', 'Active', (e as Error).message);
      return;
    }
    s.peerSide = other;
    other.peerSide = s;
    s.caps = na.caps;
    other.caps = nb.caps;
    for (const [x, n] of [
      [s, na],
      [other, nb],
    ] as const) {
      x.emit('state', 'OpenSent', 'OpenSent');
      x.emit('state', 'OpenConfirm', 'OpenConfirm');
      x.emit('established', n, x.local);
    }
  }
}

export class MemSession extends EventEmitter<PeerSessionEvents> implements PeerSession {
  started = false;
  peerSide: MemSession | undefined;
  caps: CodecCaps = DEFAULT_CAPS;
  private framer = new Framer();
  readonly local: string;
  readonly remote: string;
  /** Every message this side received, decoded (for assertions). */
  readonly received: BgpMessage[] = [];
  /** Raw bytes sent. */
  sentMessages = 0;
  sentBytes = 0;
  notificationsSent: { code: number; subcode: number; data: Buffer }[] = [];
  /** Back-pressure requests from the speaker (holdInput); a feeder checks `held`. */
  held = false;
  holdCalls: boolean[] = [];
  /** false: the socket's buffer is full — send() queues but returns false until 'drain' is emitted. */
  writable = true;

  constructor(
    private readonly hub: MemHub,
    local: string,
    readonly params: SessionParams,
  ) {
    super();
    this.local = params.peer.localAddress ?? local;
    this.remote = params.peer.address;
    hub.sessions.set(`${this.local}>${this.remote}`, this);
  }

  openConfig(): LocalOpenConfig {
    const p = this.params;
    return {
      localAsn: p.localAsn,
      routerId: p.routerId,
      peerAsn: p.peer.asn,
      holdTime: p.peer.holdTime ?? 90,
      families: p.peer.families,
      ...(p.gracefulRestart ? { gracefulRestart: p.gracefulRestart } : {}),
    };
  }

  start(): void {
    this.started = true;
    this.emit('state', 'Active', 'Active');
    setImmediate(() => this.hub.tryConnect(this));
  }

  stop(cease?: { subcode: number; data?: Buffer }): void {
    this.started = false;
    const other = this.peerSide;
    if (this.hub.sessions.get(`${this.local}>${this.remote}`) === this) this.hub.sessions.delete(`${this.local}>${this.remote}`);
    if (other && cease) {
      const n = { code: 6, subcode: cease.subcode, data: cease.data ?? Buffer.alloc(0) };
      this.notificationsSent.push(n);
      this.send(encodeNotification(n));
    }
    this.disconnect(false, 'Stopped', !!cease);
  }

  /** Simulated TCP loss (kill -9 of the peer): both sides see the connection drop, no NOTIFICATION. */
  kill(): void {
    this.started = false;
    if (this.hub.sessions.get(`${this.local}>${this.remote}`) === this) this.hub.sessions.delete(`${this.local}>${this.remote}`);
    this.disconnect(true, 'Connection reset by peer', false);
  }

  private disconnect(notifyOther: boolean, reason: string, notification: boolean): void {
    const other = this.peerSide;
    this.peerSide = undefined;
    this.framer = new Framer();
    if (other) {
      other.peerSide = undefined;
      setImmediate(() => {
        if (notifyOther || notification) {
          other.emit('down', { reason: notification ? 'Received: Cease' : reason, notification });
          other.emit('state', 'Active', reason);
          // The surviving side keeps trying (ConnectRetry): reconnect when the peer returns.
          setImmediate(() => this.hub.tryConnect(other));
        }
      });
    }
    this.emit('down', { reason, notification });
  }

  holdInput(hold: boolean): void {
    this.held = hold;
    this.holdCalls.push(hold);
  }

  send(msg: Buffer): boolean {
    const other = this.peerSide;
    if (!other) return true;
    this.sentMessages++;
    this.sentBytes += msg.length;
    const copy = Buffer.from(msg);
    setImmediate(() => {
      if (other.peerSide === this) other.receive(copy);
    });
    return this.writable;
  }

  /** Bytes as if received from the peer. */
  inject(bytes: Buffer): void {
    this.receive(bytes);
  }

  private receive(bytes: Buffer): void {
    try {
      for (const frame of this.framer.push(bytes)) {
        const m = decodeMessage(frame, this.caps);
        this.received.push(m);
        if (m.type === 'update') this.emit('update', m);
        else if (m.type === 'route-refresh') this.emit('route-refresh', m);
        else if (m.type === 'notification') {
          const other = this.peerSide;
          this.peerSide = undefined;
          if (other) other.peerSide = undefined;
          this.emit('down', { reason: `Received: ${m.code}/${m.subcode}`, notification: true });
        }
      }
    } catch (e) {
      if (!(e instanceof BgpMessageError)) throw e;
      // RFC 4271 §6 / RFC 7606 session reset: NOTIFICATION, close.
      const n = { code: e.code, subcode: e.subcode, data: e.data };
      this.notificationsSent.push(n);
      this.send(encodeNotification(n));
      const other = this.peerSide;
      this.peerSide = undefined;
      this.framer = new Framer();
      if (other) {
        other.peerSide = undefined;
        setImmediate(() => other.emit('down', { reason: `Received: ${e.code}/${e.subcode}`, notification: true }));
      }
      this.emit('down', { reason: `Sent: ${e.code}/${e.subcode} ${e.message}`, notification: true });
    }
  }
}

/** A speaker on the hub, listening as `address`. */
export function memSpeaker(hub: MemHub, address: string, opts: Omit<BgpSpeakerOptions, 'sessions'>): BgpSpeaker {
  return new BgpSpeaker({ ...opts, sessions: hub.factory(address) });
}

/**
 * Two iBGP speakers of AS 65000 on a new hub — a at 10.0.0.1, b at 10.0.0.2 (with `bOpts`) — peered for
 * `families` and Established, stopped at the test's teardown. `rx` is b's session from a: what is
 * injected into it is what b receives from a.
 */
export async function establishedPair(
  t: { teardown(fn: () => unknown): void },
  bOpts: Partial<Omit<BgpSpeakerOptions, 'sessions'>> = {},
  families: ('ipv4' | 'ipv6')[] = ['ipv4'],
): Promise<{ hub: MemHub; a: BgpSpeaker; b: BgpSpeaker; rx: MemSession }> {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1' });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '2.2.2.2', ...bOpts });
  a.addPeer({ address: '10.0.0.2', asn: 65000, families });
  b.addPeer({ address: '10.0.0.1', asn: 65000, families });
  await a.start();
  await b.start();
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await until(() => b.peers()[0]!.state === 'Established', 5000, 'up');
  return { hub, a, b, rx: hub.sessions.get('10.0.0.2>10.0.0.1') as MemSession };
}

/** Resolve when pred() holds (checked every turn of the event loop), or reject after ms. */
export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
