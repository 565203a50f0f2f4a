// The file store's in-memory view of its log (see file.ts), pure: records applied in order give the
// current keys (key → value, revision), the store revision, and a window of recent events for watch
// (contiguous revisions compactRev+1 .. rev). No I/O: file.ts reads and writes the log and feeds it.
import type { WatchEvent } from './types.js';
import type { HistEvent, Rec, SnapRec } from './file-log.js';

export interface Entry {
  value: unknown;
  revision: number;
}

export const clone = <T>(v: T): T => (v === undefined ? v : structuredClone(v));

export class LogState {
  private readonly entries = new Map<string, Entry>();
  /** Contiguous events (compactRev+1 .. rev]. */
  history: HistEvent[] = [];
  rev = 0;
  /** Bumped whenever the view is dropped or goes back in time: watches must re-list. */
  generation = 0;
  /** Where each active watch of this process stands (history it still needs is kept). */
  readonly watchPositions = new Set<{ next: number }>();
  /** The keys by parent (the key up to its last '/'): a list by prefix visits the parents under it, not
   *  every key — each CNI ADD lists pools, affinities and reservations of a store that holds every pod's
   *  endpoint and handle. */
  private readonly byParent = new Map<string, Set<string>>();

  constructor(
    private readonly historyKeep: number,
    /** Called whenever the view changed (wakes watchers). */
    private readonly changed: () => void,
  ) {}

  /** key → value and revision (changed only by applying records). */
  get data(): ReadonlyMap<string, Entry> {
    return this.entries;
  }

  /** The oldest revision a watch can start from minus one. */
  get compactRev(): number {
    return this.rev - this.history.length;
  }

  /** Forget everything (the log is replayed from its first byte next). */
  reset(): void {
    this.skipThrough = 0;
    if (this.rev > 0 || this.data.size > 0) this.generation++;
    this.clearKeys();
    this.history = [];
    this.rev = 0;
    this.changed();
  }

  /** After a snapshot behind this view (a compaction that ran behind writes this process has read,
   *  file.ts): the records up to this revision that follow it in the new log were applied already. */
  skipThrough = 0;
  /** That snapshot's revision (the records after it start at the next one). */
  skipFrom = 0;

  apply(rec: Rec): void {
    if (rec.o === 'snap') {
      this.skipThrough = 0;
      if (this.rev > rec.r && rec.r >= this.compactRev) {
        // Taken from this view's own history; the new log goes on with the records read since (the
        // reader checks they reach this revision, else the store did go back in time).
        this.skipThrough = this.rev;
        this.skipFrom = rec.r;
        return;
      }
      if (this.rev >= rec.c && this.rev <= rec.r) {
        // We were inside the kept window: replay only the events we have not seen.
        for (const h of withPrevious(rec.h)) if (h.r > this.rev) this.applyEvent(h);
      } else {
        if (this.rev > rec.r) this.generation++; // the store went back in time (a restore)
        this.clearKeys();
        for (const [k, r, v] of rec.kv) this.setKey(k, { value: v, revision: r });
        this.history = withPrevious(rec.h);
        this.rev = rec.r;
        this.changed();
      }
      return;
    }
    if (rec.o === 'txn') {
      rec.ops.forEach((op, i) =>
        this.applyEvent(op.o === 'put' ? { t: 'put', k: op.k, r: rec.r + i, v: op.v } : { t: 'delete', k: op.k, r: rec.r + i }),
      );
      return;
    }
    if (rec.o === 'put') this.applyEvent({ t: 'put', k: rec.k, r: rec.r, v: rec.v });
    else this.applyEvent({ t: 'delete', k: rec.k, r: rec.r });
  }

  /** The keys that start with `prefix`, in no order. */
  keysWithPrefix(prefix: string): string[] {
    const out: string[] = [];
    for (const [parent, keys] of this.byParent) {
      if (parent.startsWith(prefix)) for (const k of keys) out.push(k);
      else if (prefix.startsWith(parent)) for (const k of keys) if (k.startsWith(prefix)) out.push(k);
    }
    return out;
  }

  private setKey(k: string, e: Entry): void {
    if (!this.data.has(k)) {
      const parent = parentOf(k);
      const keys = this.byParent.get(parent);
      if (keys) keys.add(k);
      else this.byParent.set(parent, new Set([k]));
    }
    this.entries.set(k, e);
  }

