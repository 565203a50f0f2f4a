// The one reconciler shape (Felix's deltatracker): desired state in, kernel made to match.
//   set()/delete()/setDesired() edit desired state only and mark keys dirty;
//   apply() = resync if needed (dump the kernel, keep what ownership says is ours or what collides
//   with a desired key) → deletes → adds/replaces, batched → failures stay dirty for the next pass.
//   A dump that fails does not stop the pass: what is known is applied and the dump is retried later
//   (never stuck under constant change); the last error and the pending count are kept for status.
//   holdDeletes(true) (graceful restart: nothing a previous run installed goes before routing has
//   converged) keeps owned objects this process never wanted; one it wanted and then dropped (a route
//   withdrawn meanwhile) goes as usual. Releasing the hold deletes the rest.
// The driver knows the object kind (routes, neighbours, FDB entries, links): identity, equality,
// ownership, dump, batch add/remove. Kernel events feed observe()/forget() so a change made behind
// our back marks its key dirty; a periodic full resync catches anything missed.
import { EventEmitter } from 'node:events';
import { KEEP_PASS, KeyTable, QUIET_PASS } from './key-table.js';
import type { PrefixIds } from './prefix-ids.js';

export interface Failure<T> {
  item: T;
  error: Error;
  /** its index in the items handed to apply/remove — needed when one object stands for many keys
   *  (routes share one object per next hop: identity cannot tell which key failed) */
  index?: number;
}

export interface ReconcileDriver<T> {
  readonly kind: string;
  key(item: T): string;
  /** the kernel object already is the desired one */
  equal(desired: T, actual: T): boolean;
  /** ours by its mark (protocol number, name prefix …): may be deleted when not desired */
  owned(actual: T): boolean;
  /** not ours, but may be overwritten when its key is desired (e.g. a FAILED neighbour); default: no → conflict */
  mayReplace?(actual: T): boolean;
  /** replacing `actual` by `desired` adds a second object beside it (e.g. a route with another metric):
   *  the old one is removed once the new one is in (no gap). Default: no, a replace takes its place */
  leavesOld?(desired: T, actual: T): boolean;
  /** every kernel object of this kind (owned or not) */
  list(): Promise<T[]>;
  /** the same as a stream (optional; preferred): `start()` before each attempt returns the consumer of
   *  that attempt's objects — a 1M-route dump is compared as it arrives instead of held whole. With
   *  `copy`, the objects are transient (one may be reused for the next). `stop`, asked as the dump goes:
   *  true ends it early (the promise then rejects) */
  listEach?(start: () => (item: T) => void, stop?: () => boolean): Promise<void>;
  /** a dumped object to keep: given when listEach hands over transient objects (no object per item) */
  copy?(item: T): T;
  /** create or replace each item (ids[i] is the id of items[i]'s key in the reconciler's PrefixIds:
   *  `keyOf`); returns failures */
  apply(items: T[], ids: ArrayLike<number>): Promise<Failure<T>[]>;
  /** delete each item; "already gone" counts as success; returns failures */
  remove(items: T[], ids: ArrayLike<number>): Promise<Failure<T>[]>;
}

export interface ApplyResult<T> {
  added: number;
  removed: number;
  failed: Failure<T>[];
  /** desired keys held by someone else's object (never touched) */
  conflicts: string[];
  resynced: boolean;
  /** owned objects not desired, kept because deletes are held */
  held: number;
}

export interface ReconcileError {
  message: string;
  at: Date;
}

