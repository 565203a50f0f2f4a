// The reconciler's state table: per key, the desired object, the kernel object as last seen and a
// dirty flag — in arrays indexed by a small integer id interned per key (one Map lookup per change;
// a pass walks the dirty ids with no lookup at all). A 1M-route table held two Maps and a Set of 1M
// string keys each, and a pass did ~6 hash operations per route. Ids are recycled: a slot whose key has
// neither a desired nor a known kernel object is released by the owner (the reconciler's pass).
// A dump is collected beside the known state (`dumped`) and takes its place only when it completed.
// The ids come from a PrefixIds (prefix-ids.ts): the route reconciler shares its one with the agent's
// route table, so a learned prefix has one id (and no string) in both; the table holds a reference
// on each id it uses and follows the index's renumbering.
import { doubled } from '../common/typed-array.js';
import { PrefixIds } from './prefix-ids.js';

/** `a` copied into an array of `cap` slots (the rest undefined). */
function grown<T>(a: (T | undefined)[], cap: number): (T | undefined)[] {
  const b: (T | undefined)[] = new Array(cap).fill(undefined);
  for (let i = 0; i < a.length; i++) b[i] = a[i];
  return b;
}

const DIRTY = 1;
/** the table holds a reference on the id */
const USED = 2;
/** the key had a desired object at some point (its kernel object is this process's: graceful restart) */
const WANTED = 4;
/** an owned object kept because deletes are held (counted in heldCount) */
const HELD = 8;

export class KeyTable<T> {
  /** by id: the desired object, the kernel object as last seen */
  want: (T | undefined)[] = [];
  have: (T | undefined)[] = [];
  private flags = new Uint8Array(1024);
  private count = 0;
  /** the dirty ids (a stack: dirtyN of them) */
  private dirty = new Int32Array(1024);
  private dirtyN = 0;
  /** the dump in progress: its objects by id, and the epoch each id was last listed in */
  private next: (T | undefined)[] | undefined;
  private seen = new Uint32Array(1024);
  /** events during the dump in progress (by id: the object, undefined = gone) */
  private readonly events = new Map<number, T | undefined>();
  private epoch = 0;
  /** ids with a desired object */
  desiredCount = 0;

  constructor(readonly index: PrefixIds = new PrefixIds()) {
    index.onRemap((remap, size) => this.remap(remap, size));
  }

  /** keys in the table */
  get size(): number {
    return this.count;
  }
  get dirtyCount(): number {
    return this.dirtyN;
  }

  /** The id of a key in the table, or -1. */
  find(key: string): number {
    const id = this.index.find(key);
    return id >= 0 && this.flags[id]! & USED ? id : -1;
  }

  /** The id of a key, made when missing. */
  intern(key: string): number {
    return this.adopt(this.index.get(key));
  }

  /** An id of the index into the table (its key is now in it; no-op when it already was). */
  adopt(id: number): number {
    if (id >= this.flags.length) {
      let n = this.flags.length;
      while (n <= id) n *= 2;
      const f = new Uint8Array(n);
      f.set(this.flags);
      this.flags = f;
      const s = new Uint32Array(n);
      s.set(this.seen);
      this.seen = s;
    }
    if (this.flags[id]! & USED) return id;
    this.index.retain(id);
    if (id >= this.want.length) {
      // doubled in one step (pushed one by one, the arrays were copied ~3 times their size on the way to 1M)
      const cap = Math.max(1024, 2 ** Math.ceil(Math.log2(id + 1)));
      this.want = grown(this.want, cap);
      this.have = grown(this.have, cap);
    }
    this.flags[id] = USED;
    this.seen[id] = 0;
    this.count++;
    return id;
  }

  /** The key of an id in the table. */
  key(id: number): string {
    return this.index.key(id);
  }

  /** ids flagged HELD */
  heldCount = 0;
  /** Flag (true) or unflag an id as held. */
  setHeld(id: number, held: boolean): void {
    const f = this.flags[id]!;
    if (held === ((f & HELD) !== 0) || !(f & USED)) return;
    this.flags[id] = held ? f | HELD : f & ~HELD;
    this.heldCount += held ? 1 : -1;
  }
  /** Unflag every held id. */
  clearHeld(): void {
    if (!this.heldCount) return;
    for (let id = 0; id < this.want.length; id++) this.flags[id]! &= ~HELD;
    this.heldCount = 0;
  }

  /** The key had a desired object since its slot was made. */
  wasWanted(id: number): boolean {
    return (this.flags[id]! & WANTED) !== 0;
  }

  /** The id is in the table. */
  has(id: number): boolean {
    return (this.flags[id]! & USED) !== 0;
  }

