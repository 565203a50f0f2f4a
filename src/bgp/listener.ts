// The BGP listening socket (RFC 4271 §8: passive TCP side). Accepts connections only from the
// configured peers (others are closed and logged before any OPEN) and hands each to its BgpSession;
// holds one TCP-MD5 key per peer on the listening socket (RFC 2385).
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
}

/** The BGP listening socket: routes incoming connections to configured peers' sessions. */
export class BgpListener {
  private server: net.Server | undefined;
  private fd = -1;
  private family: 4 | 6 = 6;
  private readonly sessions = new Map<string, BgpSession>();
  private readonly logger: Logger;
  constructor(readonly config: ListenerConfig = {}, logger?: Logger) {
    this.logger = logger ?? log('bgp', { listener: `${config.address ?? '::'}:${config.port ?? 179}` });
  }

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : (this.config.port ?? 179);
  }

  async start(): Promise<void> {
    const l = await listenTcp({ address: this.config.address ?? '::', port: this.config.port ?? 179, ...(this.config.netns ? { netns: this.config.netns } : {}) });
    this.server = l.server;
    this.fd = l.fd;
    this.family = l.family;
    this.server.on('connection', (s: net.Socket) => this.onConnection(s));
    this.server.on('error', (e) => this.logger.error({ err: e.message }, 'BGP listener error'));
    for (const s of this.sessions.values()) if (s.config.password) this.setKey(s.address, s.config.password);
  }

  async stop(): Promise<void> {
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
  }

  private setKey(peer: string, key: string): void {
    if (this.family === 4 && parseIp(peer).family === 6) return;
    try {
      setMd5Key(this.fd, this.family, peer, key);
    } catch (e) {
      this.logger.error({ peer, err: (e as Error).message }, 'cannot set TCP MD5 key on the listener');
    }
  }

  private onConnection(socket: net.Socket): void {
    const remote = normalizeAddress(socket.remoteAddress);
    const s = this.sessions.get(remote);
    if (!s) {
      // Not a configured peer: close before any OPEN.
      this.logger.warn({ remote, port: socket.remotePort }, 'connection from an unconfigured peer closed');
      socket.destroy();
      return;
    }
    s.acceptIncoming(socket);
  }
}