export interface ReconcilerOptions {
  /** full resync period (ms); 0 = never. Default 90 s. */
  resyncIntervalMs?: number;
  /** delay before an event-triggered apply (coalesces bursts). Default 20 ms. */
  debounceMs?: number;
  /** retry delay after a failed apply. Default 1 s. */
  retryMs?: number;
  /** a resync dump (listEach) gives way to this many changes made while it runs: it stops, the changes
   *  are made, and it is done again once changes were quiet for yieldQuietMs — until the resync has
   *  waited resyncMaxWaitMs since it was asked (then it runs to its end). 0 = never. Default 64. */
  yieldAfter?: number;
  /** Default 2 s. */
  yieldQuietMs?: number;
  /** Default 60 s. */
  resyncMaxWaitMs?: number;
  /** the key ids are renumbered (compacted) once no pass has run for this long (ms). Default 1 s */
  compactQuietMs?: number;
  /** the key ids (shared with another holder, e.g. the agent's route table); default: its own */
  ids?: PrefixIds;
}

/** What the resync dumps are doing (status). */
export interface ResyncProgress {
  /** listing: a dump runs; waiting: one is due (after changes are quiet, or on the next pass) */
  state: 'idle' | 'waiting' | 'listing';
  /** objects the running dump listed so far */
  listed: number;
  /** dumps that gave way to changes (since start) */
  gaveWay: number;
  /** the last completed dump */
  last?: { listed: number; ms: number; at: Date };
}

/**
 * Events: 'applied' (ApplyResult), 'error' is never emitted (failures are in 'applied' and retried),
 * 'insync' (after an apply that left nothing pending).
 */
export class Reconciler<T> extends EventEmitter {
  /** per key: the desired object, the kernel state as last seen (dump + events + our own successful
   *  changes), dirty — by an interned id */
  private readonly s: KeyTable<T>;
  private needResync = true;
  private running: Promise<ApplyResult<T>> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private started = false;
  private hold = false;
  private resyncLater: NodeJS.Timeout | undefined;
  private compactTimer: NodeJS.Timeout | undefined;
  /** when the resync due was first asked for (undefined: none due); a dump that gives way keeps it */
  private resyncSince: number | undefined;
  private readonly dumps: ResyncProgress = { state: 'idle', listed: 0, gaveWay: 0 };
  /** the last failure (dump or change) and when; cleared by nothing: status shows its age */
  lastError: ReconcileError | undefined;
  private readonly opts: Required<Omit<ReconcilerOptions, 'ids'>>;
  /** the ids of a pass's items, kept for the next pass (passes run one at a time; a new array per pass
   *  outlived the pass's wait for the kernel and stayed until a full GC); back to 64 when changes are quiet */
  private passIds = new Int32Array(QUIET_PASS);

  constructor(
    readonly driver: ReconcileDriver<T>,
    opts: ReconcilerOptions = {},
  ) {
    super();
    this.s = new KeyTable<T>(opts.ids);
    this.opts = {
      resyncIntervalMs: opts.resyncIntervalMs ?? 90_000,
      debounceMs: opts.debounceMs ?? 20,
      retryMs: opts.retryMs ?? 1000,
      yieldAfter: opts.yieldAfter ?? 64,
      yieldQuietMs: opts.yieldQuietMs ?? 2000,
      resyncMaxWaitMs: opts.resyncMaxWaitMs ?? 60_000,
      compactQuietMs: opts.compactQuietMs ?? 1000,
    };
  }

  /** The resync dumps: running, due, how far, how often they gave way. */
  get resyncProgress(): ResyncProgress {
    const p = this.dumps;
    const state = p.state === 'listing' ? 'listing' : this.needResync || this.resyncLater ? 'waiting' : 'idle';
    return { ...p, state };
  }

  /** Nothing pending: the kernel matched desired state at the end of the last apply. */
  get inSync(): boolean {
    return !this.needResync && !this.resyncLater && this.s.dirtyCount === 0 && !this.running;
  }
  get pendingCount(): number {
    return this.s.dirtyCount;
  }
  /** owned objects not desired, kept in the kernel because deletes are held (status asks often: no scan) */
  get heldCount(): number {
    return this.hold ? this.s.heldCount : 0;
  }
  get desiredCount(): number {
    return this.s.desiredCount;
  }
  get deletesHeld(): boolean {
    return this.hold;
  }

