// The reconciler's state table: per key, the desired object, the kernel object as last seen and a
// dirty flag — in arrays indexed by a small integer id interned per key (one Map lookup per change;
// a pass walks the dirty ids with no lookup at all). A 1M-route table held two Maps and a Set of 1M
// string keys each, and a pass did ~6 hash operations per route. Ids are recycled: a slot whose key has
// neither a desired nor a known kernel object is released by the owner (the reconciler's pass).
// The objects are kept once each (ObjectSlots): a key's desired and kernel object are indexes into
// them, in columns as narrow as the largest index (PagedColumn) — many keys share one object (a route
// template per next hop), so 1 byte per key each instead of an 8-byte pointer in a JS array (which
// also sat in V8's large-object space and left a copy as garbage at every doubling); the columns grow
// a page at a time, copying nothing.
// A dump is collected beside the known state (`dumped`) and takes its place only when it completed.
// The ids come from a PrefixIds (prefix-ids.ts): the route reconciler shares its one with the agent's
// route table, so a learned prefix has one id (and no string) in both; the table holds a reference
// on each id it uses and follows the index's renumbering.
import { PagedColumn } from '../common/paged-column.js';
import { doubled } from '../common/typed-array.js';
import { PrefixIds } from './prefix-ids.js';

/** Distinct objects by a small index (0 = none), each counted by the slots naming it. */
export class ObjectSlots<T> {
  private readonly objs: (T | undefined)[] = [undefined];
  private readonly refs: number[] = [0];
  private readonly index = new Map<T, number>();
  private readonly free: number[] = [];
  /** the last object looked up (a bulk change repeats one) */
  private lastObj: T | undefined;
  private lastIx = 0;

  /** objects held */
  get size(): number {
    return this.objs.length - 1 - this.free.length;
  }
  /** objects other holders can share (the rest are one holder's own) */
  get indexed(): number {
    return this.index.size;
  }
  at(i: number): T | undefined {
    return this.objs[i];
  }
  /** The index of `item` with one more holder (0 for undefined). */
  acquire(item: T | undefined): number {
    if (item === undefined) return 0;
    let i = item === this.lastObj ? this.lastIx : (this.index.get(item) ?? 0);
    if (i === 0) {
      i = this.free.pop() ?? this.objs.length;
      this.objs[i] = item;
      this.refs[i] = 0;
      this.index.set(item, i);
    }
    this.lastObj = item;
    this.lastIx = i;
    this.refs[i]!++;
    return i;
  }
  /** A slot of its own for an object no other holder names (a dumped copy, an event's object): no
   *  index entry — an agent restarted with its previous run's 1M routes holds each as its own object,
   *  and an entry each would add a third to them. */
  acquireOwn(item: T): number {
    const i = this.free.pop() ?? this.objs.length;
    this.objs[i] = item;
    this.refs[i] = 1;
    return i;
  }
  /** One holder of index `i` lets go (0: none); the object is dropped with the last. */
  release(i: number): void {
    if (i === 0 || --this.refs[i]! > 0) return;
    const o = this.objs[i]!;
    if (this.index.get(o) === i) this.index.delete(o);
    this.objs[i] = undefined;
    this.free.push(i);
    if (this.lastIx === i) {
      this.lastObj = undefined;
      this.lastIx = 0;
    }
  }
}

/** a pass of at most this many keys means changes are quiet: the dirty stacks go back to QUIET_STACK ids */
export const QUIET_PASS = 64;
const QUIET_STACK = 1024;
/** scratch of a pass kept for the next one up to this many ids (64 KiB); a larger pass's is dropped
 *  when it ends (a 1M-route bulk change would otherwise keep megabytes until changes are quiet) */
export const KEEP_PASS = 1 << 14;

const DIRTY = 1;
/** the table holds a reference on the id */
const USED = 2;
/** the key had a desired object at some point (its kernel object is this process's: graceful restart) */
const WANTED = 4;
/** an owned object kept because deletes are held (counted in heldCount) */
const HELD = 8;
/** listed by the dump in progress */
const LISTED = 16;
/** a kernel event about the key came since the running pass took it (its kernel object is newer than
 *  what the pass set) */
const SEEN = 32;

