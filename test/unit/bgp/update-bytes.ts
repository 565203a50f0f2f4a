// Hand-built UPDATE bytes for the RFC 7606 corpus and the fuzz run (no encoder involved, so the
// malformations are exactly what the test says).
import { Buffer } from 'node:buffer';

export const attr = (flags: number, code: number, value: number[] | Buffer): Buffer => {
  const v = Buffer.from(value);
  return v.length > 255 || flags & 0x10
    ? Buffer.concat([Buffer.from([flags | 0x10, code, v.length >> 8, v.length & 255]), v])
    : Buffer.concat([Buffer.from([flags, code, v.length]), v]);
};

export const ORIGIN = (v = 0) => attr(0x40, 1, [v]);
/** AS_SEQUENCE of 4-octet ASNs. */
export const AS_PATH = (...asns: number[]) =>
  attr(0x40, 2, asns.length ? [2, asns.length, ...asns.flatMap((a) => [a >>> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255])] : []);
export const NEXT_HOP = (ip = '10.0.0.1') => attr(0x40, 3, ip.split('.').map(Number));
export const MED = (v: number) => attr(0x80, 4, [v >>> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255]);
export const LOCAL_PREF = (v = 100) => attr(0x40, 5, [v >>> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255]);

export function prefixBytes(cidr: string): number[] {
  const [ip, len] = cidr.split('/') as [string, string];
  const n = Number(len);
  return [
    n,
    ...ip
      .split('.')
      .map(Number)
      .slice(0, (n + 7) >> 3),
  ];
}

export function update(o: { withdrawn?: string[]; attrs?: Buffer[]; nlri?: string[]; rawNlri?: number[] }): Buffer {
  const w = Buffer.from((o.withdrawn ?? []).flatMap(prefixBytes));
  const a = Buffer.concat(o.attrs ?? []);
  const n = Buffer.from(o.rawNlri ?? (o.nlri ?? []).flatMap(prefixBytes));
  const body = Buffer.concat([Buffer.from([w.length >> 8, w.length & 255]), w, Buffer.from([a.length >> 8, a.length & 255]), a, n]);
  const len = 19 + body.length;
  return Buffer.concat([Buffer.alloc(16, 0xff), Buffer.from([len >> 8, len & 255, 2]), body]);
}

/** The attributes of a valid iBGP announcement. */
export const valid = (): Buffer[] => [ORIGIN(0), AS_PATH(), NEXT_HOP('10.0.0.1'), LOCAL_PREF(100)];