  /** Hold deletes of owned objects that are not desired (true), or release them (false: they go on the next pass). */
  holdDeletes(hold: boolean): void {
    if (hold === this.hold) return;
    this.hold = hold;
    if (hold) return;
    this.s.clearHeld();
    const s = this.s;
    for (const id of s.used()) {
      const it = s.haveOf(id);
      if (s.wantOf(id) === undefined && it !== undefined && this.driver.owned(it)) this.markId(id);
    }
  }
  desiredItems(): T[] {
    return [...this.desiredValues()];
  }
  /** the desired objects, without a copy (do not change the set while iterating) */
  *desiredValues(): IterableIterator<T> {
    for (const id of this.s.used()) {
      const w = this.s.wantOf(id);
      if (w !== undefined) yield w;
    }
  }
  /** the desired [key, object] pairs, without a copy (do not change the set while iterating) */
  *desiredEntries(): IterableIterator<[string, T]> {
    for (const id of this.s.used()) {
      const w = this.s.wantOf(id);
      if (w !== undefined) yield [this.s.key(id), w];
    }
  }

  /** The key of an id handed to the driver. */
  keyOf(id: number): string {
    return this.s.key(id);
  }

  set(item: T): void {
    this.setKeyed(this.driver.key(item), item);
  }

  /** set() with the key given: the item need not carry it (one object may stand for many keys). */
  setKeyed(k: string, item: T): void {
    this.setId(this.s.index.get(k), item);
  }

  /** set() by the id of the key in the shared PrefixIds (the caller holds the id while it calls). */
  setId(id: number, item: T): void {
    const s = this.s;
    s.adopt(id);
    const old = s.setWant(id, item);
    if (s.heldCount) s.setHeld(id, false);
    if (old !== item && (old === undefined || !this.driver.equal(item, old))) this.markId(id);
  }

  delete(key: string): void {
    this.deleteId(this.s.find(key));
  }

  /** delete() by id (-1: nothing). */
  deleteId(id: number): void {
    if (id < 0 || !this.s.has(id) || this.s.setWant(id, undefined) === undefined) return;
    this.markId(id);
  }

  /** Replace the whole desired set. */
  setDesired(items: Iterable<T>): void {
    const next = new Map<string, T>();
    for (const it of items) next.set(this.driver.key(it), it);
    this.setDesiredMap(next);
  }

  /** Replace the whole desired set with a map already keyed by driver.key (the map is taken over). */
  setDesiredMap(next: Map<string, T>): void {
    const s = this.s;
    for (const id of s.used()) {
      if (s.wantOf(id) === undefined) continue;
      const k = s.key(id);
      if (!next.has(k)) {
        s.setWant(id, undefined);
        this.markId(id);
      }
    }
    for (const [k, it] of next) this.setKeyed(k, it);
  }

  markDirty(key: string): void {
    this.markId(this.s.intern(key));
  }

  private markId(id: number): void {
    this.s.mark(id);
    if (this.started) this.schedule();
  }

  /** Force a full dump on the next apply (e.g. events were lost). */
  markResync(): void {
    if (this.resyncLater) {
      clearTimeout(this.resyncLater);
      this.resyncLater = undefined;
    }
    this.needResync = true;
    this.resyncSince ??= Date.now();
    if (this.started) this.schedule();
  }

