// Compact prefix lists (see types.ts "How a prefix is represented"): NLRI encoding of RFC 4271 §4.3
// and RFC 4760 §5 (length in bits + minimal octets), with optional RFC 7911 path identifiers.
import { Buffer } from 'node:buffer';
import { parseCidr, formatIp, bufferToIp } from '../../common/ip.js';
import type { Afi, PrefixList } from './types.js';
import { BgpMessageError } from './types.js';
import type { Writer } from './writer.js';

const EMPTY_U32 = new Uint32Array(0);
const EMPTY_U8 = new Uint8Array(0);

// Decoded lists are views into shared 64 KiB slabs (as Buffer's pool does for small buffers): a
// typed array of its own is an ArrayBuffer, a malloc'd store and a GC-tracked extension each — two
// per UPDATE, ~480 B of garbage per UPDATE on the ingest path. A slab is never reused; it is freed
// with the last view into it.
const SLAB = 64 * 1024;
let slab = new ArrayBuffer(SLAB);
let slabOff = 0;

function slabBytes(bytes: number): number {
  if (slabOff + bytes > SLAB) {
    slab = new ArrayBuffer(SLAB);
    slabOff = 0;
  }
  const at = slabOff;
  slabOff = (slabOff + bytes + 3) & ~3; // keep the next Uint32Array aligned
  return at;
}

function slabU32(n: number): Uint32Array {
  if (n * 4 > SLAB / 8) return new Uint32Array(n);
  const at = slabBytes(n * 4);
  return new Uint32Array(slab, at, n);
}

function slabU8(n: number): Uint8Array {
  if (n > SLAB / 8) return new Uint8Array(n);
  const at = slabBytes(n);
  return new Uint8Array(slab, at, n);
}

export function emptyPrefixList(afi: Afi, safi = 1): PrefixList {
  return { afi, safi, count: 0, addrs: EMPTY_U32, lens: EMPTY_U8, pathIds: null };
}

/** Host-order mask for an IPv4 prefix length. */
function mask4(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** One number per IPv4 prefix (exact in a double): addr * 64 + len. */
export function prefixKey4(addr: number, len: number): number {
  return addr * 64 + len;
}

/** A Map/Set key for prefix i of the list: a number for IPv4, a short string for IPv6 (path id excluded). */
export function prefixKey(list: PrefixList, i: number): number | string {
  if (list.afi === 1) return (list.addrs[i] as number) * 64 + (list.lens[i] as number);
  const a = list.addrs;
  const b = i * 4;
  return `${(a[b] as number).toString(16)}:${(a[b + 1] as number).toString(16)}:${(a[b + 2] as number).toString(16)}:${(a[b + 3] as number).toString(16)}/${list.lens[i]}`;
}

export function ipv4ToString(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** 'a.b.c.d/len' or IPv6 'x::/len' for prefix i. */
export function prefixToString(list: PrefixList, i: number): string {
  if (list.afi === 1) return `${ipv4ToString(list.addrs[i] as number)}/${list.lens[i]}`;
  const b = Buffer.allocUnsafe(16);
  for (let w = 0; w < 4; w++) b.writeUInt32BE(list.addrs[i * 4 + w] as number, w * 4);
  return `${formatIp(bufferToIp(b))}/${list.lens[i]}`;
}

export function prefixListToStrings(list: PrefixList): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.count; i++) out.push(prefixToString(list, i));
  return out;
}

/** Build a list from CIDR strings of one family (host bits cleared). Throws InvalidAddress on bad text. */
export function prefixListFromStrings(afi: Afi, cidrs: readonly string[], pathIds?: readonly number[], safi = 1): PrefixList {
  const n = cidrs.length;
  const words = afi === 1 ? 1 : 4;
  const list: PrefixList = {
    afi,
    safi,
    count: n,
    addrs: new Uint32Array(n * words),
    lens: new Uint8Array(n),
    pathIds: pathIds ? Uint32Array.from(pathIds) : null,
  };
  for (let i = 0; i < n; i++) {
    const c = parseCidr(cidrs[i] as string);
    if ((c.family === 4) !== (afi === 1)) throw new Error(`prefix ${cidrs[i]} is not of AFI ${afi}`);
    list.lens[i] = c.prefixLen;
    const v = c.network;
    for (let w = 0; w < words; w++) list.addrs[i * words + w] = Number((v >> BigInt((words - 1 - w) * 32)) & 0xffffffffn);
  }
  return list;
}

