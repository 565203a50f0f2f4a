// BFD over UDP, single hop (RFC 5881): Control packets to port 3784 from a source port in
// 49152–65535, sent with TTL/hop limit 255 (§5), and on receive only datagrams with TTL 255 are
// accepted — a kernel socket filter (native addon, attachTtlFilter) drops the rest before Node sees
// them, since Linux does not apply IP_MINTTL to UDP. Sockets are made by the addon so the filter and
// TTL are set before the first datagram, then wrapped by node:dgram.
import dgram from 'node:dgram';
import type { Buffer } from 'node:buffer';
import { native, SOL_IP, SOL_IPV6, IP_TTL, IPV6_UNICAST_HOPS } from '../native/index.js';
import type { BfdTransport } from './service.js';

export const BFD_CONTROL_PORT = 3784;
const IPV6_V6ONLY = 26;
const TTL = 255;

export interface UdpTransportOptions {
  /** Receive port (3784; tests may use another). */
  port?: number;
  /** Peer's port (3784). */
  peerPort?: number;
  /** Families to open (default both; a family whose socket cannot be opened is skipped with a reason). */
  families?: (4 | 6)[];
}

/** Open the receive and transmit sockets; throws (errno) when the receive port cannot be bound. */
export function udpTransport(o: UdpTransportOptions = {}): BfdTransport & { problems: string[] } {
  const n = native();
  const port = o.port ?? BFD_CONTROL_PORT;
  const peerPort = o.peerPort ?? BFD_CONTROL_PORT;
  const sockets: dgram.Socket[] = [];
  const tx = new Map<4 | 6, dgram.Socket>();
  const problems: string[] = [];
  let handler: (peer: string, b: Buffer) => void = () => undefined;
  let inFlight = 0;

  const wrap = (fd: number, family: 4 | 6): dgram.Socket => {
    const s = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    s.on('error', () => undefined); // ICMP errors of a connectionless socket: the detection timer handles loss
    s.bind({ fd });
    sockets.push(s);
    return s;
  };
  const open = (family: 4 | 6, bindPort: number): number => {
    const fd = n.socketUdp(family);
    try {
      if (family === 6) n.setsockoptInt(fd, SOL_IPV6, IPV6_V6ONLY, 1);
      if (family === 4) n.setsockoptInt(fd, SOL_IP, IP_TTL, TTL);
      else n.setsockoptInt(fd, SOL_IPV6, IPV6_UNICAST_HOPS, TTL);
      n.attachTtlFilter(fd, family, TTL);
      n.bindFd(fd, family === 4 ? '0.0.0.0' : '::', bindPort);
      return fd;
    } catch (e) {
      n.closeFd(fd);
      throw e;
    }
  };

  for (const family of o.families ?? ([4, 6] as const)) {
    let rxFd: number;
    try {
      rxFd = open(family, port);
    } catch (e) {
      // IPv4 is required by callers that ask for it; IPv6 may be absent on the host.
      if (family === 4 || o.families?.includes(6))
        throw new Error(`BFD: cannot listen on UDP port ${port} (IPv${family}): ${(e as Error).message}`);
      problems.push(`BFD over IPv6 unavailable: ${(e as Error).message}`);
      continue;
    }
    const rx = wrap(rxFd, family);
    rx.on('message', (msg, rinfo) => handler(rinfo.address, msg));
    // RFC 5881 §4: source port 49152..65535, the same for the life of the session (one per family here).
    let txFd: number | undefined;
    for (let attempt = 0; attempt < 64 && txFd === undefined; attempt++) {
      try {
        txFd = open(family, 49152 + Math.floor(Math.random() * 16384));
      } catch {
        /* taken: another */
      }
    }
    if (txFd === undefined) throw new Error(`BFD: no free source port in 49152..65535 (IPv${family})`);
    const t = wrap(txFd, family);
    t.on('message', (msg, rinfo) => handler(rinfo.address, msg)); // some peers answer to the source port
    tx.set(family, t);
  }

  return {
    problems,
    send(peer, packet) {
      const s = tx.get(peer.includes(':') ? 6 : 4);
      if (!s) throw new Error(`no BFD socket for ${peer}`);
      inFlight++;
      s.send(packet, peerPort, peer, () => {
        inFlight--;
      });
    },
    onPacket(fn) {
      handler = fn;
    },
    async close() {
      // The AdminDown packets of the sessions just removed must leave before the sockets close.
      for (let i = 0; i < 50 && inFlight > 0; i++) await new Promise((r) => setTimeout(r, 5));
      await Promise.all(
        sockets.map(
          (s) =>
            new Promise<void>((r) => {
              try {
                s.close(() => r());
              } catch {
                r();
              }
            }),
        ),
      );
    },
  };
}
