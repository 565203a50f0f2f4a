// Netlink wire primitives: a growable writer for nlmsghdr + fixed header + attributes (RFC 3549 §2.3.2,
// linux/netlink.h: 4-byte alignment, nla_len excludes padding), and a zero-copy attribute walker.
// Host byte order is little-endian on every machine tabby targets (x86-64, arm64); network-order
// fields (ports, addresses) are written explicitly big-endian.
import { parseIp, ipToBuffer, formatIpv6Groups, parseIpv4Number } from '../../common/ip.js';

export const NLMSG_HDRLEN = 16;
export const align4 = (n: number): number => (n + 3) & ~3;

const le32 = (b: Buffer, o: number, v: number): void => {
  b[o] = v & 255;
  b[o + 1] = (v >>> 8) & 255;
  b[o + 2] = (v >>> 16) & 255;
  b[o + 3] = v >>> 24;
};

export class NlWriter {
  buf: Buffer;
  off = 0;

  constructor(initial = 4096) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  /** Start a message; returns its start offset for endMessage(). */
  beginMessage(type: number, flags: number, seq: number, pid = 0): number {
    this.ensure(NLMSG_HDRLEN);
    const start = this.off;
    // byte stores, not Buffer#write*: this runs once per route of a bulk batch
    const b = this.buf;
    le32(b, start, 0);
    b[start + 4] = type & 255;
    b[start + 5] = (type >>> 8) & 255;
    b[start + 6] = flags & 255;
    b[start + 7] = (flags >>> 8) & 255;
    le32(b, start + 8, seq >>> 0);
    le32(b, start + 12, pid >>> 0);
    this.off += NLMSG_HDRLEN;
    return start;
  }

  endMessage(start: number): void {
    this.pad();
    le32(this.buf, start, this.off - start);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.off++] = v & 0xff;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.off);
    this.off += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.off);
    this.off += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.off);
    this.off += 4;
  }
  zeros(n: number): void {
    this.ensure(n);
    this.buf.fill(0, this.off, this.off + n);
    this.off += n;
  }
  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.off);
    this.off += src.length;
  }
  pad(): void {
    const p = align4(this.off) - this.off;
    if (p) this.zeros(p);
  }

  /** Open a (nested) attribute; close with endAttr(). */
  beginAttr(type: number): number {
    this.pad();
    this.ensure(4);
    const start = this.off;
    this.buf.writeUInt16LE(0, start);
    this.buf.writeUInt16LE(type, start + 2);
    this.off += 4;
    return start;
  }

  endAttr(start: number): void {
    this.buf.writeUInt16LE(this.off - start, start);
    this.pad();
  }

  attrU8(type: number, v: number): void {
    const s = this.beginAttr(type);
    this.u8(v);
    this.endAttr(s);
  }
  attrU16(type: number, v: number): void {
    const s = this.beginAttr(type);
    this.u16(v);
    this.endAttr(s);
  }
  attrU16be(type: number, v: number): void {
    const s = this.beginAttr(type);
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.off);
    this.off += 2;
    this.endAttr(s);
  }
  attrU32(type: number, v: number): void {
    const s = this.beginAttr(type);
    this.u32(v);
    this.endAttr(s);
  }
  attrBytes(type: number, v: Uint8Array): void {
    const s = this.beginAttr(type);
    this.bytes(v);
    this.endAttr(s);
  }
  /** NUL-terminated string (IFLA_IFNAME, IFLA_INFO_KIND is written without NUL by iproute2: see attrStringRaw). */
  attrString(type: number, v: string): void {
    const s = this.beginAttr(type);
    const n = Buffer.byteLength(v);
    this.ensure(n + 1);
    this.buf.write(v, this.off, 'utf8');
    this.off += n;
    this.buf[this.off++] = 0;
    this.endAttr(s);
  }
  attrStringRaw(type: number, v: string): void {
    const s = this.beginAttr(type);
    const n = Buffer.byteLength(v);
    this.ensure(n);
    this.buf.write(v, this.off, 'utf8');
    this.off += n;
    this.endAttr(s);
  }
  /** An address attribute from text ("10.0.0.1" or "fd00::1"); IPv4 is written without allocating. */
  attrIp(type: number, ip: string): void {
    const v4 = parseIpv4Number(ip);
    if (v4 < 0) {
      this.attrBytes(type, ipBytes(ip));
      return;
    }
    const s = this.beginAttr(type);
    this.ensure(4);
    this.buf.writeUInt32BE(v4, this.off);
    this.off += 4;
    this.endAttr(s);
  }

  /** A copy of what was written. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.off));
  }
  /** A view of what was written (valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.off);
  }
  reset(): void {
    this.off = 0;
  }
}

/** Address text → 4 or 16 network-order bytes. */
export function ipBytes(ip: string): Buffer {
  const v4 = parseIpv4Number(ip);
  if (v4 >= 0) {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v4, 0);
    return b;
  }
  return ipToBuffer(parseIp(ip));
}

/** 4 or 16 bytes → address text (IPv6 per RFC 5952). */
export function ipText(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new RangeError(`an IP address is 4 or 16 bytes, got ${b.length}`);
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  return formatIpv6Groups(g);
}

export function macBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new RangeError(`invalid MAC address "${mac}"`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function macText(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Calls fn(type, valueOffset, valueLength) for each attribute in buf[start, end). The NLA_F_NESTED/NET_BYTEORDER bits are masked off. */
export function forEachAttr(buf: Buffer, start: number, end: number, fn: (type: number, off: number, len: number) => void): void {
  let o = start;
  while (o + 4 <= end) {
    const len = buf.readUInt16LE(o);
    if (len < 4 || o + len > end) break;
    fn(buf.readUInt16LE(o + 2) & 0x3fff, o + 4, len - 4);
    o += align4(len);
  }
}

/** Attributes as a map type → value view (later duplicates win). */
export function attrMap(buf: Buffer, start: number, end: number): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  forEachAttr(buf, start, end, (t, o, l) => m.set(t, buf.subarray(o, o + l)));
  return m;
}

/** C string value (stops at the first NUL). */
export function cString(v: Buffer): string {
  const z = v.indexOf(0);
  return v.toString('utf8', 0, z < 0 ? v.length : z);
}

/** One parsed netlink message: header fields and a view of its payload. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** payload view (after the 16-byte header) */
  data: Buffer;
}

/** Split a datagram into messages (views, no copies). */
export function splitMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let o = 0;
  while (o + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(o);
    if (len < NLMSG_HDRLEN || o + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(o + 4),
      flags: buf.readUInt16LE(o + 6),
      seq: buf.readUInt32LE(o + 8),
      pid: buf.readUInt32LE(o + 12),
      data: buf.subarray(o + NLMSG_HDRLEN, o + len),
    });
    o += align4(len);
  }
  return out;
}