export class KeyTable<T> {
  /** the desired and the kernel objects (as last seen) of the keys, each once */
  private readonly objs = new ObjectSlots<T>();
  /** by id: the desired object's index in objs, the kernel object's (0: none), both as wide as the
   *  largest index; the flags. In pages (PagedColumn): growing copies nothing */
  private want = new PagedColumn(8);
  private have = new PagedColumn(8);
  private flags = new PagedColumn(8);
  private count = 0;
  /** the dirty ids (a stack: dirtyN of them), and the stack the running pass took (takeDirty swaps
   *  them: passes run one at a time, so the previous pass's stack is free again) — a new stack per pass
   *  grew by doubling from 1 K each time and left the pass's ids ~2× over as ArrayBuffers that waited
   *  for a full GC (a 200k ingest runs ~40 passes) */
  private dirty = new Int32Array(QUIET_STACK);
  private spare = new Int32Array(QUIET_STACK);
  private dirtyN = 0;
  /** the dump in progress: its objects by id (LISTED in flags: listed by it) */
  private next: (T | undefined)[] | undefined;
  /** events during the dump in progress (by id: the object, undefined = gone) */
  private readonly events = new Map<number, T | undefined>();
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
  /** every id in the table is below this */
  get upper(): number {
    return this.flags.capacity;
  }
  /** desired/kernel objects held, and of those the shared ones (tests) */
  get objectCount(): number {
    return this.objs.size;
  }
  get sharedObjectCount(): number {
    return this.objs.indexed;
  }

  /** The id of a key in the table, or -1. */
  find(key: string): number {
    const id = this.index.find(key);
    return id >= 0 && id < this.flags.capacity && this.flags.get(id) & USED ? id : -1;
  }

  /** The id of a key, made when missing. */
  intern(key: string): number {
    return this.adopt(this.index.get(key));
  }

  /** An id of the index into the table (its key is now in it; no-op when it already was). */
  adopt(id: number): number {
    if (id >= this.flags.capacity) {
      this.want.grow(id + 1);
      this.have.grow(id + 1);
      this.flags.grow(id + 1);
    }
    if (this.flags.get(id) & USED) return id;
    this.index.retain(id);
    this.flags.set(id, USED); // not LISTED: a reused id names another key than the one a running dump listed
    this.count++;
    return id;
  }

  /** The key of an id in the table. */
  key(id: number): string {
    return this.index.key(id);
  }

  /** The desired object of an id, the kernel object as last seen. */
  wantOf(id: number): T | undefined {
    return this.objs.at(this.want.get(id));
  }
  haveOf(id: number): T | undefined {
    return this.objs.at(this.have.get(id));
  }

  /** ids flagged HELD */
  heldCount = 0;
  /** Flag (true) or unflag an id as held. */
  setHeld(id: number, held: boolean): void {
    const f = this.flags.get(id);
    if (held === ((f & HELD) !== 0) || !(f & USED)) return;
    this.flags.set(id, held ? f | HELD : f & ~HELD);
    this.heldCount += held ? 1 : -1;
  }
  /** Unflag every held id. */
  clearHeld(): void {
    if (!this.heldCount) return;
    for (let id = 0; id < this.flags.capacity; id++) this.flags.set(id, this.flags.get(id) & ~HELD);
    this.heldCount = 0;
  }

  /** The key had a desired object since its slot was made. */
  wasWanted(id: number): boolean {
    return (this.flags.get(id) & WANTED) !== 0;
  }

  /** The id is in the table. */
  has(id: number): boolean {
    return id < this.flags.capacity && (this.flags.get(id) & USED) !== 0;
  }

  /** Set the desired object (undefined: none); returns the one before. */
  setWant(id: number, item: T | undefined): T | undefined {
    const was = this.want.get(id);
    const old = this.objs.at(was);
    if (item !== undefined) this.flags.set(id, this.flags.get(id) | WANTED);
    if (old === item) return old;
    if (old === undefined) this.desiredCount++;
    else if (item === undefined) this.desiredCount--;
    const ix = this.objs.acquire(item);
    if (ix > this.want.max) this.widen(ix);
    this.want.set(id, ix);
    this.objs.release(was);
    return old;
  }

  /** Set the kernel object as last seen (undefined: none); `own`: no other key will name this object
   *  (an event's or a dump's own copy: not indexed for sharing). */
  setHave(id: number, item: T | undefined, own = false): void {
    const was = this.have.get(id);
    if (this.objs.at(was) === item) return;
    const ix = own && item !== undefined ? this.objs.acquireOwn(item) : this.objs.acquire(item);
    if (ix > this.have.max) this.widen(ix);
    this.have.set(id, ix);
    this.objs.release(was);
  }

  /** Both object columns wide enough for index `ix` (more distinct objects than they could name). */
  private widen(ix: number): void {
    this.want.widen(ix);
    this.have.widen(ix);
  }

  /** Mark dirty; false when it already was. */
  mark(id: number): boolean {
    const f = this.flags.get(id);
    if (f & DIRTY) return false;
    this.flags.set(id, f | DIRTY);
    if (this.dirtyN === this.dirty.length) this.dirty = doubled(this.dirty);
    this.dirty[this.dirtyN++] = id;
    return true;
  }

