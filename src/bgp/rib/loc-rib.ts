// Loc-RIB: for each prefix, every usable path (one per source) with the best one first.
// A prefix with a single path stores the Path itself (no array) — the common case of a full table
// learned from one peer costs one Map slot and one Path object per prefix.
//
// upsert/remove report whether what the prefix resolves to changed (its best path, or its multipath
// set when multipath is on) — the speaker then re-exports that prefix and emits 'best'/'withdrawn'.
import { decide, type Decision, type DecisionOptions } from './decision.js';
import type { Path, PathSource } from './path.js';
import { PrefixTable, type PrefixKey } from './prefix-table.js';

type Slot = Path | Path[];

export class LocRib {
  readonly table = new PrefixTable<Slot>();

  constructor(readonly opts: DecisionOptions = {}) {}

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

  /** The full decision (best, reason, multipath set) for a prefix. */
  decision(bucket: number, key: PrefixKey): Decision {
    return decide(this.paths(bucket, key), this.opts);
  }

  /** Add the path, replacing the one from the same source. Returns true when the prefix's result changed. */
  upsert(bucket: number, key: PrefixKey, path: Path): boolean {
    const s = this.table.get(bucket, key);
    if (s === undefined) {
      this.table.set(bucket, key, path);
      return true;
    }
    if (!Array.isArray(s)) {
      if (s.source === path.source) {
        this.table.set(bucket, key, path);
        return s.attrs !== path.attrs;
      }
      return this.resolve(bucket, key, [s], [s, path]);
    }
    const next = s.slice();
    const i = next.findIndex((p) => p.source === path.source);
    if (i >= 0) next[i] = path;
    else next.push(path);
    return this.resolve(bucket, key, s, next);
  }

  /** Remove the path of this source. Returns true when the prefix's result changed. */
  remove(bucket: number, key: PrefixKey, source: PathSource): boolean {
    const s = this.table.get(bucket, key);
    if (s === undefined) return false;
    if (!Array.isArray(s)) {
      if (s.source !== source) return false;
      this.table.delete(bucket, key);
      return true;
    }
    const i = s.findIndex((p) => p.source === source);
    if (i < 0) return false;
    const next = s.slice();
    next.splice(i, 1);
    return this.resolve(bucket, key, s, next);
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
