// Prefix ids: one small integer per key, shared by the agent's route table and the route reconciler's
// key table, so a learned prefix costs one id (and no string) in both instead of a string key in two
// Maps. A canonical IPv4 prefix ("10.1.2.0/24": no leading zeros, no host bits) is held as numbers —
// network and length in typed arrays, found through an open-addressing hash over them (~20 B per
// prefix against ~70 B for a Map entry plus its string); any other key (IPv6, "table|dst", a MAC) is
// kept as its string in a Map. Lookups are exact on the string: a key not in canonical form is a
// string key of its own, as in a Map (callers normalise first).
// Holders count references (retain/release): an id is freed when the last holder lets it go, and
// reused by the next new key. When most ids are free, compact() renumbers them densely and tells each
// holder the old → new mapping (onRemap), so arrays indexed by id shrink after a withdraw-all.
import { PagedColumn, PagedInt32 } from '../common/paged-column.js';

/** length byte of an id holding a string key / a free id */
const STR = 254;
const FREE = 255;

/** canonical IPv4 prefix → (net, len) in these, or false (module scratch: no object per parse) */
let pNet = 0;
let pLen = 0;
function parse4(s: string): boolean {
  let v = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  const n = s.length;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return false; // leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return false;
    } else if (c === 46) {
      if (!digits || ++dots > 3) return false;
      v = v * 256 + octet;
      octet = 0;
      digits = 0;
    } else break;
  }
  if (dots !== 3 || !digits || i >= n || s.charCodeAt(i) !== 47) return false;
  v = v * 256 + octet;
  let len = 0;
  const start = ++i;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    len = len * 10 + (c - 48);
  }
  const digitsLen = i - start;
  if (digitsLen === 0 || digitsLen > 2 || (digitsLen === 2 && s.charCodeAt(start) === 48) || len > 32) return false;
  if (len < 32 && v % 2 ** (32 - len) !== 0) return false; // host bits set: not canonical
  pNet = v | 0;
  pLen = len;
  return true;
}

const hash4 = (net: number, len: number): number => Math.imul(net ^ Math.imul(len + 1, 0x27d4eb2d), 0x9e3779b1);
/** The first slot of a hash in a table of `n` slots: its top bits scaled to n (any n, no modulo; the
 *  multiplicative hash's low bits are weak). Exact below 2^21 slots, and < n at any size. */
const slotFor = (h: number, n: number): number => Math.floor(((h >>> 0) * n) / 4294967296);
const MIN_SLOTS = 2048;
/** the hash's fill before a rehash (linear probing: ~3 probes to find a key, ~13 to miss, at the worst —
 *  cheap, as a probe reads the slot alone unless its tag matches) */
const MAX_LOAD = 0.8;
/** a slot holds id + 1 in its low 24 bits and 7 more bits of the hash above them (the tag): a probe
 *  past another key's slot rarely reads that key's network and length, which are anywhere in memory */
const ID_BITS = 24;
const ID_MASK = (1 << ID_BITS) - 1;
const tagOf = (h: number): number => (Math.imul(h, 0x85ebca6b) >>> 25) << ID_BITS;

export class PrefixIds {
  /** by id: the IPv4 network (int32), the length (0..32, STR, FREE), the holders */
  private net = new PagedInt32();
  private plen = new PagedColumn(8, FREE);
  private refs = new PagedColumn(8);
  /** ids in use or freed: every id is < upper */
  private top = 0;
  /** freed ids, a stack threaded through `net` (a free id's network is the next free id, -1 ends it):
   *  a number[] of them grew to 8 B per withdrawn prefix plus its growth copies (~4.8 MB of garbage in
   *  a 200k withdraw-all, while the speaker's own withdraw garbage is at its peak) */
  private freeTop = -1;
  private freeN = 0;
  /** open addressing over IPv4 ids: tag | id + 1, 0 empty, -1 deleted; linear probing from slotFor(hash),
   *  up to MAX_LOAD full, 40 % by a rehash (a table at most half full was 8–16 B per id — 2.1 MB of 4.7 at
   *  200k prefixes — now 5–10) */
  private slots = new Int32Array(MIN_SLOTS);
  private used = 0; // full + deleted slots
  private v4 = 0;
  private readonly strIds = new Map<string, number>();
  private readonly strOf = new Map<number, string>();
  private readonly remaps: ((remap: Int32Array, size: number) => void)[] = [];

