// Sockets for BGP sessions, created through tabby's native addon so options Node lacks can be set
// before connect/listen: TCP MD5 signatures (RFC 2385, TCP_MD5SIG with a 216-byte struct
// tcp_md5sig; a listener holds one key per peer) and GTSM (RFC 5082: IP_TTL 255 out, IP_MINTTL in).
// Optionally inside a network namespace (native().withNetns around socket creation).
import net from 'node:net';
import os from 'node:os';
import { Buffer } from 'node:buffer';
import { native, IP_MINTTL, IP_TTL, IPV6_MINHOPCOUNT, IPV6_UNICAST_HOPS, SOL_IP, SOL_IPV6, SOL_TCP, TCP_MD5SIG } from '../native/index.js';
import { parseIp, ipToBuffer } from '../common/ip.js';

const TCP_INFO = 11;
const TCP_ESTABLISHED = 1;
const TCP_SYN_SENT = 2;

export interface SocketSecurity {
  /** TCP MD5 key (RFC 2385), up to 80 bytes. */
  password?: string;
  /** GTSM (RFC 5082): the peer is at most this many hops away; 0/undefined = off. */
  ttlSecurity?: number;
}

export interface DialOptions extends SocketSecurity {
  remote: string;
  port: number;
  local?: string;
  /** Network namespace path (e.g. /var/run/netns/x) to create the socket in. */
  netns?: string;
  timeoutMs?: number;
}

/** A typed socket error, with the text BIRD shows ('Connection refused'). */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly errno: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const errnoName = (errno: number): string => Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? `E${errno}`;
const ERR_TEXT: Record<string, string> = {
  ECONNREFUSED: 'Connection refused',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  ECONNRESET: 'Connection reset by peer',
  EADDRNOTAVAIL: 'Cannot assign requested address',
};
export function errnoText(errno: number): string {
  const name = errnoName(errno);
  return ERR_TEXT[name] ?? name;
}

function inNetns<T>(netns: string | undefined, fn: () => T): T {
  return netns ? native().withNetns(netns, fn) : fn();
}

const familyOf = (ip: string): 4 | 6 => parseIp(ip).family;

/** struct tcp_md5sig (linux/tcp.h): sockaddr_storage(128) flags(1) prefixlen(1) keylen(2) ifindex(4) key[80]. */
export function md5sigStruct(peer: string, key: string, socketFamily: 4 | 6): Buffer {
  const b = Buffer.alloc(216);
  const ip = parseIp(peer);
  const k = Buffer.from(key, 'utf8');
  if (k.length > 80) throw new Error('TCP MD5 key longer than 80 bytes');
  if (socketFamily === 4) {
    if (ip.family !== 4) throw new Error(`IPv6 peer ${peer} on an IPv4 socket`);
    b.writeUInt16LE(2, 0); // AF_INET (host order)
    ipToBuffer(ip).copy(b, 4);
  } else {
    b.writeUInt16LE(10, 0); // AF_INET6
    const a = ip.family === 6 ? ipToBuffer(ip) : Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), ipToBuffer(ip)]); // v4-mapped on a dual-stack listener
    a.copy(b, 8);
  }
  b.writeUInt16LE(k.length, 130);
  k.copy(b, 136);
  return b;
}

/** Set (key) or delete (key '') the MD5 key for `peer` on a socket fd. */
export function setMd5Key(fd: number, socketFamily: 4 | 6, peer: string, key: string): void {
  native().setsockoptBuffer(fd, SOL_TCP, TCP_MD5SIG, md5sigStruct(peer, key, socketFamily));
}

/** RFC 5082: send with TTL 255 and accept only TTL ≥ 256 - hops. */
export function setTtlSecurity(fd: number, family: 4 | 6, hops: number): void {
  const n = native();
  if (family === 4) {
    n.setsockoptInt(fd, SOL_IP, IP_TTL, 255);
    n.setsockoptInt(fd, SOL_IP, IP_MINTTL, 256 - hops);
  } else {
    n.setsockoptInt(fd, SOL_IPV6, IPV6_UNICAST_HOPS, 255);
    n.setsockoptInt(fd, SOL_IPV6, IPV6_MINHOPCOUNT, 256 - hops);
  }
}

/** The fd behind a Node socket/server (undefined when Node does not expose one). */
export function fdOf(h: net.Socket | net.Server): number | undefined {
  const fd = (h as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** Dial a TCP connection with options set before connect; resolves with a connected net.Socket. */
export async function dialTcp(o: DialOptions): Promise<net.Socket> {
  const n = native();
  const family = familyOf(o.remote);
  const fd = inNetns(o.netns, () => n.socketTcp(family));
  try {
    if (o.password) setMd5Key(fd, family, o.remote, o.password);
    if (o.ttlSecurity) setTtlSecurity(fd, family, o.ttlSecurity);
    if (o.local) n.bindFd(fd, o.local, 0);
    let done = n.connectNonBlocking(fd, o.remote, o.port);
    const deadline = Date.now() + (o.timeoutMs ?? 30_000);
    let wait = 2;
    while (!done) {
      // No poll() in the addon: watch the kernel's TCP state (first byte of struct tcp_info).
      const state = n.getsockoptInt(fd, SOL_TCP, TCP_INFO) & 0xff;
      if (state === TCP_ESTABLISHED) done = true;
      else if (state !== TCP_SYN_SENT) {
        const err = n.socketError(fd) || 111;
        throw new TransportError(err, errnoName(err), errnoText(err));
      } else if (Date.now() > deadline) throw new TransportError(110, 'ETIMEDOUT', 'Connection timed out');
      else {
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, 50);
      }
    }
  } catch (e) {
    n.closeFd(fd);
    if (e instanceof TransportError) throw e;
    const err = e as { errno?: number; message: string };
    const errno = typeof err.errno === 'number' ? Math.abs(err.errno) : 0;
    throw new TransportError(errno, errno ? errnoName(errno) : 'EUNKNOWN', errno ? errnoText(errno) : err.message);
  }
  return new net.Socket({ fd, readable: true, writable: true });
}

export interface ListenOptions {
  address: string;
  port: number;
  netns?: string;
}

/** A listening server whose socket was made by the addon (so MD5 keys can be added per peer). */
export async function listenTcp(o: ListenOptions): Promise<{ server: net.Server; fd: number; family: 4 | 6 }> {
  const n = native();
  const family = familyOf(o.address);
  const fd = inNetns(o.netns, () => n.socketTcp(family));
  try {
    n.bindFd(fd, o.address, o.port);
  } catch (e) {
    n.closeFd(fd);
    throw e;
  }
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd, backlog: 64 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, fd, family };
}

/** Strip the v4-mapped prefix Node reports on dual-stack sockets. */
export function normalizeAddress(a: string | undefined): string {
  if (!a) return '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}
