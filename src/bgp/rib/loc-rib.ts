// Loc-RIB: for each prefix, every usable path (at most one per source) with the best one first.
// The per-peer Adj-RIBs-In (after import policy) are folded in: a peer's Adj-RIB-In is the set of
// slots holding a path from its source (RFC 4271 §3.2 lets the RIBs be conceptual) — one table for
// all of them, one lookup per received prefix.
// A prefix with a single path stores the Path itself (no array): a full table learned from one
// peer costs one 8-byte slot per prefix (slot-table.ts; Path objects are shared, see path.ts).
//
// upsert/remove report whether what the prefix resolves to changed (its best path, or its multipath
// set when multipath is on) — the speaker then re-exports that prefix and emits 'best'/'withdrawn'.
// They maintain Path.refs and PathSource.routes, and call `release(path)` when a path's last prefix
// lets go of it.
import { decide, type Decision, type DecisionOptions } from './decision.js';
import type { Path, PathSource } from './path.js';
import type { PrefixKey } from './prefix-table.js';
import { SlotTable } from './slot-table.js';

export class LocRib {
  readonly table = new SlotTable();

  constructor(
    readonly opts: DecisionOptions = {},
    private readonly release: (p: Path) => void = () => {},
  ) {}

  get size(): number {
    return this.table.size;
  }

  best(bucket: number, key: PrefixKey): Path | undefined {
    const s = this.table.get(bucket, key);
    return s === undefined ? undefined : Array.isArray(s) ? s[0] : s;
  }

  paths(bucket: number, key: PrefixKey): Path[] {
    const s = this.table.get(bucket, key);
    return s === undefined ? [] : Array.isArray(s) ? s.slice() : [s];
  }

  /** The path of one source for a prefix (a peer's Adj-RIB-In entry). */
  pathOf(bucket: number, key: PrefixKey, source: PathSource): Path | undefined {
    const s = this.table.get(bucket, key);
    if (s === undefined) return undefined;
    if (!Array.isArray(s)) return s.source === source ? s : undefined;
    return s.find((p) => p.source === source);
  }

  /** The full decision (best, reason, multipath set) for a prefix. */
  decision(bucket: number, key: PrefixKey): Decision {
    return decide(this.paths(bucket, key), this.opts);
  }

  private hold(p: Path, isNew: boolean): void {
    p.refs++;
    if (isNew) p.source.routes++;
  }

  private drop(p: Path, gone: boolean): void {
    if (gone) p.source.routes--;
    if (--p.refs === 0) {
      this.table.forget(p);
      this.release(p);
    }
  }

  /** Add the path, replacing the one from the same source. Returns true when the prefix's result changed. */
  upsert(bucket: number, key: PrefixKey, path: Path): boolean {
    const s = this.table.setIfAbsent(bucket, key, path);
    if (s === undefined) {
      this.hold(path, true);
      return true;
    }
    if (!Array.isArray(s)) {
      if (s === path) return false;
      if (s.source === path.source) {
        this.table.set(bucket, key, path);
        this.hold(path, false);
        this.drop(s, false);
        return s.attrs !== path.attrs;
      }
      this.hold(path, true);
      return this.resolve(bucket, key, [s], [s, path]);
    }
    const i = s.findIndex((p) => p.source === path.source);
    if (i >= 0 && s[i] === path) return false;
    const next = s.slice();
    if (i >= 0) {
      const old = s[i]!;
      next[i] = path;
      this.hold(path, false);
      this.drop(old, false);
    } else {
      next.push(path);
      this.hold(path, true);
    }
    return this.resolve(bucket, key, s, next);
  }

  /** Remove the path of this source (only if it is `only`, when given). Returns true when the prefix's result changed. */
  remove(bucket: number, key: PrefixKey, source: PathSource, only?: (p: Path) => boolean): boolean {
    const s = this.table.get(bucket, key);
    if (s === undefined) return false;
    if (!Array.isArray(s)) {
      if (s.source !== source || (only && !only(s))) return false;
      this.table.delete(bucket, key);
      this.drop(s, true);
      return true;
    }
    const i = s.findIndex((p) => p.source === source);
    if (i < 0 || (only && !only(s[i]!))) return false;
    const old = s[i]!;
    const next = s.slice();
    next.splice(i, 1);
    const changed = this.resolve(bucket, key, s, next);
    this.drop(old, true);
    return changed;
  }

  /** Store `next` best-first; report whether best/multipath changed compared with `prev`. */
  private resolve(bucket: number, key: PrefixKey, prev: Path[], next: Path[]): boolean {
    const oldBest = prev[0];
    const oldMp = this.opts.multipath && prev.length > 1 ? decide(prev, this.opts).multipath : undefined;
    if (next.length === 1) {
      this.table.set(bucket, key, next[0]!);
      return !samePath(next[0], oldBest) || (oldMp !== undefined && oldMp.length > 1);
    }
    const d = decide(next, this.opts);
    const best = d.best!;
    const ordered = [best, ...next.filter((p) => p !== best)];
    this.table.set(bucket, key, ordered);
    if (!samePath(best, oldBest)) return true;
    if (this.opts.multipath) {
      const before = oldMp ?? [oldBest!];
      if (before.length !== d.multipath.length || before.some((p, j) => !samePath(p, d.multipath[j]))) return true;
    }
    return false;
  }

  forEach(fn: (best: Path, bucket: number, key: PrefixKey, all: Path | Path[]) => void): void {
    this.table.forEach((s, b, k) => fn(Array.isArray(s) ? s[0]! : s, b, k, s));
  }
}

/** Same source and same attributes (a re-announcement with nothing new is not a change). */
export function samePath(a: Path | undefined, b: Path | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.source === b.source && a.attrs === b.attrs);
}