  /** Set the desired object (undefined: none); returns the one before. */
  setWant(id: number, item: T | undefined): T | undefined {
    const old = this.want[id];
    if (item !== undefined) this.flags[id]! |= WANTED;
    if (old === undefined && item !== undefined) this.desiredCount++;
    else if (old !== undefined && item === undefined) this.desiredCount--;
    this.want[id] = item;
    return old;
  }

  /** Mark dirty; false when it already was. */
  mark(id: number): boolean {
    if (this.flags[id]! & DIRTY) return false;
    this.flags[id]! |= DIRTY;
    if (this.dirtyN === this.dirty.length) this.dirty = doubled(this.dirty);
    this.dirty[this.dirtyN++] = id;
    return true;
  }

  /** The dirty ids, each once; they are clean after this. */
  takeDirty(): Int32Array {
    const out = this.dirty.subarray(0, this.dirtyN);
    this.dirty = new Int32Array(1024);
    this.dirtyN = 0;
    for (let i = 0; i < out.length; i++) this.flags[out[i]!]! &= ~DIRTY;
    return out;
  }

  /** Free the slot when nothing is known under its key and it is not dirty. */
  release(id: number): void {
    if ((this.flags[id]! & (USED | DIRTY)) !== USED || this.want[id] !== undefined || this.have[id] !== undefined) return;
    if (this.flags[id]! & HELD) this.heldCount--;
    this.flags[id] = 0;
    this.count--;
    this.index.release(id);
  }

  /** Renumber the ids when most are free (after a withdraw-all the arrays would keep the size of the
   *  largest table). Only while no id is held outside (between passes, not during a dump). */
  compact(): void {
    if (this.next === undefined) this.index.compact();
  }

  /** The index renumbered its ids (compact(), ours or another holder's call). */
  private remap(remap: Int32Array, size: number): void {
    const cap = Math.max(1024, 2 ** Math.ceil(Math.log2(size + 1)));
    const want: (T | undefined)[] = new Array(size).fill(undefined);
    const have: (T | undefined)[] = new Array(size).fill(undefined);
    const flags = new Uint8Array(cap);
    const seen = new Uint32Array(cap);
    const n = Math.min(remap.length, this.want.length);
    for (let id = 0; id < n; id++) {
      const to = remap[id]!;
      if (to < 0 || !(this.flags[id]! & USED)) continue;
      want[to] = this.want[id];
      have[to] = this.have[id];
      flags[to] = this.flags[id]!;
      seen[to] = this.seen[id]!;
    }
    for (let i = 0; i < this.dirtyN; i++) this.dirty[i] = remap[this.dirty[i]!]!;
    this.want = want;
    this.have = have;
    this.flags = flags;
    this.seen = seen;
  }

  /** Ids in the table (ascending). */
  *used(): IterableIterator<number> {
    const n = this.want.length;
    for (let id = 0; id < n; id++) if (this.flags[id]! & USED) yield id;
  }

  // ---------------------------------------------------------------- dumps

  /** Start (or restart) collecting a dump. */
  beginDump(): void {
    this.epoch = (this.epoch + 1) >>> 0 || 1;
    // sized up front: filled in dump order, not id order — an empty array written far past its end
    // turns into a dictionary (slow, and larger than the table at 1M)
    this.next = new Array(this.want.length);
  }
  /** An object the dump listed under this id. */
  dumped(id: number, item: T): void {
    this.next![id] = item;
    this.seen[id] = this.epoch;
  }
  /** An event during a dump: what the dump lists for this id may be older than the event (listed
   *  before the change, or read from the kernel before it and delivered after) — the event's object
   *  (undefined: gone) wins when the dump ends, so it does not put the older state back. A later
   *  change brings an event of its own. */
  seenDuringDump(id: number, item: T | undefined): void {
    const next = this.next;
    if (next === undefined) return;
    // gone, and neither known nor listed: nothing the dump could bring back (our own deletes' echoes)
    if (item === undefined && this.have[id] === undefined && (this.seen[id] !== this.epoch || next[id] === undefined)) return;
    this.events.set(id, item);
  }
  /** The dump failed: the known state stays. */
  abortDump(): void {
    this.next = undefined;
    this.events.clear();
  }
  /** The dump completed: it is the kernel state now (an id it did not list has no kernel object);
   *  `changed(id)` for each id whose desired object is not the kernel's one. */
  endDump(changed: (id: number) => void): void {
    const next = this.next!;
    this.next = undefined;
    for (const [id, item] of this.events) {
      next[id] = item;
      this.seen[id] = this.epoch;
    }
    this.events.clear();
    for (let id = 0; id < this.want.length; id++) {
      if (!(this.flags[id]! & USED)) continue;
      const h = this.seen[id] === this.epoch ? next[id] : undefined;
      this.have[id] = h;
      if (this.want[id] !== h) changed(id);
      else this.release(id);
    }
  }
}