  /** The dirty ids, each once; they are clean (and not SEEN) after this. The array is valid until
   *  the next call (the caller's pass ends before the next one takes). */
  takeDirty(): Int32Array {
    const n = this.dirtyN;
    const taken = this.dirty;
    let out: Int32Array;
    if (n <= QUIET_PASS && (taken.length > QUIET_STACK || this.spare.length > QUIET_STACK)) {
      // changes are quiet again: the stacks an ingest grew go (an idle table keeps 2 × 4 KiB)
      out = taken.slice(0, n);
      this.dirty = new Int32Array(QUIET_STACK);
      this.spare = new Int32Array(QUIET_STACK);
    } else {
      out = taken.subarray(0, n);
      this.dirty = this.spare;
      this.spare = taken;
    }
    this.dirtyN = 0;
    for (let i = 0; i < n; i++) {
      const id = out[i]!;
      this.flags.set(id, this.flags.get(id) & ~(DIRTY | SEEN));
    }
    return out;
  }

  /** A kernel event set the key's kernel object. */
  markSeen(id: number): void {
    this.flags.set(id, this.flags.get(id) | SEEN);
  }
  /** The pass that took the dirty ids ended: a stack too large to keep goes. */
  passDone(): void {
    if (this.spare.length > KEEP_PASS) this.spare = new Int32Array(QUIET_STACK);
  }

  /** An event came for the key since takeDirty() handed it out. */
  seenSinceTaken(id: number): boolean {
    return (this.flags.get(id) & SEEN) !== 0;
  }

  /** Free the slot when nothing is known under its key and it is not dirty. */
  release(id: number): void {
    const f = this.flags.get(id);
    if ((f & (USED | DIRTY)) !== USED || this.want.get(id) !== 0 || this.have.get(id) !== 0) return;
    if (f & HELD) this.heldCount--;
    this.flags.set(id, 0);
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
    const want = this.want.emptyLike(size);
    const have = this.have.emptyLike(size);
    const flags = this.flags.emptyLike(size);
    const n = Math.min(remap.length, this.flags.capacity);
    for (let id = 0; id < n; id++) {
      const to = remap[id]!;
      if (to < 0 || !(this.flags.get(id) & USED)) continue;
      want.set(to, this.want.get(id));
      have.set(to, this.have.get(id));
      flags.set(to, this.flags.get(id));
    }
    for (let i = 0; i < this.dirtyN; i++) this.dirty[i] = remap[this.dirty[i]!]!;
    this.want = want;
    this.have = have;
    this.flags = flags;
  }

  /** Ids in the table (ascending). */
  *used(): IterableIterator<number> {
    for (let id = 0; id < this.flags.capacity; id++) if (this.flags.get(id) & USED) yield id;
  }

  // ---------------------------------------------------------------- dumps

  /** Start (or restart) collecting a dump. */
  beginDump(): void {
    for (let id = 0; id < this.flags.capacity; id++) this.flags.set(id, this.flags.get(id) & ~LISTED);
    // sized up front: filled in dump order, not id order — an empty array written far past its end
    // turns into a dictionary (slow, and larger than the table at 1M)
    this.next = new Array(this.flags.capacity);
  }
  /** An object the dump listed under this id (in the table). */
  dumped(id: number, item: T): void {
    this.next![id] = item;
    this.flags.set(id, this.flags.get(id) | LISTED);
  }
  /** An event during a dump: what the dump lists for this id may be older than the event (listed
   *  before the change, or read from the kernel before it and delivered after) — the event's object
   *  (undefined: gone) wins when the dump ends, so it does not put the older state back. A later
   *  change brings an event of its own. */
  seenDuringDump(id: number, item: T | undefined): void {
    const next = this.next;
    if (next === undefined) return;
    // gone, and neither known nor listed: nothing the dump could bring back (our own deletes' echoes)
    if (item === undefined && this.have.get(id) === 0 && (!(this.flags.get(id) & LISTED) || next[id] === undefined)) return;
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
      this.flags.set(id, this.flags.get(id) | LISTED);
    }
    this.events.clear();
    for (let id = 0; id < this.flags.capacity; id++) {
      const f = this.flags.get(id);
      if (!(f & USED)) continue;
      this.flags.set(id, f & ~LISTED);
      const h = f & LISTED ? next[id] : undefined;
      // listed as its desired object: shared; anything else is this key's own (a copy, an event's)
      this.setHave(id, h, h !== this.wantOf(id));
      if (this.want.get(id) !== this.have.get(id)) changed(id);
      else this.release(id);
    }
  }
}
