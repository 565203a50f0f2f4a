// OPEN message (RFC 4271 §4.2) with optional parameters: Capabilities (RFC 5492) and the RFC 9072
// extended optional-parameters length (decoded; tabby always sends the classic format, which GoBGP
// requires). Capability rows: 1 multiprotocol (RFC 4760), 2 route refresh (RFC 2918), 5 extended
// next hop (RFC 8950), 6 extended message (RFC 8654), 64 graceful restart (RFC 4724), 65 4-octet AS
// (RFC 6793), 69 ADD-PATH (RFC 7911), 70 enhanced route refresh (RFC 7313), 73 FQDN; others kept as
// 'unknown' and ignored (RFC 5492 §3).
import { Buffer } from 'node:buffer';
import { Parser } from './bp.js';
import { ipv4ToString } from './prefix.js';
import type { Capability, OpenMessage } from './types.js';
import { BgpMessageError } from './types.js';
import type { Writer } from './writer.js';

// Compiled once at module load (binary-parser generates a function per parser).
const openFixed = new Parser().uint8('version').uint16('asn').uint16('holdTime').uint32('bgpId').uint8('optLen');
const tlv8 = new Parser().uint8('type').uint8('length').buffer('value', { length: 'length' });
const tlv8List = new Parser().array('items', { type: tlv8, readUntil: 'eof' });
const tlv16 = new Parser().uint8('type').uint16('length').buffer('value', { length: 'length' });
const tlv16List = new Parser().array('items', { type: tlv16, readUntil: 'eof' });

interface Tlv {
  type: number;
  length: number;
  value: Buffer;
}

const openErr = (subcode: number, detail: string, data: Buffer = Buffer.alloc(0)): BgpMessageError =>
  new BgpMessageError(2, subcode, data, 'session-reset', detail);

/** Check that TLVs with `lenSize`-octet lengths exactly fill b (binary-parser would throw a RangeError). */
function tlvsFit(b: Buffer, lenSize: 1 | 2): boolean {
  let p = 0;
  while (p < b.length) {
    if (p + 1 + lenSize > b.length) return false;
    const len = lenSize === 1 ? (b[p + 1] as number) : b.readUInt16BE(p + 1);
    p += 1 + lenSize + len;
  }
  return p === b.length;
}

function decodeCapability(code: number, v: Buffer): Capability {
  const bad = (): BgpMessageError => openErr(0, `malformed capability ${code} (length ${v.length})`);
  switch (code) {
    case 1:
      if (v.length !== 4) throw bad();
      return { kind: 'multiprotocol', afi: v.readUInt16BE(0), safi: v[3] as number };
    case 2:
      return { kind: 'route-refresh' };
    case 5: {
      if (v.length % 6 !== 0) throw bad();
      const entries = [];
      for (let i = 0; i < v.length; i += 6)
        entries.push({ afi: v.readUInt16BE(i), safi: v.readUInt16BE(i + 2), nextHopAfi: v.readUInt16BE(i + 4) });
      return { kind: 'extended-next-hop', entries };
    }
    case 6:
      return { kind: 'extended-message' };
    case 64: {
      if (v.length < 2 || (v.length - 2) % 4 !== 0) throw bad();
      const hdr = v.readUInt16BE(0);
      const families = [];
      for (let i = 2; i < v.length; i += 4)
        families.push({ afi: v.readUInt16BE(i), safi: v[i + 2] as number, forwardingPreserved: ((v[i + 3] as number) & 0x80) !== 0 });
      return {
        kind: 'graceful-restart',
        restarting: (hdr & 0x8000) !== 0,
        notification: (hdr & 0x4000) !== 0,
        restartTime: hdr & 0x0fff,
        families,
      };
    }
    case 65:
      if (v.length !== 4) throw bad();
      return { kind: 'as4', asn: v.readUInt32BE(0) };
    case 69: {
      if (v.length % 4 !== 0) throw bad();
      const entries = [];
      for (let i = 0; i < v.length; i += 4) {
        const mode = v[i + 3] as number;
        if (mode < 1 || mode > 3) throw bad();
        entries.push({ afi: v.readUInt16BE(i), safi: v[i + 2] as number, mode: mode as 1 | 2 | 3 });
      }
      return { kind: 'add-path', entries };
    }
    case 70:
      return { kind: 'enhanced-route-refresh' };
    case 73: {
      if (v.length < 1) throw bad();
      const hl = v[0] as number;
      if (1 + hl + 1 > v.length) throw bad();
      const dl = v[1 + hl] as number;
      if (2 + hl + dl > v.length) throw bad();
      return { kind: 'fqdn', hostname: v.toString('utf8', 1, 1 + hl), domain: v.toString('utf8', 2 + hl, 2 + hl + dl) };
    }
    default:
      return { kind: 'unknown', code, value: Buffer.from(v) };
  }
}

