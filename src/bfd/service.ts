// The BFD shell: one BfdService per process runs the sessions (pure core: fsm.ts) over a transport
// (udp.ts in the product, an in-memory pair in tests) on an injected clock. It demultiplexes received
// Control packets (RFC 5880 §6.8.6: by Your Discriminator, else by source address — single hop, so
// the source address must be the session's peer either way), runs the transmit and detection timers
// the FSM asks for, and emits 'state' when a session comes Up or goes Down.
import { EventEmitter } from 'node:events';
import type { Buffer } from 'node:buffer';
import type { Logger } from '../common/log.js';
import { decodeControl, encodeControl, BfdPacketError, DIAG_TEXT, type BfdState } from './packet.js';
import {
  newSession,
  packetOf,
  step,
  txIntervalMs,
  detectionTimeMs,
  jitterMs,
  DEFAULT_BFD_TIMERS,
  type BfdSession,
  type BfdAction,
  type BfdEvent,
  type BfdTimers,
} from './fsm.js';

export interface BfdClock {
  now(): number;
  setTimer(ms: number, fn: () => void): { cancel(): void };
  /** Uniform in [0, 1). */
  random(): number;
}

/** Datagrams to and from peers (RFC 5881: UDP 3784, TTL 255 both ways). */
export interface BfdTransport {
  send(peer: string, packet: Buffer): void;
  /** Deliver every received datagram (already TTL-checked by the transport). */
  onPacket(fn: (peer: string, packet: Buffer) => void): void;
  close(): Promise<void>;
}

export interface BfdPeerOptions {
  peer: string;
  timers?: Partial<BfdTimers>;
}

export interface BfdSessionStatus {
  peer: string;
  state: BfdState;
  remoteState: BfdState;
  /** Our diagnostic, in words ('Control Detection Time Expired' after a timeout). */
  diag: string;
  since: Date;
  localDiscr: number;
  remoteDiscr: number;
  /** Current periodic transmit interval and detection time, ms. */
  txIntervalMs: number;
  detectionTimeMs: number;
  /** Times the session went from Up to Down. */
  downs: number;
  /** Why it last went Down from Up ('' before the first time): `diag` is cleared when it comes Up again. */
  lastDownDiag: string;
}

export interface BfdStateEvent {
  peer: string;
  state: BfdState;
  previous: BfdState;
  diag: string;
  /** Down because the peer went AdminDown (e.g. its agent stopping for a graceful restart): not a failure. */
  remoteAdminDown: boolean;
}

export interface BfdServiceEvents {
  state: [BfdStateEvent];
}

interface Running {
  opts: BfdPeerOptions;
  s: BfdSession;
  since: number;
  txMs: number;
  tx: { cancel(): void } | undefined;
  detect: { cancel(): void } | undefined;
  downs: number;
  lastDownDiag: string;
}

export class BfdService extends EventEmitter<BfdServiceEvents> {
  private readonly byPeer = new Map<string, Running>();
  private readonly byDiscr = new Map<number, Running>();
  private transport: BfdTransport | undefined;
  /** Datagrams discarded by the checks of §6.8.6 or from no configured peer. */
  discarded = 0;

  constructor(private readonly o: { transport: () => BfdTransport; clock: BfdClock; logger: Logger }) {
    super();
  }

  /** Start (or re-time) a session to `peer`. */
  add(opts: BfdPeerOptions): void {
    const timers: BfdTimers = { ...DEFAULT_BFD_TIMERS, ...opts.timers };
    const cur = this.byPeer.get(opts.peer);
    if (cur && JSON.stringify(cur.s.timers) === JSON.stringify(timers)) return;
    if (cur) this.remove(opts.peer);
    if (!this.transport) {
      this.transport = this.o.transport();
      this.transport.onPacket((peer, buf) => this.receive(peer, buf));
    }
    const r: Running = {
      opts,
      s: newSession(this.newDiscr(), timers),
      since: this.o.clock.now(),
      txMs: 0,
      tx: undefined,
      detect: undefined,
      downs: 0,
      lastDownDiag: '',
    };
    this.byPeer.set(opts.peer, r);
    this.byDiscr.set(r.s.localDiscr, r);
    this.setTx(r, txIntervalMs(r.s));
    this.send(r, false);
  }

  remove(peer: string): void {
    const r = this.byPeer.get(peer);
    if (!r) return;
    // §6.8.16: tell the peer we are going administratively down, then stop.
    const { next } = step(r.s, { type: 'admin-down' });
    r.s = next;
    this.send(r, false);
    r.tx?.cancel();
    r.detect?.cancel();
    this.byPeer.delete(peer);
    this.byDiscr.delete(r.s.localDiscr);
  }