  /** keys with an id */
  get size(): number {
    return this.v4 + this.strIds.size;
  }
  /** every id in use is below this */
  get upper(): number {
    return this.top;
  }

  /** The id of a key, or -1. */
  find(key: string): number {
    if (parse4(key)) return this.find4(pNet, pLen);
    return this.strIds.get(key) ?? -1;
  }

  /** The id of a canonical IPv4 prefix (network as a 32-bit integer, signed or not), or -1. */
  find4(net: number, len: number): number {
    net |= 0;
    const slots = this.slots;
    const n = slots.length;
    const h = hash4(net, len);
    const tag = tagOf(h);
    for (let i = slotFor(h, n); ; i = i + 1 === n ? 0 : i + 1) {
      const s = slots[i]!;
      if (s === 0) return -1;
      if (s > 0 && (s & ~ID_MASK) === tag) {
        const id = (s & ID_MASK) - 1;
        if (this.net.get(id) === net && this.plen.get(id) === len) return id;
      }
    }
  }

  /** The id of a key, made when missing (with no holder: retain it). */
  get(key: string): number {
    if (parse4(key)) return this.get4(pNet, pLen);
    let id = this.strIds.get(key);
    if (id === undefined) {
      id = this.take(STR, 0);
      this.strIds.set(key, id);
      this.strOf.set(id, key);
    }
    return id;
  }

  /** get() for a canonical IPv4 prefix (network without host bits: the caller's promise). */
  get4(net: number, len: number): number {
    net |= 0;
    // one probe: the key, or where it goes (the first deleted slot on the way, else the empty one)
    const slots = this.slots;
    const n = slots.length;
    const h = hash4(net, len);
    const tag = tagOf(h);
    let at = -1;
    let i = slotFor(h, n);
    for (; ; i = i + 1 === n ? 0 : i + 1) {
      const s = slots[i]!;
      if (s === 0) break;
      if (s < 0) {
        if (at < 0) at = i;
      } else if ((s & ~ID_MASK) === tag) {
        const id = (s & ID_MASK) - 1;
        if (this.net.get(id) === net && this.plen.get(id) === len) return id;
      }
    }
    const id = this.take(len, net);
    this.v4++;
    if (at >= 0) slots[at] = tag | (id + 1);
    else if (this.used + 1 > n * MAX_LOAD) this.rehash(this.v4);
    else {
      slots[i] = tag | (id + 1);
      this.used++;
    }
    return id;
  }

  retain(id: number): void {
    const r = this.refs.get(id);
    if (r === 255) throw new Error('prefix id: too many holders');
    this.refs.set(id, r + 1);
  }

  /** One holder lets go; the id is freed with the last. */
  release(id: number): void {
    const r = this.refs.get(id);
    if (r === 0 || this.plen.get(id) === FREE) throw new Error(`prefix id ${id}: released more often than retained`);
    this.refs.set(id, r - 1);
    if (r > 1) return;
    const len = this.plen.get(id);
    if (len === STR) {
      this.strIds.delete(this.strOf.get(id)!);
      this.strOf.delete(id);
    } else {
      this.slots[this.slotOf(id)] = -1;
      this.v4--;
    }
    this.plen.set(id, FREE);
    this.net.set(id, this.freeTop);
    this.freeTop = id;
    this.freeN++;
  }

  holders(id: number): number {
    return id < 0 || id >= this.top || this.plen.get(id) === FREE ? 0 : this.refs.get(id);
  }