/** Decode an OPEN body (after the 19-byte header). */
export function decodeOpen(body: Buffer): OpenMessage {
  if (body.length < 10) throw new BgpMessageError(1, 2, u16(body.length + 19), 'session-reset', 'OPEN too short');
  const f = openFixed.parse(body) as { version: number; asn: number; holdTime: number; bgpId: number; optLen: number };
  // RFC 4271 §6.2: version mismatch → 2/1 with the largest supported version (2 octets) as data.
  if (f.version !== 4) throw openErr(1, `unsupported version ${f.version}`, u16(4));
  let params = body.subarray(10);
  let extendedParams = false;
  let lenSize: 1 | 2 = 1;
  if (f.optLen === 255 && params[0] === 255) {
    // RFC 9072: non-ext type 255, then a 2-octet extended length, then params with 2-octet lengths.
    if (params.length < 3) throw openErr(0, 'extended optional parameters truncated');
    const extLen = params.readUInt16BE(1);
    if (3 + extLen !== params.length) throw openErr(0, 'extended optional parameters length mismatch');
    params = params.subarray(3);
    extendedParams = true;
    lenSize = 2;
  } else if (f.optLen !== params.length) {
    throw openErr(0, `optional parameters length ${f.optLen} but ${params.length} bytes follow`);
  }
  if (!tlvsFit(params, lenSize)) throw openErr(0, 'optional parameter overruns');
  const open: OpenMessage = {
    type: 'open',
    version: 4,
    asn: f.asn,
    holdTime: f.holdTime,
    routerId: ipv4ToString(f.bgpId >>> 0),
    capabilities: [],
  };
  const paramList = ((lenSize === 1 ? tlv8List : tlv16List).parse(params) as { items: Tlv[] }).items;
  const perParam: number[] = [];
  for (const prm of paramList) {
    if (prm.type !== 2) throw openErr(4, `unsupported optional parameter ${prm.type}`); // RFC 4271 §6.2
    if (!tlvsFit(prm.value, 1)) throw openErr(0, 'capability overruns its parameter');
    const caps = (tlv8List.parse(prm.value) as { items: Tlv[] }).items;
    for (const c of caps) open.capabilities.push(decodeCapability(c.type, c.value));
    perParam.push(caps.length);
  }
  if (perParam.length > 1) open.capsPerParam = perParam;
  if (extendedParams) open.extendedParams = true;
  return open;
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
}

function capabilityCode(c: Capability): number {
  switch (c.kind) {
    case 'multiprotocol':
      return 1;
    case 'route-refresh':
      return 2;
    case 'extended-next-hop':
      return 5;
    case 'extended-message':
      return 6;
    case 'graceful-restart':
      return 64;
    case 'as4':
      return 65;
    case 'add-path':
      return 69;
    case 'enhanced-route-refresh':
      return 70;
    case 'fqdn':
      return 73;
    case 'unknown':
      return c.code;
  }
}

export function encodeCapability(c: Capability): Buffer {
  const parts: number[] = [];
  const put16 = (v: number): void => void parts.push((v >>> 8) & 0xff, v & 0xff);
  const put32 = (v: number): void => void parts.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  switch (c.kind) {
    case 'multiprotocol':
      put16(c.afi);
      parts.push(0, c.safi);
      break;
    case 'extended-next-hop':
      for (const e of c.entries) {
        put16(e.afi);
        put16(e.safi);
        put16(e.nextHopAfi);
      }
      break;
    case 'graceful-restart':
      put16((c.restarting ? 0x8000 : 0) | (c.notification ? 0x4000 : 0) | (c.restartTime & 0x0fff));
      for (const f of c.families) {
        put16(f.afi);
        parts.push(f.safi, f.forwardingPreserved ? 0x80 : 0);
      }
      break;
    case 'as4':
      put32(c.asn);
      break;
    case 'add-path':
      for (const e of c.entries) {
        put16(e.afi);
        parts.push(e.safi, e.mode);
      }
      break;
    case 'fqdn': {
      const h = Buffer.from(c.hostname, 'utf8').subarray(0, 255);
      const d = Buffer.from(c.domain, 'utf8').subarray(0, 255);
      parts.push(h.length, ...h, d.length, ...d);
      break;
    }
    default:
      break;
  }
  const value = c.kind === 'unknown' ? c.value : Buffer.from(parts);
  return Buffer.concat([Buffer.from([capabilityCode(c), value.length]), value]);
}

/** Encode an OPEN body (classic optional-parameter format). */
export function encodeOpen(w: Writer, m: OpenMessage): void {
  w.u8(m.version).u16(m.asn).u16(m.holdTime);
  const id = m.routerId.split('.').map(Number);
  w.u8(id[0] ?? 0)
    .u8(id[1] ?? 0)
    .u8(id[2] ?? 0)
    .u8(id[3] ?? 0);
  const caps = m.capabilities.map(encodeCapability);
  const groups: Buffer[][] = [];
  const per = m.capsPerParam && m.capsPerParam.reduce((s, n) => s + n, 0) === caps.length ? m.capsPerParam : [caps.length];
  let k = 0;
  for (const n of per) {
    if (n === 0) continue;
    groups.push(caps.slice(k, k + n));
    k += n;
  }
  const params = groups.map((g) => {
    const v = Buffer.concat(g);
    if (v.length > 255) throw new Error('capabilities do not fit one optional parameter');
    return Buffer.concat([Buffer.from([2, v.length]), v]);
  });
  const all = Buffer.concat(params);
  if (all.length > 255) throw new Error('optional parameters exceed 255 bytes');
  w.u8(all.length).bytes(all);
}
