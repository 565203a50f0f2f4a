// Path attributes (RFC 4271 §4.3, §5, §6.3) as a table of rows — adding an attribute is adding a row
// (the way BIRD's attrs.c does it). Also: RFC 1997 communities, RFC 4456 ORIGINATOR_ID/CLUSTER_LIST,
// RFC 4360 extended communities, RFC 4760 MP_REACH/MP_UNREACH, RFC 6793 AS4_PATH/AS4_AGGREGATOR with
// the merge of §4.2.3, RFC 8092 large communities, RFC 7606 revised error handling (per-row outcome
// from proto/bgp/registry.json), unknown optional transitive attributes passed on with Partial set.
import { Buffer } from 'node:buffer';
import { formatIp, bufferToIp, parseIp, ipToBuffer } from '../../common/ip.js';
import { ATTRIBUTE_ROWS } from './registry.js';
import { decodePrefixes, encodePrefixes, emptyPrefixList, ipv4ToString } from './prefix.js';
import type { AsPathSegment, CodecCaps, ErrorHandling, MpReach, MpUnreach, PathAttributes, UnknownAttribute } from './types.js';
import {
  AS_TRANS,
  ATTR_FLAG_EXTENDED,
  ATTR_FLAG_OPTIONAL,
  ATTR_FLAG_PARTIAL,
  ATTR_FLAG_TRANSITIVE,
  BgpMessageError,
  HANDLING_RANK,
  familyKey,
} from './types.js';
import { Writer } from './writer.js';

export const ATTR = {
  ORIGIN: 1,
  AS_PATH: 2,
  NEXT_HOP: 3,
  MED: 4,
  LOCAL_PREF: 5,
  ATOMIC_AGGREGATE: 6,
  AGGREGATOR: 7,
  COMMUNITIES: 8,
  ORIGINATOR_ID: 9,
  CLUSTER_LIST: 10,
  MP_REACH_NLRI: 14,
  MP_UNREACH_NLRI: 15,
  EXT_COMMUNITIES: 16,
  AS4_PATH: 17,
  AS4_AGGREGATOR: 18,
  LARGE_COMMUNITY: 32,
} as const;

/** Thrown inside a row's decode: the attribute is malformed with this UPDATE-error subcode. */
class Malformed {
  constructor(
    readonly subcode: number,
    readonly detail: string,
  ) {}
}

interface DecodeCtx {
  caps: CodecCaps;
  attrs: PathAttributes;
  as4Path?: AsPathSegment[];
  as4Aggregator?: { asn: number; address: string };
}

interface Row {
  code: number;
  decode(b: Buffer, off: number, len: number, ctx: DecodeCtx): void;
  /** Write the value (no header); return false when the attribute is absent. */
  encode(w: Writer, a: PathAttributes, caps: CodecCaps): boolean;
}

const u32 = (b: Buffer, o: number): number =>
  (((b[o] as number) << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number)) >>> 0;
const u16 = (b: Buffer, o: number): number => ((b[o] as number) << 8) | (b[o + 1] as number);

function fixedLen(len: number, want: number, name: string): void {
  if (len !== want) throw new Malformed(5, `${name} length ${len}, want ${want}`);
}

/** Dotted quad → uint32, fast path for the encoder; null when not a plain dotted quad. */
function quad(text: string): number | null {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 46) {
      if (digits === 0 || part > 255) return null;
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (ch >= 48 && ch <= 57 && digits < 3) {
      part = part * 10 + (ch - 48);
      digits++;
    } else return null;
  }
  if (dots !== 3 || digits === 0 || part > 255) return null;
  return v * 256 + part;
}

function writeIpv4(w: Writer, text: string): void {
  const q = quad(text);
  if (q !== null) {
    w.u32(q);
    return;
  }
  const ip = parseIp(text);
  if (ip.family !== 4) throw new Error(`not an IPv4 address: ${text}`);
  w.u32(Number(ip.value));
}

