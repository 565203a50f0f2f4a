// IP addresses and CIDRs as (family, bigint) — one small helper shared by resources, IPAM,
// autodetection, the dataplane and the agent, so that every module parses "10.0.0.0/26" the same way.
import net from 'node:net';

export type Family = 4 | 6;

export interface Ip {
  readonly family: Family;
  readonly value: bigint;
}

export interface Cidr {
  readonly family: Family;
  /** The address as written (may have host bits set, e.g. a Node's "10.0.0.5/24"). */
  readonly ip: bigint;
  /** The network address (host bits cleared). */
  readonly network: bigint;
  readonly prefixLen: number;
}

export class InvalidAddress extends Error {
  readonly code = 'EINVALIDADDRESS';
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid address "${input}": ${reason}`);
    this.name = 'InvalidAddress';
  }
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);

export function parseIp(input: string): Ip {
  const s = input.trim();
  const kind = net.isIP(s);
  if (kind === 4) {
    const parts = s.split('.').map(Number);
    return { family: 4, value: BigInt(((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!) };
  }
  if (kind === 6) return { family: 6, value: parseIpv6(s) };
  throw new InvalidAddress(input, 'not an IPv4 or IPv6 address');
}

export function tryParseIp(input: string): Ip | undefined {
  try {
    return parseIp(input);
  } catch {
    return undefined;
  }
}

function parseIpv6(s: string): bigint {
  // Embedded IPv4 tail (::ffff:1.2.3.4)
  let text = s;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIp(tail).value;
    text = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16));
  return v;
}

export function formatIp(ip: Ip): string {
  return ip.family === 4 ? formatIpv4(ip.value) : formatIpv6(ip.value);
}

function formatIpv4(v: bigint): string {
  return formatIpv4Number(Number(v));
}

/**
 * Strict dotted-quad IPv4 → unsigned 32-bit value, or -1 when `s` is not one (then the caller
 * falls back to parseIp, which also reports the error). The hot path of route encoding:
 * 100k routes must not cost 100k BigInts.
 */
export function parseIpv4Number(s: string): number {
  let v = 0,
    octet = 0,
    digits = 0,
    dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1; // leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46) {
      if (!digits || ++dots > 3) return -1;
      v = v * 256 + octet;
      octet = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || !digits) return -1;
  return v * 256 + octet;
}

/** Unsigned 32-bit value → dotted quad (router IDs, ORIGINATOR_ID, route keys). */
export function formatIpv4Number(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function formatIpv6(v: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  return formatIpv6Groups(groups);
}

/** Eight 16-bit groups → IPv6 text, RFC 5952: the longest run (>= 2) of zero groups, leftmost on
 *  ties, compressed to "::". Shared with the netlink decoder's byte fast path. */
export function formatIpv6Groups(groups: readonly number[]): string {
  let best = -1,
    bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function hostMask(family: Family, prefixLen: number): bigint {
  return (1n << BigInt(bitsOf(family) - prefixLen)) - 1n;
}

/** Parse "a.b.c.d/n" or "x::/n". A bare address is a host route (/32 or /128) unless requirePrefix. */
export function parseCidr(input: string, opts: { requirePrefix?: boolean } = {}): Cidr {
  const s = input.trim();
  const slash = s.indexOf('/');
  if (slash < 0 && opts.requirePrefix) throw new InvalidAddress(input, 'missing "/prefix-length"');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  const max = bitsOf(ip.family);
  let prefixLen = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) throw new InvalidAddress(input, `prefix length "${p}" is not a number`);
    prefixLen = Number(p);
    if (prefixLen > max) throw new InvalidAddress(input, `prefix length ${prefixLen} is out of range 0..${max} for IPv${ip.family}`);
  }
  return { family: ip.family, ip: ip.value, network: ip.value & ~hostMask(ip.family, prefixLen), prefixLen };
}

export function tryParseCidr(input: string): Cidr | undefined {
  try {
    return parseCidr(input);
  } catch {
    return undefined;
  }
}

/** "10.0.0.0/26" — the network form. */
export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.network })}/${c.prefixLen}`;
}

/** "10.0.0.5/24" — the address-with-prefix form (interface addresses, Node.spec.bgp.ipv4Address). */
export function formatIpWithPrefix(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.ip })}/${c.prefixLen}`;
}

export function cidrOf(ip: Ip, prefixLen: number): Cidr {
  return { family: ip.family, ip: ip.value, network: ip.value & ~hostMask(ip.family, prefixLen), prefixLen };
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  return c.family === ip.family && (ip.value & ~hostMask(c.family, c.prefixLen)) === c.network;
}

export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    inner.prefixLen >= outer.prefixLen &&
    (inner.network & ~hostMask(outer.family, outer.prefixLen)) === outer.network
  );
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContainsCidr(a, b) || cidrContainsCidr(b, a);
}

/** Number of addresses in the CIDR. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.family) - c.prefixLen);
}

/** The n-th address in the CIDR (0 = network address). */
export function nthIp(c: Cidr, n: bigint | number): Ip {
  return { family: c.family, value: c.network + BigInt(n) };
}

export function ipToBuffer(ip: Ip): Buffer {
  const len = ip.family === 4 ? 4 : 16;
  const b = Buffer.alloc(len);
  let v = ip.value;
  for (let i = len - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

export function bufferToIp(b: Uint8Array): Ip {
  if (b.length !== 4 && b.length !== 16) throw new InvalidAddress(`<${b.length} bytes>`, 'an address is 4 or 16 bytes');
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return { family: b.length === 4 ? 4 : 6, value: v };
}

export function ipEquals(a: Ip, b: Ip): boolean {
  return a.family === b.family && a.value === b.value;
}

/** Canonical text of an address string ("10.0.0.01" is rejected, "fe80:0::1" → "fe80::1"). */
export function canonicalIp(input: string): string {
  return formatIp(parseIp(input));
}
