// The Loc-RIB's storage: prefix → its paths (one Path, or Path[] best first), with 6 bytes per IPv4
// slot at a full table's scale and nothing per prefix on V8's heap.
//
// An IPv4 prefix's slot is its network (an Int32Array per prefix length) and an id naming its paths
// (a column of 8, 16 or 32 bits, widened when a larger id comes): objs[id] is a registered Path or a
// multi-path array (one id space, so a full table from one peer — ~50k paths at 1M — stays in 16
// bits). A path's id is handed out when it is first stored and given back by forget() when the
// Loc-RIB lets go of it (its last prefix); an array's when its slot drops it. Ids stay small.
// Why not a JS array of Path pointers per table (the generic IntTable): 8 B per slot in V8's
// large-object space, a dead copy left as garbage at each doubling, a state byte per slot besides, and
// a load of at most 3/4 — ~26 B per prefix at 200k, now ~10. BIRD keeps one `rte` pointer per fib node.
// IPv6 prefixes (string keys, few) keep a Map.
import type { Path } from './path.js';
import { BUCKET_V6, type PrefixKey } from './prefix-table.js';
import { emptyLike, indexMax, widened, type IndexColumn } from '../../common/typed-array.js';

export type Slot = Path | Path[];

// Values: 0 empty, 1 deleted, else an id (objs[id]).
const EMPTY = 0;
const TOMB = 1;
/** Fibonacci hashing: the top log2(capacity) bits of key × 2^32/φ. */
const PHI = 0x9e3779b1;

/** int32 key → value ≥ 2, open addressing (linear probing); values in a column as narrow as the largest
 *  (a full table from one peer names ~10k paths: 2 bytes per slot). */
class IntSlots {
  keys = new Int32Array(16);
  vals: IndexColumn = new Uint8Array(16);
  private valMax = 0xff;
  mask = 15;
  private shift = 28;
  /** XORed into keys before hashing, new at every rehash: the keys a walk in slot order leaves behind
   *  share their top hash bits, and rehashed smaller with the same hash they would pile into one
   *  probe run (a 200k withdraw-all in table order took seconds: tens of thousands of probes per lookup). */
  private seed = 0;
  live = 0;
  private used = 0; // full + deleted
  /** Bumped on every rehash: iterators restart (a repeated visit is harmless, a skipped one is not). */
  epoch = 0;

  /** The slot holding key, or -1. */
  find(key: number): number {
    const keys = this.keys,
      vals = this.vals,
      mask = this.mask;
    let i = Math.imul(key ^ this.seed, PHI) >>> this.shift;
    for (;;) {
      const v = vals[i]!;
      if (v === EMPTY) return -1;
      if (v !== TOMB && keys[i] === key) return i;
      i = (i + 1) & mask;
    }
  }

  /** The slot holding key (>= 0), or ~slot where it would go (the first tombstone passed, else the empty one). */
  probe(key: number): number {
    const keys = this.keys,
      vals = this.vals,
      mask = this.mask;
    let i = Math.imul(key ^ this.seed, PHI) >>> this.shift;
    let tomb = -1;
    for (;;) {
      const v = vals[i]!;
      if (v === EMPTY) return ~(tomb >= 0 ? tomb : i);
      if (v === TOMB) {
        if (tomb < 0) tomb = i;
      } else if (keys[i] === key) return i;
      i = (i + 1) & mask;
    }
  }

  setVal(i: number, v: number): void {
    if (v > this.valMax) {
      this.vals = widened(this.vals, v);
      this.valMax = indexMax(this.vals);
    }
    this.vals[i] = v;
  }

  /** Store at the place probe() gave (~at); may rehash. */
  insertAt(i: number, key: number, value: number): void {
    if (this.vals[i] === EMPTY) this.used++; // a reused tombstone is already counted
    this.keys[i] = key;
    this.setVal(i, value);
    this.live++;
    // up to 4/5 full: with Fibonacci hashing of prefix keys probes stay short, and a table that just
    // passed a power of two is not left at 3/8 (the feed's /25–/32 lengths, ~6k each, fit in 8192)
    if (this.used * 5 > (this.mask + 1) * 4) this.rehash();
  }