function decodeAsPath(b: Buffer, off: number, len: number, asnSize: 2 | 4, allowConfed: boolean): AsPathSegment[] {
  const segs: AsPathSegment[] = [];
  const end = off + len;
  let p = off;
  while (p < end) {
    if (p + 2 > end) throw new Malformed(11, 'AS_PATH segment header truncated');
    const type = b[p] as number;
    const n = b[p + 1] as number;
    if (type < 1 || type > 4 || (!allowConfed && type > 2)) throw new Malformed(11, `AS_PATH segment type ${type}`);
    if (n === 0) throw new Malformed(11, 'AS_PATH segment of length 0');
    p += 2;
    if (p + n * asnSize > end) throw new Malformed(11, 'AS_PATH segment overruns');
    const asns = new Array<number>(n);
    for (let i = 0; i < n; i++, p += asnSize) asns[i] = asnSize === 4 ? u32(b, p) : u16(b, p);
    segs.push({ type: type as 1 | 2 | 3 | 4, asns });
  }
  return segs;
}

function encodeAsPath(w: Writer, segs: readonly AsPathSegment[], asnSize: 2 | 4): void {
  for (const s of segs) {
    // RFC 4271 §4.3: a segment holds at most 255 ASNs; longer ones are split.
    for (let i = 0; i < s.asns.length; i += 255) {
      const chunk = s.asns.slice(i, i + 255);
      w.u8(s.type).u8(chunk.length);
      for (const asn of chunk) {
        if (asnSize === 4) w.u32(asn);
        else w.u16(asn > 0xffff ? AS_TRANS : asn);
      }
    }
  }
}

const needsAs4 = (segs: readonly AsPathSegment[]): boolean => segs.some((s) => s.asns.some((a) => a > 0xffff));

function decodeAddr(b: Buffer, off: number, len: 4 | 16): string {
  if (len === 4) return ipv4ToString(u32(b, off));
  return formatIp(bufferToIp(b.subarray(off, off + 16)));
}

function decodeMpReach(b: Buffer, off: number, len: number, ctx: DecodeCtx): void {
  if (len < 5) throw new Malformed(9, 'MP_REACH_NLRI too short');
  const afi = u16(b, off);
  const safi = b[off + 2] as number;
  const nhLen = b[off + 3] as number;
  if (5 + nhLen > len) throw new Malformed(9, 'MP_REACH_NLRI next hop overruns');
  const nh = off + 4;
  let nextHop: string;
  let linkLocal: string | undefined;
  if (nhLen === 4) nextHop = decodeAddr(b, nh, 4);
  else if (nhLen === 16) nextHop = decodeAddr(b, nh, 16);
  else if (nhLen === 32) {
    nextHop = decodeAddr(b, nh, 16);
    linkLocal = decodeAddr(b, nh + 16, 16);
  } else throw new Malformed(9, `MP_REACH_NLRI next hop length ${nhLen}`);
  const nlriStart = nh + nhLen + 1; // 1 reserved octet (RFC 4760 §3)
  const unicastish = (afi === 1 || afi === 2) && (safi === 1 || safi === 2);
  const nlri = unicastish
    ? decodePrefixes(b, nlriStart, off + len, afi as 1 | 2, safi, ctx.caps.addPathRx.has(familyKey(afi, safi)), 9)
    : emptyPrefixList(afi === 2 ? 2 : 1, safi);
  const mp: MpReach = { afi, safi, nextHop, nlri };
  if (linkLocal !== undefined) mp.linkLocal = linkLocal;
  ctx.attrs.mpReach = mp;
}

function encodeMpReach(w: Writer, mp: MpReach, caps: CodecCaps): void {
  w.u16(mp.afi).u8(mp.safi);
  const nh = ipToBuffer(parseIp(mp.nextHop));
  if (mp.linkLocal !== undefined) {
    const ll = ipToBuffer(parseIp(mp.linkLocal));
    w.u8(nh.length + ll.length)
      .bytes(nh)
      .bytes(ll);
  } else w.u8(nh.length).bytes(nh);
  w.u8(0);
  encodePrefixes(w, mp.nlri, caps.addPathTx.has(familyKey(mp.afi, mp.safi)));
}