  /** A full dump once changes have been quiet for `quietMs` (each call pushes it back), at most `maxMs`
   *  after the first call: a stream of bulk changes is not followed by a dump of the whole table after
   *  every batch (that made ingest quadratic), yet the dump does come. While changes wait or a pass
   *  runs it is not quiet (the timer may fire late, after a long synchronous burst of changes: a dump
   *  then would list a half-programmed table and be followed by another). inSync is false meanwhile. */
  markResyncSoon(quietMs: number, maxMs = this.opts.resyncMaxWaitMs): void {
    const now = Date.now();
    if (this.resyncLater) clearTimeout(this.resyncLater);
    const deadline = (this.resyncSince ??= now) + maxMs;
    const arm = (delay: number): void => {
      this.resyncLater = setTimeout(() => {
        const left = deadline - Date.now();
        if ((this.running || this.s.dirtyCount) && left > 0) return arm(Math.min(quietMs, left));
        this.resyncLater = undefined;
        this.markResync();
      }, delay); // cleared by stop()
    };
    arm(Math.max(0, Math.min(quietMs, deadline - now)));
  }

  /** A kernel object appeared or changed (from an event). */
  observe(item: T): void {
    const k = this.driver.key(item);
    const s = this.s;
    let id = s.find(k);
    const have = id < 0 ? undefined : s.haveOf(id);
    if (have !== undefined && this.driver.equal(have, item)) return; // our own change coming back: keep the shared object
    if (id < 0) id = s.intern(k);
    s.setHave(id, item, true); // the event's own object
    s.markSeen(id);
    s.seenDuringDump(id, item);
    const d = s.wantOf(id);
    if ((d !== undefined && !this.driver.equal(d, item)) || (d === undefined && this.driver.owned(item))) this.markId(id);
  }

  /** A kernel object disappeared (from an event): whatever we knew under its key is gone. */
  forget(item: T): void {
    const k = this.driver.key(item);
    const s = this.s;
    const id = s.find(k);
    const have = id < 0 ? undefined : s.haveOf(id);
    // another object under the same key went (the old route a new metric left beside ours): ours stays
    if (have !== undefined && this.driver.leavesOld?.(have, item)) return;
    if (id >= 0) {
      s.setHeld(id, false);
      s.seenDuringDump(id, undefined);
    }
    if (have === undefined) return;
    s.setHave(id, undefined); // the slot is released by a pass or a dump, never here (a pass may hold its id)
    s.markSeen(id);
    if (s.wantOf(id) !== undefined) this.markId(id);
  }