  /** The key of an id (formatted for an IPv4 prefix: a new string each call). */
  key(id: number): string {
    const len = id >= 0 && id < this.top ? this.plen.get(id) : FREE;
    if (len === STR) return this.strOf.get(id)!;
    if (len === FREE) throw new Error(`prefix id ${id} is not in use`);
    const n = this.net.get(id);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}`;
  }

  /** IPv4 network (int32) of an IPv4 id. */
  net4(id: number): number {
    return this.net.get(id);
  }
  /** The prefix length of an IPv4 id, or -1 (a string key, a free id). */
  len4(id: number): number {
    if (id < 0 || id >= this.top) return -1;
    const l = this.plen.get(id);
    return l <= 32 ? l : -1;
  }

  /** Called with (old id → new id or -1, new upper) whenever compact() renumbers. */
  onRemap(fn: (remap: Int32Array, size: number) => void): void {
    this.remaps.push(fn);
  }

  /** Renumber densely when most ids are free (only where no holder keeps an id outside its arrays).
   *  Returns true when it did. */
  compact(): boolean {
    const n = this.size;
    if (this.freeN < 4096 || this.freeN * 2 < this.top) return false;
    const remap = new Int32Array(this.top).fill(-1);
    const net = this.net.emptyLike(n);
    const plen = this.plen.emptyLike(n);
    const refs = this.refs.emptyLike(n);
    const strs = [...this.strOf];
    let to = 0;
    for (let id = 0; id < this.top; id++) {
      if (this.plen.get(id) === FREE) continue;
      remap[id] = to;
      net.set(to, this.net.get(id));
      plen.set(to, this.plen.get(id));
      refs.set(to, this.refs.get(id));
      to++;
    }
    this.strIds.clear();
    this.strOf.clear();
    for (const [id, k] of strs) {
      this.strIds.set(k, remap[id]!);
      this.strOf.set(remap[id]!, k);
    }
    this.net = net;
    this.plen = plen;
    this.refs = refs;
    this.top = to;
    this.freeTop = -1;
    this.freeN = 0;
    this.rehash(this.v4);
    for (const fn of this.remaps) fn(remap, to);
    return true;
  }

  // ---------------------------------------------------------------- internals

  private take(len: number, net: number): number {
    let id = this.freeTop;
    if (id >= 0) {
      this.freeTop = this.net.get(id);
      this.freeN--;
    } else {
      if (this.top >= ID_MASK) throw new Error(`prefix ids: more than ${ID_MASK - 1} keys`);
      id = this.top++;
      if (id >= this.net.capacity) {
        this.net.grow(id + 1);
        this.plen.grow(id + 1);
        this.refs.grow(id + 1);
      }
    }
    this.net.set(id, net);
    this.plen.set(id, len);
    this.refs.set(id, 0);
    return id;
  }

  private place(id: number): void {
    const slots = this.slots;
    const n = slots.length;
    const h = hash4(this.net.get(id), this.plen.get(id));
    let i = slotFor(h, n);
    while (slots[i]! > 0) i = i + 1 === n ? 0 : i + 1;
    slots[i] = tagOf(h) | (id + 1);
  }

  private slotOf(id: number): number {
    const slots = this.slots;
    const n = slots.length;
    for (let i = slotFor(hash4(this.net.get(id), this.plen.get(id)), n); ; i = i + 1 === n ? 0 : i + 1) {
      const s = slots[i]!;
      if (s > 0 && (s & ID_MASK) === id + 1) return i;
      if (s === 0) throw new Error(`prefix id ${id}: not in the index`);
    }
  }

  /** A table for `n` IPv4 ids 40 % full (tombstones dropped): it doubles (1.6× made the rehashes' placements
   *  1.7 times the ids — as slow again — for the same peak, the old table included); smaller after a withdraw. */
  private rehash(n: number): void {
    this.slots = new Int32Array(Math.max(MIN_SLOTS, Math.ceil(n * 2.5) + 2));
    this.used = 0;
    for (let id = 0; id < this.top; id++)
      if (this.plen.get(id) <= 32) {
        this.place(id);
        this.used++;
      }
  }
}