function decodeMpUnreach(b: Buffer, off: number, len: number, ctx: DecodeCtx): void {
  if (len < 3) throw new Malformed(9, 'MP_UNREACH_NLRI too short');
  const afi = u16(b, off);
  const safi = b[off + 2] as number;
  const unicastish = (afi === 1 || afi === 2) && (safi === 1 || safi === 2);
  const withdrawn = unicastish
    ? decodePrefixes(b, off + 3, off + len, afi as 1 | 2, safi, ctx.caps.addPathRx.has(familyKey(afi, safi)), 9)
    : emptyPrefixList(afi === 2 ? 2 : 1, safi);
  const mp: MpUnreach = { afi, safi, withdrawn };
  ctx.attrs.mpUnreach = mp;
}

/** The attribute table: one row per attribute tabby knows. */
const ROWS: Row[] = [
  {
    code: ATTR.ORIGIN,
    decode(b, off, len, ctx) {
      fixedLen(len, 1, 'ORIGIN');
      const v = b[off] as number;
      if (v > 2) throw new Malformed(6, `ORIGIN ${v}`);
      ctx.attrs.origin = v;
    },
    encode(w, a) {
      if (a.origin === undefined) return false;
      w.u8(a.origin);
      return true;
    },
  },
  {
    code: ATTR.AS_PATH,
    decode(b, off, len, ctx) {
      ctx.attrs.asPath = decodeAsPath(b, off, len, ctx.caps.as4 ? 4 : 2, true);
    },
    encode(w, a, caps) {
      if (!a.asPath) return false;
      encodeAsPath(w, a.asPath, caps.as4 ? 4 : 2);
      return true;
    },
  },
  {
    code: ATTR.NEXT_HOP,
    decode(b, off, len, ctx) {
      fixedLen(len, 4, 'NEXT_HOP');
      const nh = u32(b, off);
      // RFC 4271 §6.3: a syntactically incorrect NEXT_HOP (0.0.0.0, multicast, class E) → 3/8.
      if (nh === 0 || nh >= 0xe0000000) throw new Malformed(8, `NEXT_HOP ${ipv4ToString(nh)}`);
      ctx.attrs.nextHop = ipv4ToString(nh);
    },
    encode(w, a) {
      if (a.nextHop === undefined) return false;
      writeIpv4(w, a.nextHop);
      return true;
    },
  },
  {
    code: ATTR.MED,
    decode(b, off, len, ctx) {
      fixedLen(len, 4, 'MULTI_EXIT_DISC');
      ctx.attrs.med = u32(b, off);
    },
    encode(w, a) {
      if (a.med === undefined) return false;
      w.u32(a.med);
      return true;
    },
  },
  {
    code: ATTR.LOCAL_PREF,
    decode(b, off, len, ctx) {
      fixedLen(len, 4, 'LOCAL_PREF');
      ctx.attrs.localPref = u32(b, off);
    },
    encode(w, a) {
      if (a.localPref === undefined) return false;
      w.u32(a.localPref);
      return true;
    },
  },
  {
    code: ATTR.ATOMIC_AGGREGATE,
    decode(_b, _off, len, ctx) {
      fixedLen(len, 0, 'ATOMIC_AGGREGATE');
      ctx.attrs.atomicAggregate = true;
    },
    encode(_w, a) {
      return a.atomicAggregate === true;
    },
  },
  {
    code: ATTR.AGGREGATOR,
    decode(b, off, len, ctx) {
      const as4 = ctx.caps.as4;
      fixedLen(len, as4 ? 8 : 6, 'AGGREGATOR');
      ctx.attrs.aggregator = as4
        ? { asn: u32(b, off), address: ipv4ToString(u32(b, off + 4)) }
        : { asn: u16(b, off), address: ipv4ToString(u32(b, off + 2)) };
    },
    encode(w, a, caps) {
      if (!a.aggregator) return false;
      if (caps.as4) w.u32(a.aggregator.asn);
      else w.u16(a.aggregator.asn > 0xffff ? AS_TRANS : a.aggregator.asn);
      writeIpv4(w, a.aggregator.address);
      return true;
    },
  },
  {
    code: ATTR.COMMUNITIES,
    decode(b, off, len, ctx) {
      if (len % 4 !== 0) throw new Malformed(5, `COMMUNITIES length ${len}`);
      const c = new Array<number>(len / 4);
      for (let i = 0; i < c.length; i++) c[i] = u32(b, off + 4 * i);
      ctx.attrs.communities = c;
    },
    encode(w, a) {
      if (!a.communities) return false;
      for (const c of a.communities) w.u32(c);
      return true;
    },
  },
  {
    code: ATTR.ORIGINATOR_ID,
    decode(b, off, len, ctx) {
      fixedLen(len, 4, 'ORIGINATOR_ID');
      ctx.attrs.originatorId = ipv4ToString(u32(b, off));
    },
    encode(w, a) {
      if (a.originatorId === undefined) return false;
      writeIpv4(w, a.originatorId);
      return true;
    },
  },
  {
    code: ATTR.CLUSTER_LIST,
    decode(b, off, len, ctx) {
      if (len % 4 !== 0) throw new Malformed(5, `CLUSTER_LIST length ${len}`);
      const c: string[] = [];
      for (let i = 0; i < len; i += 4) c.push(ipv4ToString(u32(b, off + i)));
      ctx.attrs.clusterList = c;
    },
    encode(w, a) {
      if (!a.clusterList) return false;
      for (const c of a.clusterList) writeIpv4(w, c);
      return true;
    },
  },
  {
    code: ATTR.MP_REACH_NLRI,
    decode: decodeMpReach,
    encode(w, a, caps) {
      if (!a.mpReach) return false;
      encodeMpReach(w, a.mpReach, caps);
      return true;
    },
  },
  {
    code: ATTR.MP_UNREACH_NLRI,
    decode: decodeMpUnreach,
    encode(w, a, caps) {
      if (!a.mpUnreach) return false;
      const mp = a.mpUnreach;
      w.u16(mp.afi).u8(mp.safi);
      encodePrefixes(w, mp.withdrawn, caps.addPathTx.has(familyKey(mp.afi, mp.safi)));
      return true;
    },
  },
  {
    code: ATTR.EXT_COMMUNITIES,
    decode(b, off, len, ctx) {
      if (len % 8 !== 0) throw new Malformed(5, `EXTENDED_COMMUNITIES length ${len}`);
      const c: bigint[] = [];
      for (let i = 0; i < len; i += 8) c.push(b.readBigUInt64BE(off + i));
      ctx.attrs.extCommunities = c;
    },
    encode(w, a) {
      if (!a.extCommunities) return false;
      for (const c of a.extCommunities) w.u64(c);
      return true;
    },
  },
  {
    code: ATTR.AS4_PATH,
    decode(b, off, len, ctx) {
      // RFC 6793 §6: confed segments in AS4_PATH are discarded; a malformed AS4_PATH is discarded.
      if (ctx.caps.as4) return; // §4.1: a NEW speaker ignores AS4_PATH from a NEW speaker
      ctx.as4Path = decodeAsPath(b, off, len, 4, true).filter((s) => s.type <= 2);
    },
    encode(w, a, caps) {
      if (caps.as4 || !a.asPath || !needsAs4(a.asPath)) return false;
      encodeAsPath(
        w,
        a.asPath.filter((s) => s.type <= 2),
        4,
      );
      return true;
    },
  },
  {
    code: ATTR.AS4_AGGREGATOR,
    decode(b, off, len, ctx) {
      if (ctx.caps.as4) return;
      fixedLen(len, 8, 'AS4_AGGREGATOR');
      ctx.as4Aggregator = { asn: u32(b, off), address: ipv4ToString(u32(b, off + 4)) };
    },
    encode(w, a, caps) {
      if (caps.as4 || !a.aggregator || a.aggregator.asn <= 0xffff) return false;
      w.u32(a.aggregator.asn);
      writeIpv4(w, a.aggregator.address);
      return true;
    },
  },
  {
    code: ATTR.LARGE_COMMUNITY,
    decode(b, off, len, ctx) {
      if (len % 12 !== 0 || len === 0) throw new Malformed(5, `LARGE_COMMUNITY length ${len}`);
      const c = [];
      for (let i = 0; i < len; i += 12) c.push({ global: u32(b, off + i), local1: u32(b, off + i + 4), local2: u32(b, off + i + 8) });
      ctx.attrs.largeCommunities = c;
    },
    encode(w, a) {
      if (!a.largeCommunities) return false;
      for (const c of a.largeCommunities) w.u32(c.global).u32(c.local1).u32(c.local2);
      return true;
    },
  },
];