  /** Start automatic applies (debounced after changes, periodic resync). */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.opts.resyncIntervalMs > 0) {
      this.resyncTimer = setInterval(() => this.markResync(), this.opts.resyncIntervalMs);
      this.resyncTimer.unref();
    }
    this.schedule(0);
  }

  stop(): void {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.resyncLater) clearTimeout(this.resyncLater);
    if (this.compactTimer) clearTimeout(this.compactTimer);
    this.timer = this.resyncTimer = this.resyncLater = this.compactTimer = undefined;
  }

  private schedule(delay = this.opts.debounceMs): void {
    if (!this.started || this.timer) return;
    this.timer = setTimeout(this.fire, delay);
  }

  /** schedule()'s timer callback, made once: an arrow inside schedule() made every call of it (one per
   *  changed key: 1M in a bulk change) allocate a context for `this`, timer or not */
  private readonly fire = (): void => {
    this.timer = undefined;
    this.apply().then(
      (r) => {
        // failures are retried; conflicts wait for the foreign object to go (an event) or a resync
        if (r.failed.length || this.needResync) this.schedule(this.opts.retryMs);
      },
      () => this.schedule(this.opts.retryMs),
    );
  };

  /** The ids are renumbered once passes have stopped for compactQuietMs: in a withdraw-all the passes
   *  often end before the next withdrawals arrive, and a renumbering at each pass that found half the ids
   *  free (100k, 150k, 175k… of 200k) made new columns, a remap and a rehash each (~4 MB of ArrayBuffers
   *  at the agent's peak) and threw the old ones away. Each pass pushes it back. */
  private compactWhenQuiet(): void {
    if (this.compactTimer) clearTimeout(this.compactTimer);
    this.compactTimer = setTimeout(this.compactNow, this.opts.compactQuietMs);
    this.compactTimer.unref();
  }
  private readonly compactNow = (): void => {
    this.compactTimer = undefined;
    // a pass running or due arms it again when it ends
    if (!this.running && this.s.dirtyCount === 0) this.s.compact();
  };

  /** One reconcile pass; concurrent callers share a pass (and a follow-up pass when more changed). */
  apply(): Promise<ApplyResult<T>> {
    if (this.running) {
      this.again = true;
      return this.running.then(() => (this.running ? this.running : this.apply()));
    }
    const run = this.pass().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        if (this.s.dirtyCount || this.needResync) this.schedule(0);
      }
      if (this.inSync) this.emit('insync');
    });
    this.running = run;
    return run;
  }

  /** One pass: the dump when due, then the dirty keys sorted into removes and applies (classify), each
   *  batch handed to the driver and its result taken in (settleRemoves/settleApplies). In small parts: a
   *  hot loop is compiled on its own (a withdraw-all runs branches an ingest never took, and recompiling
   *  the whole pass there — ~3.6 MB of compiler memory for 40–60 ms — added to the agent's peak). */
  private async pass(): Promise<ApplyResult<T>> {
    const d = this.driver;
    const s = this.s;
    const resynced = this.needResync ? await this.resync() : false;
    const ids = s.takeDirty();
    const plan = this.classify(ids);
    const { nApply, nRemove } = plan;
    const n = ids.length;
    // the larger side keeps the array, the other is copied out (a withdraw-all is all removes: a copy of
    // them was a second array of the pass's size, in the large-object space until a full GC)
    const items = plan.items;
    let toApply: T[];
    let toRemove: T[];
    if (nRemove > nApply) {
      toApply = items.slice(0, nApply);
      moveDown(items, n - nRemove, nRemove);
      items.length = nRemove;
      toRemove = items;
    } else {
      toRemove = nRemove ? items.slice(n - nRemove) : [];
      items.length = nApply;
      toApply = items;
    }
    const itemIds = this.passIds;
    const removeIds = itemIds.subarray(n - nRemove, n);
    const failed: Failure<T>[] = [];
    let removeFailed = 0;
    let applyFailed = 0;
    if (toRemove.length) {
      const f = await d.remove(toRemove, removeIds);
      this.settleRemoves(toRemove, removeIds, f);
      pushAll(failed, f);
      removeFailed = f.length;
    }
    if (toApply.length) {
      const f = await d.apply(toApply, itemIds.subarray(0, nApply));
      const bad = this.settleApplies(toApply, itemIds, f);
      pushAll(failed, f);
      applyFailed = f.length;
      if (plan.leftOld.size) {
        const old: T[] = [];
        const oldIds: number[] = [];
        for (const [i, it] of plan.leftOld)
          if (!bad.has(i)) {
            old.push(it);
            oldIds.push(itemIds[i]!);
          }
        // a failure is reported (lastError); the stale object goes when a dump lists it under its key
        if (old.length) pushAll(failed, await d.remove(old, oldIds));
      }
    }
    for (const id of plan.conflictIds) s.mark(id);
    if (failed.length)
      this.lastError = { message: `${failed.length} ${d.kind} change(s) failed: ${failed[0]!.error.message}`, at: new Date() };
    const result: ApplyResult<T> = {
      added: toApply.length - applyFailed,
      removed: toRemove.length - removeFailed,
      failed,
      conflicts: plan.conflicts,
      resynced,
      held: plan.held,
    };
    // no id is held past this point; scratch too large to keep for the next pass goes
    s.passDone();
    if (this.passIds.length > KEEP_PASS) this.passIds = new Int32Array(QUIET_PASS);
    if (s.dirtyCount === 0) this.compactWhenQuiet();
    this.emit('applied', result);
    return result;
  }

  /** The resync dump: true when it completed (the kernel state is the dump's now). */
  private async resync(): Promise<boolean> {
    const d = this.driver;
    const s = this.s;
    this.needResync = false;
    // a dump gives way to changes made meanwhile (a withdraw-all does not wait for a 1M-route dump),
    // unless this resync has waited long enough already (constant change never starves it)
    const yieldAfter = this.opts.yieldAfter;
    const since = this.resyncSince ?? Date.now();
    const dirty0 = s.dirtyCount;
    const stop =
      d.listEach && yieldAfter > 0 && Date.now() - since < this.opts.resyncMaxWaitMs
        ? () => s.dirtyCount - dirty0 >= yieldAfter
        : undefined;
    const p = this.dumps;
    const t0 = Date.now();
    p.state = 'listing';
    p.listed = 0;
    try {
      // kernel state as dumped: objects a desired key collides with, or ours. One equal to its desired
      // object is kept as that object (the dumped one is dropped at once: with `copy` it is transient)
      const keep = d.copy;
      const absorb = (it: T): void => {
        p.listed++;
        const k = d.key(it);
        let id = s.find(k);
        const want = id < 0 ? undefined : s.wantOf(id);
        if (want !== undefined && d.equal(want, it)) s.dumped(id, want);
        else if (want !== undefined || d.owned(it)) {
          if (id < 0) id = s.intern(k);
          s.dumped(id, keep ? keep(it) : it);
        }
      };
      if (d.listEach) {
        await d.listEach(() => {
          s.beginDump();
          p.listed = 0;
          return absorb;
        }, stop);
      } else {
        const list = await d.list();
        s.beginDump();
        for (const it of list) absorb(it);
      }
      s.clearHeld(); // every owned object is looked at again below
      // only what differs is dirty (not every desired key: a resync of a converged 1M-route table does no more)
      s.endDump((id) => s.mark(id));
      this.resyncSince = undefined;
      p.last = { listed: p.listed, ms: Date.now() - t0, at: new Date() };
      return true;
    } catch (e) {
      s.abortDump();
      if (stop?.()) {
        // gave way: the changes are made now, the dump again once they are quiet (the first ask's deadline holds)
        p.gaveWay++;
        this.markResyncSoon(this.opts.yieldQuietMs);
      } else {
        // apply what is known (the dirty keys against the last known kernel state); dump again later
        this.needResync = true;
        this.lastError = { message: `list ${d.kind}s: ${e instanceof Error ? e.message : String(e)}`, at: new Date() };
      }
      return false;
    } finally {
      p.state = 'idle';
    }
  }

  /** The dirty keys sorted: applies from the front of the pass's arrays, removes from the back. Keys
   *  and ids travel with the items (no lookup per item after the batch); the arrays are sized for all
   *  dirty ids at once (grown by push, 1M-entry arrays were copied ~3 times their size). The ids' array
   *  is the last pass's when large enough (a new one each pass outlived the kernel's acks and waited
   *  for a full GC). */
  private classify(ids: Int32Array): PassPlan<T> {
    const d = this.driver;
    const s = this.s;
    const n = ids.length;
    let itemIds = this.passIds;
    if (itemIds.length < n || (n <= QUIET_PASS && itemIds.length > QUIET_PASS))
      itemIds = this.passIds = new Int32Array(n <= QUIET_PASS ? QUIET_PASS : 2 ** Math.ceil(Math.log2(n)));
    const items: T[] = new Array(n);
    const plan: PassPlan<T> = { items, nApply: 0, nRemove: 0, held: 0, conflicts: [], conflictIds: [], leftOld: new Map() };
    let nRemove = 0;
    let nApply = 0;
    for (let j = 0; j < n; j++) {
      const id = ids[j]!;
      const want = s.wantOf(id);
      const have = s.haveOf(id);
      if (want === undefined) {
        if (have !== undefined && d.owned(have)) {
          // kept while holding unless this process wanted it (a withdrawal: its object is this run's — a
          // flag per key, not a key string per withdrawn route); holdDeletes(false) marks it dirty again
          if (this.hold && !s.wasWanted(id)) {
            plan.held++;
            s.setHeld(id, true);
          } else {
            nRemove++;
            itemIds[n - nRemove] = id;
            items[n - nRemove] = have;
          }
        } else s.release(id);
      } else if (have !== undefined && have !== want && d.equal(want, have)) {
        s.setHave(id, want); // the same object for both: a dumped copy of every route is not kept alive
      } else if (have === undefined || !d.equal(want, have)) {
        if (have !== undefined && !d.owned(have) && !d.mayReplace?.(have)) {
          plan.conflicts.push(s.key(id));
          plan.conflictIds.push(id);
        } else {
          if (have !== undefined && d.owned(have) && d.leavesOld?.(want, have)) plan.leftOld.set(nApply, have);
          itemIds[nApply] = id;
          items[nApply++] = want;
        }
      }
    }
    plan.nApply = nApply;
    plan.nRemove = nRemove;
    return plan;
  }

  /** The kernel took the removes but the failed ones: those are dirty again, the others forgotten. */
  private settleRemoves(toRemove: T[], removeIds: Int32Array, f: Failure<T>[]): void {
    const s = this.s;
    const bad = failedAt(f, toRemove);
    for (let i = 0; i < toRemove.length; i++) {
      const id = removeIds[i]!;
      if (bad.has(i)) s.mark(id);
      else if (s.haveOf(id) === toRemove[i]) {
        s.setHave(id, undefined);
        s.release(id);
      }
    }
  }

  /** The kernel took the applies but the failed ones (returned, by index): those are dirty again. */
  private settleApplies(toApply: T[], applyIds: Int32Array, f: Failure<T>[]): Set<number> {
    const d = this.driver;
    const s = this.s;
    const bad = failedAt(f, toApply);
    for (let i = 0; i < toApply.length; i++) {
      const id = applyIds[i]!;
      if (bad.has(i)) s.mark(id);
      else {
        // an event read before the batch's ack is newer than our change: unless it is ours coming back,
        // someone changed or deleted the object right after the kernel took ours — that stays the
        // known state, and observe()/forget() made the key dirty for the next pass
        const now = s.haveOf(id);
        if (!s.seenSinceTaken(id) || (now !== undefined && d.equal(toApply[i]!, now))) s.setHave(id, toApply[i]!);
      }
    }
    return bad;
  }
}

