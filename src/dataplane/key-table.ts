// The reconciler's state table: per key, the desired object, the kernel object as last seen and a
// dirty flag — in arrays indexed by a small integer id interned per key (one Map lookup per change;
// a pass walks the dirty ids with no lookup at all). A 1M-route table held two Maps and a Set of 1M
// string keys each, and a pass did ~6 hash operations per route. Ids are recycled: a slot whose key has
// neither a desired nor a known kernel object is released by the owner (the reconciler's pass).
// A dump is collected beside the known state (`dumped`) and takes its place only when it completed.
import { doubled } from '../common/typed-array.js';

const DIRTY = 1;

export class KeyTable<T> {
  private readonly ids = new Map<string, number>();
  /** by id: the key (undefined: a free slot), the desired object, the kernel object as last seen */
  keys: (string | undefined)[] = [];
  want: (T | undefined)[] = [];
  have: (T | undefined)[] = [];
  private flags = new Uint8Array(1024);
  private free: number[] = [];
  private dirtyIds: number[] = [];
  /** the dump in progress: its objects by id, and the epoch each id was last listed in */
  private next: (T | undefined)[] | undefined;
  private seen = new Uint32Array(1024);
  private epoch = 0;
  /** ids with a desired object */
  desiredCount = 0;

  get size(): number {
    return this.ids.size;
  }
  get dirtyCount(): number {
    return this.dirtyIds.length;
  }

  /** The id of a key, or -1. */
  find(key: string): number {
    return this.ids.get(key) ?? -1;
  }

  /** The id of a key, made when missing. */
  intern(key: string): number {
    let id = this.ids.get(key);
    if (id !== undefined) return id;
    id = this.free.pop();
    if (id === undefined) {
      id = this.keys.length;
      this.keys.push(key);
      this.want.push(undefined);
      this.have.push(undefined);
      if (id >= this.flags.length) {
        this.flags = doubled(this.flags);
        this.seen = doubled(this.seen);
      }
    } else this.keys[id] = key;
    this.flags[id] = 0;
    this.seen[id] = 0;
    this.ids.set(key, id);
    return id;
  }

  /** Set the desired object (undefined: none); returns the one before. */
  setWant(id: number, item: T | undefined): T | undefined {
    const old = this.want[id];
    if (old === undefined && item !== undefined) this.desiredCount++;
    else if (old !== undefined && item === undefined) this.desiredCount--;
    this.want[id] = item;
    return old;
  }

  /** Mark dirty; false when it already was. */
  mark(id: number): boolean {
    if (this.flags[id]! & DIRTY) return false;
    this.flags[id]! |= DIRTY;
    this.dirtyIds.push(id);
    return true;
  }

  /** The dirty ids, each once; they are clean after this. */
  takeDirty(): number[] {
    const out = this.dirtyIds;
    this.dirtyIds = [];
    for (const id of out) this.flags[id]! &= ~DIRTY;
    return out;
  }

  /** Free the slot when nothing is known under its key and it is not dirty. */
  release(id: number): void {
    const k = this.keys[id];
    if (k === undefined || this.want[id] !== undefined || this.have[id] !== undefined || this.flags[id]! & DIRTY) return;
    this.ids.delete(k);
    this.keys[id] = undefined;
    this.free.push(id);
  }

  /** Renumber the ids when most slots are free (after a withdraw-all the arrays would keep the size of
   *  the largest table). Only while no id is held outside (between passes, not during a dump). */
  compact(): void {
    if (this.next !== undefined || this.free.length < 4096 || this.free.length * 2 < this.keys.length) return;
    const n = this.keys.length - this.free.length;
    const remap = new Int32Array(this.keys.length);
    const keys: (string | undefined)[] = [];
    const want: (T | undefined)[] = [];
    const have: (T | undefined)[] = [];
    const cap = Math.max(1024, 2 ** Math.ceil(Math.log2(n + 1)));
    const flags = new Uint8Array(cap);
    const seen = new Uint32Array(cap);
    for (let id = 0; id < this.keys.length; id++) {
      const k = this.keys[id];
      if (k === undefined) continue;
      const to = keys.length;
      remap[id] = to;
      keys.push(k);
      want.push(this.want[id]);
      have.push(this.have[id]);
      flags[to] = this.flags[id]!;
      seen[to] = this.seen[id]!;
      this.ids.set(k, to);
    }
    this.dirtyIds = this.dirtyIds.map((id) => remap[id]!);
    this.keys = keys;
    this.want = want;
    this.have = have;
    this.flags = flags;
    this.seen = seen;
    this.free = [];
  }

  /** Ids in use (ascending). */
  *used(): IterableIterator<number> {
    for (let id = 0; id < this.keys.length; id++) if (this.keys[id] !== undefined) yield id;
  }

  // ---------------------------------------------------------------- dumps

  /** Start (or restart) collecting a dump. */
  beginDump(): void {
    this.epoch = (this.epoch + 1) >>> 0 || 1;
    // sized up front: filled in dump order, not id order — an empty array written far past its end
    // turns into a dictionary (slow, and larger than the table at 1M)
    this.next = new Array(this.keys.length);
  }
  /** An object the dump listed under this id. */
  dumped(id: number, item: T): void {
    this.next![id] = item;
    this.seen[id] = this.epoch;
  }
  /** The dump failed: the known state stays. */
  abortDump(): void {
    this.next = undefined;
  }
  /** The dump completed: it is the kernel state now (an id it did not list has no kernel object);
   *  `changed(id)` for each id whose desired object is not the kernel's one. */
  endDump(changed: (id: number) => void): void {
    const next = this.next!;
    this.next = undefined;
    for (let id = 0; id < this.keys.length; id++) {
      if (this.keys[id] === undefined) continue;
      const h = this.seen[id] === this.epoch ? next[id] : undefined;
      this.have[id] = h;
      if (this.want[id] !== h) changed(id);
      else this.release(id);
    }
  }
}