const ROW_BY_CODE: (Row | undefined)[] = new Array(256).fill(undefined);
for (const r of ROWS) ROW_BY_CODE[r.code] = r;

/** Well-known / optional / transitive bits a row must carry (RFC 4271 §5, §6.3). */
function expectedFlags(code: number): number {
  const row = ATTRIBUTE_ROWS[code];
  if (!row) return -1;
  if (row.flags === 'wellknown') return ATTR_FLAG_TRANSITIVE;
  if (row.flags === 'optional') return ATTR_FLAG_OPTIONAL;
  return ATTR_FLAG_OPTIONAL | ATTR_FLAG_TRANSITIVE;
}

function flagsFor(code: number): number {
  const f = expectedFlags(code);
  return f < 0 ? ATTR_FLAG_OPTIONAL | ATTR_FLAG_TRANSITIVE : f;
}

function countAsns(segs: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of segs) n += s.type === 2 ? s.asns.length : s.type === 1 ? 1 : 0;
  return n;
}

/** RFC 6793 §4.2.3: reconstruct the real AS path from AS_PATH (with AS_TRANS) and AS4_PATH. */
function mergeAs4(ctx: DecodeCtx): void {
  const a = ctx.attrs;
  if (ctx.as4Aggregator) {
    if (a.aggregator && a.aggregator.asn !== AS_TRANS) return; // ignore AS4_AGGREGATOR and AS4_PATH
    a.aggregator = ctx.as4Aggregator;
  }
  if (!ctx.as4Path || !a.asPath) return;
  const n2 = countAsns(a.asPath);
  const n4 = countAsns(ctx.as4Path);
  if (n2 < n4) return; // AS4_PATH is ignored
  // Take the leading (n2 - n4) ASNs of AS_PATH (counted as above), then all of AS4_PATH.
  let keep = n2 - n4;
  const out: AsPathSegment[] = [];
  for (const s of a.asPath) {
    if (keep <= 0 && s.type <= 2) break;
    if (s.type >= 3) {
      out.push(s);
      continue;
    }
    if (s.type === 1) {
      out.push(s);
      keep -= 1;
    } else {
      const take = Math.min(keep, s.asns.length);
      out.push({ type: 2, asns: s.asns.slice(0, take) });
      keep -= take;
    }
  }
  for (const s of ctx.as4Path) out.push(s);
  // Join adjacent AS_SEQUENCEs created by the split.
  const joined: AsPathSegment[] = [];
  for (const s of out) {
    const last = joined[joined.length - 1];
    if (last && last.type === 2 && s.type === 2 && last.asns.length + s.asns.length <= 255) last.asns = last.asns.concat(s.asns);
    else joined.push({ type: s.type, asns: s.asns.slice() });
  }
  a.asPath = joined;
}

