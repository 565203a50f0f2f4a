// A compact prefix-keyed table used by every RIB (Adj-RIB-In, Loc-RIB, Adj-RIB-Out).
//
// A prefix is addressed by (bucket, key) — no string and no object per prefix on the IPv4 path:
//   IPv4: bucket = prefix length 0..32, key = the network address as a signed 32-bit integer
//         (addr | 0, a V8 small integer: Map lookups hash it without allocating);
//   IPv6: bucket = BUCKET_V6 (33), key = a short string "w0,w1,w2,w3/len" of the four 32-bit words.
// One IntTable (open addressing over typed arrays) per IPv4 length, one Map for IPv6.
// `keyAt(list, i)` reads bucket/key straight from a codec PrefixList.
import type { PrefixList } from '../codec/types.js';
import { parseCidr, formatCidr } from '../../common/ip.js';
import { doubled } from '../../common/typed-array.js';

export const BUCKET_V6 = 33;
export type PrefixKey = number | string;

/**
 * An open-addressing hash table from int32 keys to values (linear probing, tombstones on delete,
 * so deleting while iterating is safe). Keys live in an Int32Array, values in a plain array: about
 * 13 bytes per slot against ~30–50 for a Map entry, and no per-entry allocation.
 */
export class IntTable<V> {
  private keys = new Int32Array(16);
  private state = new Uint8Array(16); // 0 empty, 1 full, 2 deleted
  private vals: (V | undefined)[] = new Array<V | undefined>(16);
  private mask = 15;
  /** Fibonacci hashing: the top log2(capacity) bits of key × 2^32/φ (low bits of a product are poor). */
  private shift = 28;
  private live = 0;
  private used = 0; // full + deleted
  /** Bumped on every rehash: iterators restart (a repeated visit is harmless, a skipped one is not). */
  epoch = 0;

  get size(): number {
    return this.live;
  }

  private slot(key: number): number {
    const keys = this.keys,
      state = this.state,
      mask = this.mask;
    let i = Math.imul(key, 0x9e3779b1) >>> this.shift;
    for (;;) {
      const st = state[i]!;
      if (st === 0) return -1;
      if (st === 1 && keys[i] === key) return i;
      i = (i + 1) & mask;
    }
  }

  get(key: number): V | undefined {
    const i = this.slot(key);
    return i < 0 ? undefined : this.vals[i];
  }

  has(key: number): boolean {
    return this.slot(key) >= 0;
  }

  /** Returns true when the key is new. */
  set(key: number, value: V): boolean {
    const i = this.probe(key);
    if (i >= 0) {
      this.vals[i] = value;
      return false;
    }
    this.insertAt(~i, key, value);
    return true;
  }

  /** Insert unless present; returns the existing value (nothing stored) or undefined (inserted). One probe. */
  setIfAbsent(key: number, value: V): V | undefined {
    const i = this.probe(key);
    if (i >= 0) return this.vals[i];
    this.insertAt(~i, key, value);
    return undefined;
  }

  /** The slot holding key (>= 0), or ~slot where it would go: the first tombstone passed, else the empty slot. */
  private probe(key: number): number {
    const keys = this.keys,
      state = this.state,
      mask = this.mask;
    let i = Math.imul(key, 0x9e3779b1) >>> this.shift;
    let tomb = -1;
    for (;;) {
      const st = state[i]!;
      if (st === 0) return ~(tomb >= 0 ? tomb : i);
      if (st === 1 && keys[i] === key) return i;
      if (st === 2 && tomb < 0) tomb = i;
      i = (i + 1) & mask;
    }
  }

  private insertAt(i: number, key: number, value: V): void {
    if (this.state[i] === 0) this.used++; // a reused tombstone is already counted
    this.keys[i] = key;
    this.state[i] = 1;
    this.vals[i] = value;
    this.live++;
    if (this.used * 4 > (this.mask + 1) * 3) this.rehash();
  }

  delete(key: number): boolean {
    const i = this.slot(key);
    if (i < 0) return false;
    this.state[i] = 2;
    this.vals[i] = undefined;
    this.live--;
    return true;
  }

  clear(): void {
    this.keys = new Int32Array(16);
    this.state = new Uint8Array(16);
    this.vals = new Array<V | undefined>(16);
    this.mask = 15;
    this.shift = 28;
    this.live = this.used = 0;
    this.epoch++;
  }

  private rehash(): void {
    // New capacity: load at most 1/2 (drops tombstones; may shrink after many deletes).
    let cap = 16;
    while (cap < this.live * 2 + 2) cap *= 2;
    const ok = this.keys,
      os = this.state,
      ov = this.vals;
    this.keys = new Int32Array(cap);
    this.state = new Uint8Array(cap);
    this.vals = new Array<V | undefined>(cap);
    this.mask = cap - 1;
    this.shift = 32 - Math.log2(cap);
    this.used = this.live;
    this.epoch++;
    const keys = this.keys,
      state = this.state,
      vals = this.vals,
      mask = this.mask;
    for (let j = 0; j < os.length; j++) {
      if (os[j] !== 1) continue;
      const k = ok[j]!;
      let i = Math.imul(k, 0x9e3779b1) >>> this.shift;
      while (state[i] !== 0) i = (i + 1) & mask;
      keys[i] = k;
      state[i] = 1;
      vals[i] = ov[j];
    }
  }