/** Concatenate lists of one family. */
export function concatPrefixLists(lists: readonly PrefixList[]): PrefixList {
  const first = lists[0];
  if (!first) throw new Error('concatPrefixLists: no lists');
  const words = first.afi === 1 ? 1 : 4;
  const n = lists.reduce((s, l) => s + l.count, 0);
  const withIds = lists.some((l) => l.pathIds);
  const out: PrefixList = {
    afi: first.afi,
    safi: first.safi,
    count: n,
    addrs: new Uint32Array(n * words),
    lens: new Uint8Array(n),
    pathIds: withIds ? new Uint32Array(n) : null,
  };
  let k = 0;
  for (const l of lists) {
    out.addrs.set(l.addrs.subarray(0, l.count * words), k * words);
    out.lens.set(l.lens.subarray(0, l.count), k);
    if (out.pathIds && l.pathIds) out.pathIds.set(l.pathIds.subarray(0, l.count), k);
    k += l.count;
  }
  return out;
}

/**
 * Decode NLRI from buf[start, end). Throws BgpMessageError(3, errSubcode) on a length > max bits or
 * an overrun. Two passes: count+validate, then fill typed arrays (no per-prefix objects).
 */
export function decodePrefixes(
  buf: Uint8Array,
  start: number,
  end: number,
  afi: Afi,
  safi: number,
  addPath: boolean,
  errSubcode = 10,
): PrefixList {
  const maxBits = afi === 1 ? 32 : 128;
  let n = 0;
  let p = start;
  while (p < end) {
    if (addPath) p += 4;
    if (p >= end) throw new BgpMessageError(3, errSubcode, Buffer.alloc(0), 'session-reset', 'NLRI truncated');
    const len = buf[p] as number;
    if (len > maxBits) throw new BgpMessageError(3, errSubcode, Buffer.alloc(0), 'session-reset', `NLRI prefix length ${len} > ${maxBits}`);
    p += 1 + ((len + 7) >> 3);
    n++;
  }
  if (p !== end) throw new BgpMessageError(3, errSubcode, Buffer.alloc(0), 'session-reset', 'NLRI overruns its field');
  if (n === 0) return emptyPrefixList(afi, safi);
  const words = afi === 1 ? 1 : 4;
  const addrs = slabU32(n * words);
  const lens = slabU8(n);
  const pathIds = addPath ? slabU32(n) : null;
  p = start;
  for (let i = 0; i < n; i++) {
    if (pathIds) {
      pathIds[i] =
        (((buf[p] as number) << 24) | ((buf[p + 1] as number) << 16) | ((buf[p + 2] as number) << 8) | (buf[p + 3] as number)) >>> 0;
      p += 4;
    }
    const len = buf[p++] as number;
    lens[i] = len;
    const nb = (len + 7) >> 3;
    if (words === 1) {
      let a = 0;
      if (nb > 0) a |= (buf[p] as number) << 24;
      if (nb > 1) a |= (buf[p + 1] as number) << 16;
      if (nb > 2) a |= (buf[p + 2] as number) << 8;
      if (nb > 3) a |= buf[p + 3] as number;
      addrs[i] = (a & mask4(len)) >>> 0;
    } else {
      for (let w = 0; w < 4; w++) {
        const wl = Math.min(32, Math.max(0, len - w * 32));
        let a = 0;
        for (let b = 0; b < 4; b++) {
          const o = w * 4 + b;
          if (o < nb) a |= (buf[p + o] as number) << (24 - 8 * b);
        }
        addrs[i * 4 + w] = (a & mask4(wl)) >>> 0;
      }
    }
    p += nb;
  }
  return { afi, safi, count: n, addrs, lens, pathIds };
}

/** Bytes prefix i takes on the wire. */
export function prefixWireSize(list: PrefixList, i: number, addPath: boolean): number {
  return (addPath ? 4 : 0) + 1 + (((list.lens[i] as number) + 7) >> 3);
}

/** Encode prefixes [from, to) of the list (path id 0 when addPath and the list has none). */
export function encodePrefixes(w: Writer, list: PrefixList, addPath: boolean, from = 0, to = list.count): void {
  const words = list.afi === 1 ? 1 : 4;
  for (let i = from; i < to; i++) {
    if (addPath) w.u32(list.pathIds ? (list.pathIds[i] as number) : 0);
    const len = list.lens[i] as number;
    w.u8(len);
    const nb = (len + 7) >> 3;
    for (let o = 0; o < nb; o++) {
      const word = list.addrs[i * words + (o >> 2)] as number;
      w.u8(word >>> (24 - 8 * (o & 3)));
    }
  }
}