export interface DecodedAttributes {
  attrs: PathAttributes;
  errors: BgpMessageError[];
  treatAsWithdraw: boolean;
}

const EMPTY = Buffer.alloc(0);
const SEEN = new Uint8Array(256); // reused: decodeAttributes is synchronous and not re-entrant

/**
 * Decode the path attribute section b[start, end). Session-reset errors are thrown; the others
 * (RFC 7606 treat-as-withdraw / attribute-discard) are returned in `errors`.
 * `hasNlri` = the UPDATE carries IPv4 NLRI (NEXT_HOP then mandatory).
 */
/** The bytes of b[from, to) as a Buffer of their own (an attribute's bytes for a NOTIFICATION's data). */
const copyOf = (b: Buffer, from: number, to: number): Buffer => Buffer.from(b.subarray(from, to));

// The errors of the decodeAttributes call in progress (it is synchronous and not re-entrant, as SEEN).
let errorsOf: BgpMessageError[] | undefined;
let worstOf = 0;

/** An attribute error: session-reset ones are thrown, the others collected for the UPDATE. */
function fail(code: number, subcode: number, data: Buffer, handling: ErrorHandling, detail: string): void {
  const e = new BgpMessageError(code, subcode, data, handling, detail);
  if (handling === 'session-reset') throw e;
  (errorsOf ??= []).push(e);
  worstOf = Math.max(worstOf, HANDLING_RANK[handling]);
}