/** A pass's dirty keys sorted by classify(): applies at the front of `items`, removes at the back. */
interface PassPlan<T> {
  items: T[];
  nApply: number;
  nRemove: number;
  /** owned objects kept because deletes are held */
  held: number;
  /** desired keys held by someone else's object */
  conflicts: string[];
  conflictIds: number[];
  /** owned objects a replace leaves beside the new one, by index in the applies */
  leftOld: Map<number, T>;
}

/** The indexes of failed items (by index when the driver says, else by identity). */
function failedAt<T>(f: Failure<T>[], items: T[]): Set<number> {
  const out = new Set<number>();
  if (!f.length) return out;
  const byItem = new Set<T>();
  for (const x of f) {
    if (x.index !== undefined) out.add(x.index);
    else byItem.add(x.item);
  }
  if (byItem.size) for (let i = 0; i < items.length; i++) if (byItem.has(items[i]!)) out.add(i);
  return out;
}

/** items[from … from + count) moved to the front (the loop alone: code after it, never run before
 *  the loop's on-stack replacement, deoptimised that code at every call). */
function moveDown<T>(items: T[], from: number, count: number): void {
  for (let i = 0; i < count; i++) items[i] = items[from + i]!;
}

/** `to.push(...from)` without spreading (a long list of failures would overflow the stack). */
function pushAll<T>(to: T[], from: readonly T[]): void {
  for (let i = 0; i < from.length; i++) to.push(from[i]!);
}
