// The BGP listening socket (RFC 4271 §8: passive TCP side). Accepts connections only from the
// configured peers (others are closed and logged before any OPEN) and hands each to its BgpSession;
// holds one TCP-MD5 key per peer on the listening socket (RFC 2385) — a peer with a password whose
// key could not be installed is refused (never a session without MD5). Connections from unconfigured
// addresses are logged once per source per window, with a periodic summary of the rest.
import type net from 'node:net';
import type { Logger } from '../common/log.js';
import { log } from '../common/log.js';
import { parseIp } from '../common/ip.js';
import type { BgpSession } from './session.js';
import { listenTcp, normalizeAddress, setMd5Key } from './transport.js';

export interface ListenerConfig {
  /** Address to listen on ('::' dual stack by default). */
  address?: string;
  port?: number;
  netns?: string;
  /** Window of the per-source rate limit of "unconfigured peer" logs, ms (default 60 s). */
  logWindowMs?: number;
}

/** Per-source rate limit of a repeated warning: the first per window is logged, the rest summed up. */
export class RepeatLimiter {
  private readonly last = new Map<string, number>();
  private suppressed = new Map<string, number>();
  private other = 0;
  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxSources = 1024,
  ) {}

  /** true: log this one; false: counted for the summary. */
  allow(source: string): boolean {
    const t = this.now();
    const prev = this.last.get(source);
    if (prev === undefined || t - prev >= this.windowMs) {
      if (prev === undefined && this.last.size >= this.maxSources) {
        this.other++;
        return false;
      }
      this.last.set(source, t);
      return true;
    }
    this.suppressed.set(source, (this.suppressed.get(source) ?? 0) + 1);
    return false;
  }

  /** What was suppressed since the last call (and forget sources quiet for a window). */
  takeSummary(): { total: number; bySource: Record<string, number> } | undefined {
    const t = this.now();
    for (const [s, at] of this.last) if (t - at >= this.windowMs && !this.suppressed.has(s)) this.last.delete(s);
    if (this.suppressed.size === 0 && this.other === 0) return undefined;
    const bySource = Object.fromEntries([...this.suppressed].sort((a, b) => b[1] - a[1]).slice(0, 10));
    let total = this.other;
    for (const n of this.suppressed.values()) total += n;
    if (this.other) bySource['(other sources)'] = this.other;
    this.suppressed = new Map();
    this.other = 0;
    return { total, bySource };
  }
}

/** The BGP listening socket: routes incoming connections to configured peers' sessions. */
export class BgpListener {
  private server: net.Server | undefined;
  private fd = -1;
  private family: 4 | 6 = 6;
  private readonly sessions = new Map<string, BgpSession>();
  private readonly logger: Logger;
  /** Peers whose MD5 key is installed on the listening socket. */
  private readonly keyed = new Set<string>();
  readonly unconfigured: RepeatLimiter;
  private summaryTimer: NodeJS.Timeout | undefined;
  constructor(
    readonly config: ListenerConfig = {},
    logger?: Logger,
  ) {
    this.logger = logger ?? log('bgp', { listener: `${config.address ?? '::'}:${config.port ?? 179}` });
    this.unconfigured = new RepeatLimiter(config.logWindowMs ?? 60_000);
  }

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : (this.config.port ?? 179);
  }

  async start(): Promise<void> {
    const l = await listenTcp({
      address: this.config.address ?? '::',
      port: this.config.port ?? 179,
      ...(this.config.netns ? { netns: this.config.netns } : {}),
    });
    this.server = l.server;
    this.fd = l.fd;
    this.family = l.family;
    this.server.on('connection', (s: net.Socket) => this.onConnection(s));
    this.server.on('error', (e) => this.logger.error({ err: e.message }, 'BGP listener error'));
    for (const s of this.sessions.values()) if (s.config.password) this.setKey(s.address, s.config.password);
  }

  async stop(): Promise<void> {
    if (this.summaryTimer) clearInterval(this.summaryTimer);
    this.summaryTimer = undefined;
    this.logSummary();
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /** Accept connections from this peer (and install its TCP MD5 key on the listener). */
  add(session: BgpSession): void {
    this.sessions.set(session.address, session);
    if (session.config.password && this.server) this.setKey(session.address, session.config.password);
  }

  remove(address: string): void {
    const a = normalizeAddress(address);
    const s = this.sessions.get(a);
    this.sessions.delete(a);
    if (s?.config.password && this.server) this.setKey(a, '');
    this.keyed.delete(a);
  }

  private setKey(peer: string, key: string): void {
    if (this.family === 4 && parseIp(peer).family === 6) return;
    try {
      setMd5Key(this.fd, this.family, peer, key);
      if (key) this.keyed.add(peer);
      else this.keyed.delete(peer);
    } catch (e) {
      this.keyed.delete(peer);
      this.logger.error({ peer, err: (e as Error).message }, 'cannot set TCP MD5 key on the listener');
    }
  }

  private onConnection(socket: net.Socket): void {
    const remote = normalizeAddress(socket.remoteAddress);
    const s = this.sessions.get(remote);
    if (!s) {
      // Not a configured peer: close before any OPEN; log once per source per window.
      if (this.unconfigured.allow(remote))
        this.logger.warn(
          { remote, port: socket.remotePort },
          'connection from an unconfigured peer closed (further ones from it are counted, summary every minute)',
        );
      else this.armSummary();
      socket.destroy();
      return;
    }
    if (s.config.password && !this.keyed.has(remote)) {
      // The kernel would accept it without a signature: refuse rather than run without MD5.
      this.logger.error({ remote }, 'connection refused: the TCP MD5 key for this peer is not on the listening socket');
      socket.destroy();
      return;
    }
    s.acceptIncoming(socket);
  }

  private armSummary(): void {
    if (this.summaryTimer) return;
    this.summaryTimer = setInterval(() => {
      if (!this.logSummary()) {
        clearInterval(this.summaryTimer);
        this.summaryTimer = undefined;
      }
    }, this.config.logWindowMs ?? 60_000);
    this.summaryTimer.unref();
  }

  /** Log what the rate limit held back; false when there was nothing. */
  logSummary(): boolean {
    const s = this.unconfigured.takeSummary();
    if (!s) return false;
    this.logger.warn({ closed: s.total, bySource: s.bySource }, `${s.total} more connections from unconfigured peers closed`);
    return true;
  }
}