  /** The longest run of occupied slots (full or deleted): what a lookup of an absent key may walk. */
  longestRun(): number {
    const v = this.vals,
      n = v.length;
    let best = 0;
    let run = 0;
    for (let j = 0; j < 2 * n; j++) {
      run = v[j % n] === EMPTY ? 0 : run + 1; // twice round: a run may wrap
      if (run > best) best = run;
    }
    return Math.min(best, n);
  }

  /** Delete slot i; true when the table is now mostly empty (worth a rehash to shrink it). */
  removeAt(i: number): boolean {
    this.vals[i] = TOMB;
    this.live--;
    return this.sparse;
  }

  get sparse(): boolean {
    return this.mask > 15 && this.live * 8 < this.mask + 1;
  }

  rehash(): void {
    // New capacity: load at most 1/2 (drops tombstones; may shrink after many deletes).
    let cap = 16;
    while (cap < this.live * 2 + 2) cap *= 2;
    const ok = this.keys,
      ov = this.vals;
    const keys = (this.keys = new Int32Array(cap));
    const vals = (this.vals = emptyLike(ov, cap));
    const mask = (this.mask = cap - 1);
    const shift = (this.shift = 32 - Math.log2(cap));
    const seed = (this.seed = Math.imul(++this.epoch, 0x27d4eb2f));
    this.used = this.live;
    for (let j = 0; j < ov.length; j++) {
      const v = ov[j]!;
      if (v === EMPTY || v === TOMB) continue;
      const k = ok[j]!;
      let i = Math.imul(k ^ seed, PHI) >>> shift;
      while (vals[i] !== EMPTY) i = (i + 1) & mask;
      keys[i] = k;
      vals[i] = v;
    }
  }
}

/** A live value (not empty, not deleted). */
const full = (v: number): boolean => v !== EMPTY && v !== TOMB;

export class SlotTable {
  private readonly v4: (IntSlots | undefined)[] = new Array<IntSlots | undefined>(33);
  private v6: Map<string, Slot> | undefined;
  /** Registered paths and multi-path arrays by id (0 and 1 are EMPTY and TOMB). */
  private readonly objs: (Slot | undefined)[] = [undefined, undefined];
  private readonly freeIds: number[] = [];
  /** forEach calls in progress (no shrinking rehash under them). */
  private walking = 0;

  get size(): number {
    let n = this.v6?.size ?? 0;
    for (let b = 0; b < 33; b++) n += this.v4[b]?.live ?? 0;
    return n;
  }

  /** Bytes per value in an IPv4 length's table (for tests). */
  valueBytes(bucket: number): number {
    return this.v4[bucket]?.vals.BYTES_PER_ELEMENT ?? 0;
  }

  /** The longest probe run of an IPv4 length's table (for tests). */
  longestRun(bucket: number): number {
    return this.v4[bucket]?.longestRun() ?? 0;
  }

  /** Ids in use: registered paths and multi-path arrays (for tests: ids are given back). */
  get idCount(): number {
    return this.objs.length - 2 - this.freeIds.length;
  }

  private decode(v: number): Slot {
    return this.objs[v]!;
  }

  private newId(o: Slot): number {
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.objs.length;
    this.objs[id] = o;
    return id;
  }

  /** The value for a slot: the path's id (registered on first use), or a new id for a multi-path array. */
  private encode(s: Slot): number {
    if (Array.isArray(s)) return this.newId(s);
    if (s.id > TOMB && this.objs[s.id] === s) return s.id;
    return (s.id = this.newId(s));
  }

  /** The old value of a slot is replaced or deleted: a multi-path array's id is free again. */
  private dropValue(v: number): void {
    if (!Array.isArray(this.objs[v])) return;
    this.objs[v] = undefined;
    this.freeIds.push(v);
  }

