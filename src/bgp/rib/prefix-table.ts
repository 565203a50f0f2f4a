// A compact prefix-keyed table used by every RIB (Adj-RIB-In, Loc-RIB, Adj-RIB-Out).
//
// A prefix is addressed by (bucket, key) — no string and no object per prefix on the IPv4 path:
//   IPv4: bucket = prefix length 0..32, key = the network address as a signed 32-bit integer
//         (addr | 0, a V8 small integer: Map lookups hash it without allocating);
//   IPv6: bucket = BUCKET_V6 (33), key = a short string "w0,w1,w2,w3/len" of the four 32-bit words.
// One Map per bucket. `keyAt(list, i)` reads bucket/key straight from a codec PrefixList.
import type { PrefixList } from '../codec/types.js';
import { parseCidr, formatCidr } from '../../common/ip.js';

export const BUCKET_V6 = 33;
export type PrefixKey = number | string;

export class PrefixTable<V> {
  private readonly buckets: (Map<PrefixKey, V> | undefined)[] = new Array<Map<PrefixKey, V> | undefined>(34);
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(bucket: number, key: PrefixKey): V | undefined {
    return this.buckets[bucket]?.get(key);
  }

  has(bucket: number, key: PrefixKey): boolean {
    return this.buckets[bucket]?.has(key) ?? false;
  }

  set(bucket: number, key: PrefixKey, value: V): void {
    let m = this.buckets[bucket];
    if (!m) m = this.buckets[bucket] = new Map();
    const before = m.size;
    m.set(key, value);
    if (m.size !== before) this.count++;
  }

  delete(bucket: number, key: PrefixKey): boolean {
    const m = this.buckets[bucket];
    if (!m || !m.delete(key)) return false;
    this.count--;
    return true;
  }

  clear(): void {
    for (const m of this.buckets) m?.clear();
    this.count = 0;
  }

  /** Visit every entry. Deleting the visited entry inside the callback is allowed (Map semantics). */
  forEach(fn: (value: V, bucket: number, key: PrefixKey) => void): void {
    for (let b = 0; b < this.buckets.length; b++) {
      const m = this.buckets[b];
      if (m) for (const [k, v] of m) fn(v, b, k);
    }
  }

  /** Iterate entries (for slicing long walks across event-loop turns). */
  *entries(): Generator<[number, PrefixKey, V]> {
    for (let b = 0; b < this.buckets.length; b++) {
      const m = this.buckets[b];
      if (m) for (const [k, v] of m) yield [b, k, v];
    }
  }
}

/** Bucket of the i-th prefix of a PrefixList. */
export function bucketAt(list: PrefixList, i: number): number {
  return list.afi === 1 ? list.lens[i]! : BUCKET_V6;
}

/** Key of the i-th prefix of a PrefixList. */
export function keyAt(list: PrefixList, i: number): PrefixKey {
  if (list.afi === 1) return list.addrs[i]! | 0;
  const a = list.addrs, j = 4 * i;
  return `${a[j]},${a[j + 1]},${a[j + 2]},${a[j + 3]}/${list.lens[i]}`;
}

export function afiOfBucket(bucket: number): 1 | 2 {
  return bucket === BUCKET_V6 ? 2 : 1;
}

/** "10.0.0.0/24" / "fd00::/64" from (bucket, key). */
export function formatPrefixKey(bucket: number, key: PrefixKey): string {
  if (bucket !== BUCKET_V6) {
    const n = (key as number) >>> 0;
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${bucket}`;
  }
  const { words, len } = v6Words(key as string);
  let v = 0n;
  for (const w of words) v = (v << 32n) | BigInt(w);
  return formatCidr({ family: 6, ip: v, network: v, prefixLen: len });
}

function v6Words(key: string): { words: number[]; len: number } {
  const slash = key.indexOf('/');
  return { words: key.slice(0, slash).split(',').map(Number), len: Number(key.slice(slash + 1)) };
}

/** Parse "10.0.0.0/24" into (bucket, key); host bits are cleared. Throws InvalidAddress. */
export function parsePrefixKey(prefix: string): { bucket: number; key: PrefixKey; afi: 1 | 2 } {
  const c = parseCidr(prefix);
  if (c.family === 4) return { bucket: c.prefixLen, key: Number(c.network) | 0, afi: 1 };
  const w: number[] = [];
  for (let i = 3; i >= 0; i--) w.push(Number((c.network >> BigInt(32 * i)) & 0xffffffffn));
  return { bucket: BUCKET_V6, key: `${w[0]},${w[1]},${w[2]},${w[3]}/${c.prefixLen}`, afi: 2 };
}

/** Write the prefix (bucket, key) into slot i of a PrefixList (which must be of the right family and size). */
export function writePrefix(list: PrefixList, i: number, bucket: number, key: PrefixKey): void {
  if (bucket !== BUCKET_V6) {
    list.addrs[i] = (key as number) >>> 0;
    list.lens[i] = bucket;
    return;
  }
  const { words, len } = v6Words(key as string);
  for (let j = 0; j < 4; j++) list.addrs[4 * i + j] = words[j]!;
  list.lens[i] = len;
}

/** An empty PrefixList with room for n prefixes. */
export function newPrefixList(afi: 1 | 2, n: number): PrefixList {
  return { afi, safi: 1, count: 0, addrs: new Uint32Array(afi === 1 ? n : 4 * n), lens: new Uint8Array(n), pathIds: null };
}