  /** Visit every entry; the callback may delete (even the visited entry) but must not insert. */
  forEach(fn: (value: V, key: number) => void): void {
    const state = this.state,
      keys = this.keys,
      vals = this.vals;
    for (let i = 0; i < state.length; i++) if (state[i] === 1) fn(vals[i] as V, keys[i]!);
  }

  /** Iterate entries; survives inserts between steps (restarts after a rehash, so it may repeat). */
  *entries(): Generator<[number, V]> {
    let epoch = this.epoch;
    for (let i = 0; i < this.state.length; i++) {
      if (this.epoch !== epoch) {
        epoch = this.epoch;
        i = -1;
        continue;
      }
      if (this.state[i] === 1) yield [this.keys[i]!, this.vals[i] as V];
    }
  }
}

export class PrefixTable<V> {
  private readonly v4: (IntTable<V> | undefined)[] = new Array<IntTable<V> | undefined>(33);
  private v6: Map<string, V> | undefined;

  get size(): number {
    let n = this.v6?.size ?? 0;
    for (let b = 0; b < 33; b++) n += this.v4[b]?.size ?? 0;
    return n;
  }

  get(bucket: number, key: PrefixKey): V | undefined {
    if (bucket === BUCKET_V6) return this.v6?.get(key as string);
    return this.v4[bucket]?.get(key as number);
  }

  has(bucket: number, key: PrefixKey): boolean {
    return this.get(bucket, key) !== undefined;
  }

  set(bucket: number, key: PrefixKey, value: V): void {
    if (bucket === BUCKET_V6) {
      (this.v6 ??= new Map()).set(key as string, value);
      return;
    }
    let t = this.v4[bucket];
    if (!t) t = this.v4[bucket] = new IntTable<V>();
    t.set(key as number, value);
  }

  /** Insert unless present: the existing value, or undefined when `value` was stored. */
  setIfAbsent(bucket: number, key: PrefixKey, value: V): V | undefined {
    if (bucket === BUCKET_V6) {
      const m = (this.v6 ??= new Map());
      const cur = m.get(key as string);
      if (cur === undefined) m.set(key as string, value);
      return cur;
    }
    let t = this.v4[bucket];
    if (!t) t = this.v4[bucket] = new IntTable<V>();
    return t.setIfAbsent(key as number, value);
  }

  delete(bucket: number, key: PrefixKey): boolean {
    if (bucket === BUCKET_V6) return this.v6?.delete(key as string) ?? false;
    return this.v4[bucket]?.delete(key as number) ?? false;
  }

  clear(): void {
    for (const t of this.v4) t?.clear();
    this.v6?.clear();
  }

  /** Visit every entry. Deleting inside the callback is allowed; inserting is not. */
  forEach(fn: (value: V, bucket: number, key: PrefixKey) => void): void {
    for (let b = 0; b < 33; b++) {
      const t = this.v4[b];
      if (t) t.forEach((v, k) => fn(v, b, k));
    }
    if (this.v6) for (const [k, v] of this.v6) fn(v, BUCKET_V6, k);
  }

  /** Iterate entries (for slicing long walks across event-loop turns; inserts in between are fine). */
  *entries(): Generator<[number, PrefixKey, V]> {
    for (let b = 0; b < 33; b++) {
      const t = this.v4[b];
      if (t) for (const [k, v] of t.entries()) yield [b, k, v];
    }
    if (this.v6) for (const [k, v] of this.v6) yield [BUCKET_V6, k, v];
  }
}

/** Bucket of the i-th prefix of a PrefixList. */
export function bucketAt(list: PrefixList, i: number): number {
  return list.afi === 1 ? list.lens[i]! : BUCKET_V6;
}

/** Key of the i-th prefix of a PrefixList. */
export function keyAt(list: PrefixList, i: number): PrefixKey {
  if (list.afi === 1) return list.addrs[i]! | 0;
  const a = list.addrs,
    j = 4 * i;
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

/** A growable list of (bucket, key) in typed arrays, IPv6 keys in a side array: no object per prefix
 *  (a 1M-route flush listed [bucket, key] pairs: 1M arrays kept until the last removal). */
export class PrefixKeyList {
  private buckets: Uint8Array;
  private keys4: Int32Array;
  private keys6: string[] | undefined;
  count = 0;

  /** `expected`: how many keys will come when known (a flush knows its peer's route count) — sized once,
   *  as growing by doubling left ~1.3 MB of dead copies at 200k while the withdrawal was at its peak */
  constructor(expected = 256) {
    const n = Math.max(16, expected);
    this.buckets = new Uint8Array(n);
    this.keys4 = new Int32Array(n);
  }

  push(bucket: number, key: PrefixKey): void {
    const i = this.count++;
    if (i === this.buckets.length) {
      this.buckets = doubled(this.buckets);
      this.keys4 = doubled(this.keys4);
    }
    this.buckets[i] = bucket;
    if (bucket === BUCKET_V6) (this.keys6 ??= [])[i] = key as string;
    else this.keys4[i] = key as number;
  }

  bucket(i: number): number {
    return this.buckets[i]!;
  }

  key(i: number): PrefixKey {
    return this.buckets[i] === BUCKET_V6 ? this.keys6![i]! : this.keys4[i]!;
  }
}