  /** The Loc-RIB let go of this path (no prefix holds it): its id is free (it is registered again if stored later). */
  forget(p: Path): void {
    const id = p.id;
    if (id > TOMB && this.objs[id] === p) {
      this.objs[id] = undefined;
      this.freeIds.push(id);
    }
    p.id = 0;
  }

  get(bucket: number, key: PrefixKey): Slot | undefined {
    if (bucket === BUCKET_V6) return this.v6?.get(key as string);
    const t = this.v4[bucket];
    if (!t) return undefined;
    const at = t.find(key as number);
    return at < 0 ? undefined : this.decode(t.vals[at]!);
  }

  set(bucket: number, key: PrefixKey, value: Slot): void {
    if (bucket === BUCKET_V6) {
      (this.v6 ??= new Map()).set(key as string, value);
      return;
    }
    const t = (this.v4[bucket] ??= new IntSlots());
    const at = t.probe(key as number);
    if (at >= 0) {
      const old = t.vals[at]!;
      if (Array.isArray(value) && Array.isArray(this.objs[old])) {
        this.objs[old] = value; // same id, new array
        return;
      }
      this.dropValue(old);
      t.setVal(at, this.encode(value));
      return;
    }
    t.insertAt(~at, key as number, this.encode(value));
  }

  /** Insert unless present: the existing value, or undefined when `value` was stored. One probe. */
  setIfAbsent(bucket: number, key: PrefixKey, value: Slot): Slot | undefined {
    if (bucket === BUCKET_V6) {
      const m = (this.v6 ??= new Map());
      const cur = m.get(key as string);
      if (cur === undefined) m.set(key as string, value);
      return cur;
    }
    const t = (this.v4[bucket] ??= new IntSlots());
    const at = t.probe(key as number);
    if (at >= 0) return this.decode(t.vals[at]!);
    t.insertAt(~at, key as number, this.encode(value));
    return undefined;
  }

  delete(bucket: number, key: PrefixKey): boolean {
    if (bucket === BUCKET_V6) return this.v6?.delete(key as string) ?? false;
    const t = this.v4[bucket];
    if (!t) return false;
    const at = t.find(key as number);
    if (at < 0) return false;
    this.dropValue(t.vals[at]!);
    // a withdraw-all gives the memory back (not inside forEach, which walks the arrays it started with)
    if (t.removeAt(at) && this.walking === 0) t.rehash();
    return true;
  }

  /** Visit every entry. Deleting or replacing inside the callback is allowed; inserting is not. */
  forEach(fn: (value: Slot, bucket: number, key: PrefixKey) => void): void {
    this.walking++;
    try {
      for (let b = 0; b < 33; b++) {
        const t = this.v4[b];
        if (!t) continue;
        const keys = t.keys,
          vals = t.vals;
        for (let j = 0; j < vals.length; j++) {
          const v = vals[j]!;
          if (full(v)) fn(this.decode(v), b, keys[j]!);
        }
      }
      if (this.v6) for (const [k, v] of this.v6) fn(v, BUCKET_V6, k);
    } finally {
      if (--this.walking === 0) for (const t of this.v4) if (t?.sparse) t.rehash();
    }
  }

  /** Iterate entries (for slicing long walks across event-loop turns; inserts in between are fine: a
   *  rehash restarts the walk of that length, so an entry may be visited twice, never skipped). */
  *entries(): Generator<[number, PrefixKey, Slot]> {
    for (let b = 0; b < 33; b++) {
      const t = this.v4[b];
      if (!t) continue;
      let epoch = t.epoch;
      for (let j = 0; j < t.vals.length; j++) {
        if (t.epoch !== epoch) {
          epoch = t.epoch;
          j = -1;
          continue;
        }
        const v = t.vals[j]!;
        if (full(v)) yield [b, t.keys[j]!, this.decode(v)];
      }
    }
    if (this.v6) for (const [k, v] of this.v6) yield [BUCKET_V6, k, v];
  }
}
