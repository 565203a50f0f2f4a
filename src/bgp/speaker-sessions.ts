// The speaker's TCP transport: session.ts's BgpSession (FSM, sockets, TCP-MD5/GTSM, collision
// detection) and BgpListener, adapted to the PeerSession port the speaker codes against.
import { EventEmitter } from 'node:events';
import type { Buffer } from 'node:buffer';
import { BgpListener, BgpSession, type DownEvent } from './session.js';
import type { Negotiated } from './negotiate.js';
import type { PeerSession, PeerSessionEvents, SessionFactory, SessionParams } from './speaker-types.js';

export interface TcpSessionOptions {
  /** Network namespace path (/var/run/netns/x) for the listener and outgoing connections. */
  netns?: string;
  /** ConnectRetry seconds (default 5 as Calico's BIRD). */
  connectRetryTime?: number;
  /** Idle hold after an error, seconds (default 5). */
  idleHoldTime?: number;
}

/** Sessions over TCP (session.ts). */
export function tcpSessions(opts: TcpSessionOptions = {}): SessionFactory & { readonly listeners: readonly BgpListener[] } {
  // One listener per listen address; every session is known to each (a peer may connect to any).
  const listeners: BgpListener[] = [];
  const known = new Set<SessionAdapter>(); // live sessions, for listeners started after them
  return {
    get listeners() {
      return listeners;
    },
    async listen(address: string | undefined, port: number): Promise<void> {
      const listener = new BgpListener({ ...(address ? { address } : {}), port, ...(opts.netns ? { netns: opts.netns } : {}) });
      await listener.start();
      listeners.push(listener);
      for (const a of known) listener.add(a.session);
    },
    create(params: SessionParams): PeerSession {
      const p = params.peer;
      const s = new BgpSession(
        {
          address: p.address,
          ...(p.port ? { port: p.port } : {}),
          ...(p.localAddress ? { localAddress: p.localAddress } : {}),
          localAsn: params.localAsn,
          peerAsn: p.asn,
          routerId: params.routerId,
          ...(p.holdTime !== undefined ? { holdTime: p.holdTime } : {}),
          ...(p.passive ? { passive: true } : {}),
          families: p.families,
          ...(p.password ? { password: p.password } : {}),
          ...(p.ttlSecurity ? { ttlSecurity: p.ttlSecurity } : {}),
          ...(params.gracefulRestart ? { gracefulRestart: params.gracefulRestart } : {}),
          ...(opts.netns ? { netns: opts.netns } : {}),
          ...(opts.connectRetryTime !== undefined ? { connectRetryTime: opts.connectRetryTime } : {}),
          ...(opts.idleHoldTime !== undefined ? { idleHoldTime: opts.idleHoldTime } : {}),
        },
        params.clock,
        params.logger,
      );
      const a = new SessionAdapter(
        s,
        () => listeners,
        () => known.delete(a),
      );
      for (const l of listeners) l.add(s);
      known.add(a);
      return a;
    },
    async close(): Promise<void> {
      await Promise.all(listeners.map((l) => l.stop()));
      listeners.length = 0;
    },
  };
}

class SessionAdapter extends EventEmitter<PeerSessionEvents> implements PeerSession {
  constructor(
    readonly session: BgpSession,
    private readonly listenersOf: () => readonly BgpListener[],
    private readonly forget: () => void,
  ) {
    super();
    const s = session;
    s.on('state', (state) => this.emit('state', state, s.status().info));
    s.on('established', (n: Negotiated, local: string) => this.emit('established', n, local || this.localAddress()));
    s.on('update', (m) => this.emit('update', m));
    s.on('route-refresh', (m) => this.emit('route-refresh', m));
    s.on('drain', () => this.emit('drain'));
    s.on('notification', (n) => this.emit('notification', n));
    s.on('connect-error', (e) => this.emit('connect-error', e));
    s.on('down', (ev: DownEvent) => {
      // Graceful restart (RFC 4724) applies when the connection just ended; a NOTIFICATION ends it,
      // except our own Hold Timer Expired (the peer vanished: the restart case).
      const notification = !!ev.error && !(ev.error.code === 4 && ev.error.sent);
      this.emit('down', { reason: ev.reason, notification });
    });
  }

  /** Our address on the Established connection (for next-hop-self). */
  private localAddress(): string {
    const a = this.session.localAddress || this.session.config.localAddress || '';
    return a.startsWith('::ffff:') ? a.slice(7) : a;
  }

  start(): void {
    this.session.start();
  }

  stop(cease?: { subcode: number; data?: Buffer }): void {
    // Graceful: drop the connection without a NOTIFICATION so peers keep our routes (RFC 4724).
    if (cease === undefined) this.session.close();
    else this.session.stop(cease.subcode, cease.data && cease.data.length > 0 ? cease.data : undefined);
    for (const l of this.listenersOf()) l.remove(this.session.address);
    this.forget();
  }

  holdInput(hold: boolean): void {
    this.session.holdInput(hold);
  }

  send(msg: Buffer): boolean {
    // A connection closing under us (the socket destroyed, its 'close' not yet seen by the FSM):
    // the message is dropped like any on a session going down — 'down' follows, never a throw.
    if (!this.session.established || !this.session.connected) return true;
    return this.session.sendFrames(msg);
  }
}