  status(): BfdSessionStatus[] {
    return [...this.byPeer.values()].map((r) => ({
      peer: r.opts.peer,
      state: r.s.state,
      remoteState: r.s.remoteState,
      diag: DIAG_TEXT[r.s.localDiag] ?? String(r.s.localDiag),
      since: new Date(r.since),
      localDiscr: r.s.localDiscr,
      remoteDiscr: r.s.remoteDiscr,
      txIntervalMs: r.txMs,
      detectionTimeMs: detectionTimeMs(r.s),
      downs: r.downs,
      lastDownDiag: r.lastDownDiag,
    }));
  }

  stateOf(peer: string): BfdState | undefined {
    return this.byPeer.get(peer)?.s.state;
  }

  async close(): Promise<void> {
    for (const peer of [...this.byPeer.keys()]) this.remove(peer);
    await this.transport?.close();
    this.transport = undefined;
  }

  // ---------------------------------------------------------------- internals

  private newDiscr(): number {
    for (;;) {
      const d = (Math.floor(this.o.clock.random() * 0xfffffffe) + 1) >>> 0;
      if (!this.byDiscr.has(d)) return d;
    }
  }

  private receive(peer: string, buf: Buffer): void {
    let p;
    try {
      p = decodeControl(buf);
    } catch (e) {
      this.discarded++;
      if (e instanceof BfdPacketError) this.o.logger.debug({ peer, reason: e.reason }, 'BFD packet discarded');
      return;
    }
    // §6.8.6 demultiplexing; single hop: the source must be the session's peer in both cases.
    const r = p.yourDiscr !== 0 ? this.byDiscr.get(p.yourDiscr) : this.byPeer.get(peer);
    if (!r || r.opts.peer !== peer) {
      this.discarded++;
      return;
    }
    this.dispatch(r, { type: 'rx', packet: p });
  }

  private dispatch(r: Running, ev: BfdEvent): void {
    if (this.byPeer.get(r.opts.peer) !== r) return;
    const { next, actions } = step(r.s, ev);
    r.s = next;
    for (const a of actions) this.perform(r, a);
  }

  private perform(r: Running, a: BfdAction): void {
    switch (a.type) {
      case 'send':
        this.send(r, a.final);
        return;
      case 'detect-timer':
        r.detect?.cancel();
        r.detect =
          a.ms > 0
            ? this.o.clock.setTimer(a.ms, () => {
                r.detect = undefined;
                this.dispatch(r, { type: 'detect-timeout' });
              })
            : undefined;
        return;
      case 'tx-interval':
        this.setTx(r, a.ms);
        return;
      case 'up':
      case 'down': {
        r.since = this.o.clock.now();
        if (a.type === 'down' && a.previous === 'Up') {
          r.downs++;
          r.lastDownDiag = DIAG_TEXT[r.s.localDiag] ?? String(r.s.localDiag);
        }
        const ev: BfdStateEvent = {
          peer: r.opts.peer,
          state: r.s.state,
          previous: a.type === 'down' ? a.previous : 'Init',
          diag: DIAG_TEXT[r.s.localDiag] ?? '',
          remoteAdminDown: a.type === 'down' && a.remoteAdmin,
        };
        this.o.logger.info(ev, a.type === 'up' ? 'BFD session up' : 'BFD session down');
        this.emit('state', ev);
        return;
      }
    }
  }

  private send(r: Running, final: boolean): void {
    try {
      this.transport?.send(r.opts.peer, encodeControl(packetOf(r.s, final)));
    } catch (e) {
      this.o.logger.debug({ peer: r.opts.peer, err: (e as Error).message }, 'BFD send failed');
    }
  }

  /** Periodic transmission (§6.8.7), each interval jittered anew. */
  private setTx(r: Running, ms: number): void {
    r.txMs = ms;
    r.tx?.cancel();
    r.tx = undefined;
    if (ms <= 0) return;
    const tick = (): void => {
      if (this.byPeer.get(r.opts.peer) !== r) return;
      this.send(r, false);
      r.tx = this.o.clock.setTimer(jitterMs(r.txMs, r.s.timers.detectMult, this.o.clock.random()), tick);
    };
    r.tx = this.o.clock.setTimer(jitterMs(ms, r.s.timers.detectMult, this.o.clock.random()), tick);
  }
}
