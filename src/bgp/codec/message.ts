// Whole messages: the RFC 4271 §4.1 header and decode/encode of every message type — OPEN (open.ts),
// UPDATE (§4.3; attributes in attrs.ts), NOTIFICATION (§4.5), KEEPALIVE (§4.4), ROUTE-REFRESH
// (RFC 2918, RFC 7313 subtypes). decodeMessage throws only BgpMessageError.
import { Buffer } from 'node:buffer';
import { Parser } from './bp.js';
import { decodeAttributes, encodeAttributes } from './attrs.js';
import { decodeOpen, encodeOpen } from './open.js';
import { decodePrefixes, emptyPrefixList, encodePrefixes } from './prefix.js';
import type { BgpMessage, CodecCaps, NotificationMessage, RouteRefreshMessage, UpdateMessage } from './types.js';
import { BgpMessageError, FAMILY_IPV4_UNICAST, HEADER_LEN, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN } from './types.js';
import { Writer } from './writer.js';

const headerParser = new Parser().buffer('marker', { length: 16 }).uint16('length').uint8('type');
const notificationParser = new Parser().uint8('code').uint8('subcode').buffer('data', { readUntil: 'eof' });
const routeRefreshParser = new Parser().uint16('afi').uint8('subtype').uint8('safi');

export interface Header {
  length: number;
  type: number;
}

/** Minimum and maximum message length per type (RFC 4271 §6.1, RFC 2918 §3). */
const LENGTH_RULES: Readonly<Record<number, readonly [number, number]>> = {
  1: [29, 4096],
  2: [23, Infinity],
  3: [21, Infinity],
  4: [19, 19],
  5: [23, Infinity],
};

export function maxMessageLen(caps: CodecCaps): number {
  return caps.extendedMessage ? MAX_EXTENDED_MESSAGE_LEN : MAX_MESSAGE_LEN;
}

const lengthData = (len: number): Buffer => Buffer.from([(len >>> 8) & 0xff, len & 0xff]);

/**
 * Validate the 19-byte header at b[off] (RFC 4271 §6.1): 1/1 marker, 1/2 length (data: the
 * length), 1/3 type (data: the type). Hand-written: it runs for every message (see bench/bgp-decode).
 */
export function decodeHeader(b: Buffer, maxLen: number, off = 0): Header {
  for (let i = off; i < off + 16; i++)
    if (b[i] !== 0xff) throw new BgpMessageError(1, 1, Buffer.alloc(0), 'session-reset', 'marker is not all ones');
  const length = ((b[off + 16] as number) << 8) | (b[off + 17] as number);
  const type = b[off + 18] as number;
  const rule = LENGTH_RULES[type];
  if (length < HEADER_LEN || length > maxLen || (rule && (length < rule[0] || length > rule[1]))) {
    throw new BgpMessageError(1, 2, lengthData(length), 'session-reset', `bad message length ${length} for type ${type}`);
  }
  if (!rule) throw new BgpMessageError(1, 3, Buffer.from([type]), 'session-reset', `bad message type ${type}`);
  return { length, type };
}

/** The same header decoded with binary-parser (kept for tests/tools; not on the hot path). */
export function parseHeader(b: Buffer): { marker: Buffer; length: number; type: number } {
  return headerParser.parse(b.subarray(0, HEADER_LEN)) as { marker: Buffer; length: number; type: number };
}

function decodeUpdate(b: Buffer, caps: CodecCaps): UpdateMessage {
  // b is the body. RFC 4271 §6.3: inconsistent lengths → 3/1 Malformed Attribute List.
  const malformed = (d: string): BgpMessageError => new BgpMessageError(3, 1, Buffer.alloc(0), 'session-reset', d);
  if (b.length < 4) throw malformed('UPDATE body too short');
  const wl = b.readUInt16BE(0);
  if (2 + wl + 2 > b.length) throw malformed(`withdrawn routes length ${wl} overruns`);
  const al = b.readUInt16BE(2 + wl);
  const aStart = 4 + wl;
  if (aStart + al > b.length) throw malformed(`path attribute length ${al} overruns`);
  const addPath = caps.addPathRx.has(FAMILY_IPV4_UNICAST);
  const withdrawn = wl ? decodePrefixes(b, 2, 2 + wl, 1, 1, addPath) : emptyPrefixList(1);
  const nlri = aStart + al < b.length ? decodePrefixes(b, aStart + al, b.length, 1, 1, addPath) : emptyPrefixList(1);
  const m: UpdateMessage = { type: 'update', withdrawn, attrs: null, nlri };
  if (al > 0) {
    const d = decodeAttributes(b, aStart, aStart + al, caps, nlri.count > 0);
    m.attrs = d.attrs;
    m.rawAttrs = b.subarray(aStart, aStart + al);
    if (d.errors.length) m.errors = d.errors;
    if (d.treatAsWithdraw) m.treatAsWithdraw = true;
  } else if (nlri.count > 0) {
    m.errors = [new BgpMessageError(3, 3, Buffer.from([1]), 'treat-as-withdraw', 'NLRI without path attributes')];
    m.treatAsWithdraw = true;
  }
  return m;
}