/** The attribute codes of b[start, end) in wire order, each once (walked again only when out of order). */
function wireCodes(b: Buffer, start: number, end: number): number[] {
  const codes: number[] = [];
  for (let p = start; p + 3 <= end; ) {
    const ext = ((b[p] as number) & ATTR_FLAG_EXTENDED) !== 0;
    if (ext && p + 4 > end) break;
    const code = b[p + 1] as number;
    if (!codes.includes(code)) codes.push(code);
    p += ext ? 4 + u16(b, p + 2) : 3 + (b[p + 2] as number);
  }
  return codes;
}

export function decodeAttributes(b: Buffer, start: number, end: number, caps: CodecCaps, hasNlri: boolean): DecodedAttributes {
  const attrs: PathAttributes = {};
  const ctx: DecodeCtx = { caps, attrs };
  // No closure or array per UPDATE unless something is wrong or out of order: this runs for every
  // UPDATE of a feed (a `fail` closure, a `raw` closure per attribute and the codes list were ~40 %
  // of the decoder's allocation).
  errorsOf = undefined;
  worstOf = 0;
  const seen = SEEN;
  seen.fill(0);
  let outOfOrder = false;
  let extended: number[] | undefined;
  let lastCode = -1;
  let p = start;
  while (p < end) {
    if (p + 3 > end) {
      fail(3, 1, EMPTY, 'session-reset', 'attribute header truncated');
      break;
    }
    const flags = b[p] as number;
    const code = b[p + 1] as number;
    const ext = (flags & ATTR_FLAG_EXTENDED) !== 0;
    const hdr = ext ? 4 : 3;
    if (p + hdr > end) {
      fail(3, 1, EMPTY, 'session-reset', 'attribute header truncated');
      break;
    }
    const len = ext ? u16(b, p + 2) : (b[p + 2] as number);
    const off = p + hdr;
    if (off + len > end) {
      fail(3, 1, EMPTY, 'session-reset', `attribute ${code} length ${len} overruns the attribute section`);
      break;
    }
    const attrStart = p;
    p = off + len;
    if (code <= lastCode) outOfOrder = true;
    lastCode = code;
    if (ext && len <= 255) (extended ??= []).push(code);
    if (seen[code]) {
      // RFC 7606 §3(g): repeated MP attributes reset the session; other repeats are discarded.
      if (code === ATTR.MP_REACH_NLRI || code === ATTR.MP_UNREACH_NLRI) fail(3, 1, EMPTY, 'session-reset', `repeated attribute ${code}`);
      continue;
    }
    seen[code] = 1;
    const row = ROW_BY_CODE[code];
    const meta = ATTRIBUTE_ROWS[code];
    if (!row || !meta) {
      if ((flags & ATTR_FLAG_OPTIONAL) === 0) {
        fail(3, 2, copyOf(b, attrStart, off + len), 'session-reset', `unrecognized well-known attribute ${code}`); // RFC 4271 §6.3
        continue;
      }
      if (flags & ATTR_FLAG_TRANSITIVE) (attrs.unknown ??= []).push({ flags, code, value: Buffer.from(b.subarray(off, off + len)) });
      continue; // optional non-transitive unknown: quietly ignored
    }
    if ((flags & (ATTR_FLAG_OPTIONAL | ATTR_FLAG_TRANSITIVE)) !== expectedFlags(code)) {
      fail(3, 4, copyOf(b, attrStart, off + len), meta.onError, `attribute ${meta.name} flags 0x${flags.toString(16)}`);
      continue;
    }
    try {
      row.decode(b, off, len, ctx);
    } catch (e) {
      if (!(e instanceof Malformed)) throw e;
      fail(3, e.subcode, copyOf(b, attrStart, off + len), meta.onError, `${meta.name}: ${e.detail}`);
    }
  }
  if (outOfOrder) attrs.wireOrder = wireCodes(b, start, end);
  if (extended) attrs.wireExtended = extended;
  if (!caps.as4) mergeAs4(ctx);
  // RFC 4271 §6.3 / RFC 7606 §3(d): missing well-known attributes when there is NLRI → treat-as-withdraw.
  if (hasNlri || attrs.mpReach) {
    const missing = attrs.origin === undefined ? 1 : attrs.asPath === undefined ? 2 : hasNlri && attrs.nextHop === undefined ? 3 : 0;
    if (missing && !seen[missing]) fail(3, 3, Buffer.from([missing]), 'treat-as-withdraw', `missing well-known attribute ${missing}`);
  }
  return { attrs, errors: errorsOf ?? [], treatAsWithdraw: worstOf >= HANDLING_RANK['treat-as-withdraw'] };
}

