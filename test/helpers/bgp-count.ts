// Cheap counting BGP peers for benchmarks: a client opens an iBGP session (raw TCP, OPEN with
// 4-octet AS and IPv4 unicast, KEEPALIVEs) and counts, per session, the distinct prefixes of the
// feed (test/helpers/bgp-feed.ts) it currently holds — UPDATE frames are walked, not decoded into
// objects: withdrawn routes and NLRI only (IPv4, no ADD-PATH), attributes skipped by their length.
// The same counting for every reflector under test; 50 of them in one process cost little CPU.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { encodeMessage, encodeKeepalive } from '../../src/bgp/codec/message.js';
import { AS4_CAPS } from '../../src/bgp/codec/types.js';
import { FEED_BASE } from './bgp-feed.js';

export interface CountingPeerOptions {
  local: string;
  remote: string;
  asn: number;
  /** How many feed prefixes make the goal. */
  goal: number;
  /** Called once when the count first reaches the goal (epoch ms, sub-ms precision). */
  onGoal?: (atMs: number) => void;
}

const nowMs = (): number => performance.timeOrigin + performance.now();

/** Index of a feed prefix (one per /24 block from FEED_BASE), or -1. */
export function feedIndex(addr: number, goal: number): number {
  const i = (addr - FEED_BASE) >>> 8;
  return addr >= FEED_BASE && i < goal ? i : -1;
}

export class CountingPeer {
  established = false;
  count = 0;
  /** Highest count seen and the time the goal was reached (epoch ms), 0 before. */
  goalAtMs = 0;
  updates = 0;
  bytes = 0;
  closed: string | undefined = undefined;
  private readonly seen: Uint8Array;
  private readonly sock: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private keepalive: NodeJS.Timeout | undefined;

  constructor(private readonly o: CountingPeerOptions) {
    this.seen = new Uint8Array(o.goal);
    this.sock = net.connect({ host: o.remote, port: 179, localAddress: o.local });
    this.sock.setNoDelay(true);
    this.sock.on('connect', () => {
      const open = encodeMessage(
        {
          type: 'open',
          version: 4,
          asn: o.asn,
          holdTime: 240,
          routerId: o.local,
          capabilities: [{ kind: 'multiprotocol', afi: 1, safi: 1 }, { kind: 'route-refresh' }, { kind: 'as4', asn: o.asn }],
        },
        AS4_CAPS,
      );
      this.sock.write(open);
    });
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (e) => {
      this.closed = e.message;
    });
    this.sock.on('close', () => {
      this.closed ??= 'closed';
      clearInterval(this.keepalive);
    });
  }

  private onData(d: Buffer): void {
    this.bytes += d.length;
    const b = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    let off = 0;
    while (b.length - off >= 19) {
      const len = b.readUInt16BE(off + 16);
      if (b.length - off < len) break;
      const type = b[off + 18]!;
      if (type === 1) {
        // OPEN: answer with a KEEPALIVE; the session is up when theirs arrives.
        this.sock.write(encodeKeepalive());
      } else if (type === 4) {
        if (!this.established) {
          this.established = true;
          this.keepalive = setInterval(() => this.sock.write(encodeKeepalive()), 30_000);
          this.keepalive.unref();
        }
      } else if (type === 2) {
        this.updates++;
        this.onUpdate(b, off + 19, off + len);
      } else if (type === 3) {
        this.closed = `NOTIFICATION ${b[off + 19]}/${b[off + 20]}`;
      }
      off += len;
    }
    this.buf = off < b.length ? Buffer.from(b.subarray(off)) : Buffer.alloc(0);
  }

  private onUpdate(b: Buffer, p: number, end: number): void {
    const wlen = b.readUInt16BE(p);
    p += 2;
    this.walk(b, p, p + wlen, false);
    p += wlen;
    const alen = b.readUInt16BE(p);
    p += 2 + alen;
    this.walk(b, p, end, true);
  }

  private walk(b: Buffer, p: number, end: number, add: boolean): void {
    const goal = this.o.goal;
    while (p < end) {
      const len = b[p++]!;
      const n = (len + 7) >> 3;
      let a = 0;
      for (let j = 0; j < 4; j++) a = (a << 8) | (j < n ? b[p + j]! : 0);
      p += n;
      const i = feedIndex(a >>> 0, goal);
      if (i < 0) continue;
      if (add) {
        if (this.seen[i] === 0) {
          this.seen[i] = 1;
          if (++this.count === goal && this.goalAtMs === 0) {
            this.goalAtMs = nowMs();
            this.o.onGoal?.(this.goalAtMs);
          }
        }
      } else if (this.seen[i] === 1) {
        this.seen[i] = 0;
        this.count--;
      }
    }
  }

  close(): void {
    clearInterval(this.keepalive);
    this.sock.destroy();
  }
}