/**
 * Decode one whole message (header included, exactly `length` bytes, e.g. from the Framer).
 * Throws BgpMessageError with the NOTIFICATION to send; never anything else on any input.
 */
export function decodeMessage(frame: Buffer, caps: CodecCaps): BgpMessage {
  try {
    if (frame.length < HEADER_LEN)
      throw new BgpMessageError(1, 2, lengthData(frame.length), 'session-reset', 'message shorter than a header');
    const h = decodeHeader(frame, maxMessageLen(caps));
    if (h.length !== frame.length)
      throw new BgpMessageError(1, 2, lengthData(h.length), 'session-reset', `header length ${h.length} but frame is ${frame.length}`);
    const body = frame.subarray(HEADER_LEN);
    switch (h.type) {
      case 1:
        return decodeOpen(body);
      case 2:
        return decodeUpdate(body, caps);
      case 3: {
        const n = notificationParser.parse(body) as { code: number; subcode: number; data: Buffer };
        return { type: 'notification', code: n.code, subcode: n.subcode, data: Buffer.from(n.data) };
      }
      case 4:
        return { type: 'keepalive' };
      default: {
        if (body.length !== 4) throw new BgpMessageError(7, 1, Buffer.from(frame), 'session-reset', 'ROUTE-REFRESH length'); // RFC 7313 §5
        const r = routeRefreshParser.parse(body) as { afi: number; subtype: number; safi: number };
        return { type: 'route-refresh', afi: r.afi, safi: r.safi, subtype: r.subtype };
      }
    }
  } catch (e) {
    if (e instanceof BgpMessageError) throw e;
    // Defence in depth: any parser surprise is a malformed message, never a crash.
    throw new BgpMessageError(1, 0, Buffer.alloc(0), 'session-reset', `undecodable message: ${(e as Error).message}`);
  }
}

const MARKER = Buffer.alloc(16, 0xff);

function finish(w: Writer, type: number, maxLen: number): Buffer {
  if (w.pos > maxLen) throw new RangeError(`BGP message of ${w.pos} bytes exceeds ${maxLen}`);
  w.setU16(16, w.pos);
  w.setU8(18, type);
  return w.finish();
}

function startMessage(size = 4096): Writer {
  const w = new Writer(size);
  w.bytes(MARKER);
  w.reserve(3);
  return w;
}

// Encoding is synchronous: one reused writer for UPDATEs (finish() copies the exact bytes out).
const updateWriter = new Writer(8192);

export function encodeUpdate(m: UpdateMessage, caps: CodecCaps): Buffer {
  const w = updateWriter;
  w.pos = 0;
  w.bytes(MARKER);
  w.reserve(3);
  const addPath = caps.addPathTx.has(FAMILY_IPV4_UNICAST);
  const wlAt = w.reserve(2);
  encodePrefixes(w, m.withdrawn, addPath);
  w.setU16(wlAt, w.pos - wlAt - 2);
  const alAt = w.reserve(2);
  if (m.attrs) encodeAttributes(w, m.attrs, caps);
  w.setU16(alAt, w.pos - alAt - 2);
  encodePrefixes(w, m.nlri, addPath);
  return finish(w, 2, maxMessageLen(caps));
}

export function encodeNotification(m: Pick<NotificationMessage, 'code' | 'subcode' | 'data'>): Buffer {
  const w = startMessage(64 + m.data.length);
  w.u8(m.code).u8(m.subcode).bytes(m.data);
  return finish(w, 3, MAX_EXTENDED_MESSAGE_LEN);
}

export function encodeRouteRefresh(m: Pick<RouteRefreshMessage, 'afi' | 'safi' | 'subtype'>): Buffer {
  const w = startMessage(32);
  w.u16(m.afi).u8(m.subtype).u8(m.safi);
  return finish(w, 5, MAX_MESSAGE_LEN);
}

const KEEPALIVE = Buffer.concat([MARKER, Buffer.from([0, 19, 4])]);
export function encodeKeepalive(): Buffer {
  return Buffer.from(KEEPALIVE);
}

export function encodeMessage(m: BgpMessage, caps: CodecCaps): Buffer {
  switch (m.type) {
    case 'open': {
      const w = startMessage(256);
      encodeOpen(w, m);
      return finish(w, 1, MAX_MESSAGE_LEN);
    }
    case 'update':
      return encodeUpdate(m, caps);
    case 'notification':
      return encodeNotification(m);
    case 'keepalive':
      return encodeKeepalive();
    case 'route-refresh':
      return encodeRouteRefresh(m);
  }
}

/** A NOTIFICATION for a thrown BgpMessageError. */
export function notificationFor(e: BgpMessageError): Buffer {
  return encodeNotification({ code: e.code, subcode: e.subcode, data: e.data });
}