function writeAttr(w: Writer, scratch: Writer, code: number, flags: number, forceExt: boolean): void {
  const len = scratch.pos;
  const ext = forceExt || len > 255;
  w.u8(ext ? flags | ATTR_FLAG_EXTENDED : flags & ~ATTR_FLAG_EXTENDED).u8(code);
  if (ext) w.u16(len);
  else w.u8(len);
  w.bytes(scratch.buf.subarray(0, len));
}

const scratchWriter = new Writer(4096);

/** Encode the attribute section (no length prefix) into w. Order: `wireOrder` if given, else ascending code. */
const ASCENDING: readonly number[] = ROWS.map((r) => r.code).sort((x, y) => x - y);
const NO_CODES: ReadonlySet<number> = new Set();

export function encodeAttributes(w: Writer, a: PathAttributes, caps: CodecCaps): void {
  const unknown = new Map<number, UnknownAttribute>();
  for (const u of a.unknown ?? []) unknown.set(u.code, u);
  let codes: readonly number[];
  if (!a.wireOrder && unknown.size === 0) {
    codes = ASCENDING; // the common case: no per-message allocation for the order
  } else if (a.wireOrder) {
    const order = a.wireOrder.slice();
    for (const r of ROWS) if (!order.includes(r.code)) order.push(r.code);
    for (const c of unknown.keys()) if (!order.includes(c)) order.push(c);
    codes = order;
  } else {
    codes = ROWS.map((r) => r.code)
      .concat([...unknown.keys()])
      .sort((x, y) => x - y);
  }
  const ext = a.wireExtended ? new Set(a.wireExtended) : NO_CODES;
  for (const code of codes) {
    const s = scratchWriter;
    s.pos = 0;
    const row = ROW_BY_CODE[code];
    if (row) {
      if (!row.encode(s, a, caps)) continue;
      writeAttr(w, s, code, flagsFor(code), ext.has(code));
      continue;
    }
    const u = unknown.get(code);
    if (!u || !(u.flags & ATTR_FLAG_OPTIONAL) || !(u.flags & ATTR_FLAG_TRANSITIVE)) continue;
    s.bytes(u.value);
    // RFC 4271 §5: an unrecognized optional transitive attribute is passed on with Partial set.
    writeAttr(w, s, code, u.flags | ATTR_FLAG_PARTIAL, ext.has(code));
  }
}