  private deleteKey(k: string): void {
    if (!this.entries.delete(k)) return;
    const parent = parentOf(k);
    const keys = this.byParent.get(parent);
    keys?.delete(k);
    if (keys?.size === 0) this.byParent.delete(parent);
  }

  private clearKeys(): void {
    this.entries.clear();
    this.byParent.clear();
  }

  /** The snapshot record of the current view, keeping the last `historyKeep` events (and what watchers need). */
  snapshot(): SnapRec {
    this.trimHistory(this.historyKeep);
    const kv: SnapRec['kv'] = [...this.data].map(([k, e]) => [k, e.revision, e.value]);
    return { o: 'snap', r: this.rev, c: this.compactRev, kv, h: sharedPrevious(this.history) };
  }

  /** Keep the last `keep` events — and every event a watcher of this process has not delivered yet. */
  trimHistory(keep: number): void {
    let drop = this.history.length - keep;
    for (const pos of this.watchPositions) drop = Math.min(drop, pos.next - (this.compactRev + 1));
    if (drop > 0) this.history = this.history.slice(drop);
  }

  private applyEvent(h: HistEvent): void {
    const prev = this.data.get(h.k);
    const ev: HistEvent = prev === undefined ? h : { ...h, p: prev.value };
    if (h.t === 'put') this.setKey(h.k, { value: h.v, revision: h.r });
    else this.deleteKey(h.k);
    this.rev = h.r;
    this.history.push(ev);
    if (this.history.length > this.historyKeep * 2) this.trimHistory(this.historyKeep);
    this.changed();
  }
}

const parentOf = (k: string): string => k.slice(0, k.lastIndexOf('/') + 1);

/** `history` mapped by `fn`, which is also given the value the key's earlier put in it left (undefined:
 *  none in this history, or deleted since). */
function withEarlierPut(history: readonly HistEvent[], fn: (h: HistEvent, before: unknown) => HistEvent): HistEvent[] {
  const put = new Map<string, unknown>();
  return history.map((h) => {
    const before = put.get(h.k);
    if (h.t === 'put') put.set(h.k, h.v);
    else put.delete(h.k);
    return fn(h, before);
  });
}

/** A snapshot's history with each previous value that the key's earlier event in it put as v marked
 *  (q) instead of written again. */
const sharedPrevious = (history: readonly HistEvent[]): HistEvent[] =>
  withEarlierPut(history, (h, before) => {
    if (h.p === undefined || before === undefined || before !== h.p) return h;
    const { p: _, ...rest } = h;
    return { ...rest, q: 1 };
  });

/** sharedPrevious undone: every event with its previous value again (the same object as that v). */
const withPrevious = (history: readonly HistEvent[]): HistEvent[] =>
  withEarlierPut(history, (h, before) => {
    if (h.q === undefined) return h;
    const { q: _, ...rest } = h;
    return before === undefined ? rest : { ...rest, p: before };
  });

/** Why `rec` (at byte `at`) cannot follow revision `rev`, if it cannot. A snapshot opens a file; every
 *  other record is exactly the next revision. */
export function sequenceProblem(rec: Rec, at: number, rev: number): string | undefined {
  if (rec.o === 'snap') return at === 0 ? undefined : `a snapshot record in the middle of the log (revision ${rec.r})`;
  if (rec.r !== rev + 1) return `record of revision ${rec.r} after revision ${rev}`;
  return undefined;
}

/** A watch event whose value and previous are copied when first read (each read of one event returns
 *  the same copy): a watcher that only needs to know that something changed — the agent's resync
 *  trigger — copies nothing. Every CNI ADD commits a block, a handle and an endpoint, and structuredClone
 *  of those for every watcher was ~9 % of tabby-node's event loop at 8 ADDs at once. */
export function toEvent<T>(h: HistEvent): WatchEvent<T> {
  const ev = { type: h.t, key: h.k, revision: h.r } as WatchEvent<T>;
  if (h.t === 'put') copyOnRead(ev, 'value', h.v);
  if (h.p !== undefined) copyOnRead(ev, 'previous', h.p);
  return ev;
}

function copyOnRead(o: object, name: string, v: unknown): void {
  const settle = (x: unknown): unknown => {
    Object.defineProperty(o, name, { value: x, writable: true, enumerable: true, configurable: true });
    return x;
  };
  Object.defineProperty(o, name, { get: () => settle(clone(v)), set: settle, enumerable: true, configurable: true });
}
