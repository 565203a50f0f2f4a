// Update groups (as FRR's update-groups; BIRD/GoBGP likewise build an export once per policy): peers
// with the same export policy and the same negotiated encoding share ONE Adj-RIB-Out and ONE encoded
// UPDATE stream — each change is exported, packed and encoded once per group, and the same Buffers
// are queued to every member's session (no per-prefix state per member, no per-member encoding).
//
// The shared table keeps, per prefix, the attribute set sent and the path's source. Split horizon
// (never send a path back to the peer it came from) stays exact per member: a batch built from
// source S goes to every member but S, and when the best path of a prefix moves to S the member S
// is sent a withdrawal of what it had. Back-pressure is per session: each member has its own queue of
// encoded messages, written as its socket accepts; the group stops producing while a member's queue
// is over its high water mark (the group goes at the pace of its slowest member), and a member that holds the
// group back for a while leaves it — it gets its own Adj-RIB-Out, seeded with exactly what it has
// been queued, and continues alone (it may rejoin once it has caught up).
import { Buffer } from 'node:buffer';
import type { CodecCaps, PrefixList } from './codec/types.js';
import type { Peer } from './peer.js';
import type { AttrSet, AttrTable } from './rib/attrs.js';
import type { PathSource } from './rib/path.js';
import { PrefixTable, BUCKET_V6, type PrefixKey } from './rib/prefix-table.js';
import { doubled } from '../common/typed-array.js';

/** Flow limits of a group (BgpSpeakerOptions.updateGroups). */
export interface GroupLimits {
  /** A member's queued bytes above which the group stops producing (default 1 MiB) ... */
  highWater: number;
  /** ... and below which the member lets it produce again (256 KiB). */
  lowWater: number;
  /** A member that holds the group back this long leaves it (3000 ms). */
  evictMs: number;
}

export function groupLimits(o: Partial<GroupLimits> = {}): GroupLimits {
  return { highWater: o.highWater ?? 1 << 20, lowWater: o.lowWater ?? 256 << 10, evictMs: o.evictMs ?? 3000 };
}

let nextGroupId = 1;

/** The key of a peer's update group: everything its exported attributes and their encoding depend on. */
export function groupKey(p: Peer, identityAsn: number): string | undefined {
  const n = p.negotiated;
  if (!n || p.filters.hasExport(1) || p.filters.hasExport(2)) return undefined;
  const c = n.caps;
  return JSON.stringify([identityAsn, p.policy, c.as4, c.extendedMessage, [...c.addPathTx].sort(), [...n.families].sort()]);
}

/** A growable list of prefixes of one family (typed arrays; no object per prefix). */
class ListBuilder {
  addrs: Uint32Array;
  lens: Uint8Array;
  count = 0;
  constructor(readonly afi: 1 | 2) {
    this.addrs = new Uint32Array(afi === 1 ? 64 : 256);
    this.lens = new Uint8Array(64);
  }
  push(b: number, k: PrefixKey): void {
    if (this.count === this.lens.length) {
      this.addrs = doubled(this.addrs);
      this.lens = doubled(this.lens);
    }
    const i = this.count++;
    if (b !== BUCKET_V6) {
      this.addrs[i] = (k as number) >>> 0;
      this.lens[i] = b;
      return;
    }
    const s = k as string;
    const slash = s.indexOf('/');
    const w = s.slice(0, slash).split(',');
    for (let j = 0; j < 4; j++) this.addrs[4 * i + j] = Number(w[j]);
    this.lens[i] = Number(s.slice(slash + 1));
  }
  list(): PrefixList {
    const w = this.afi === 1 ? 1 : 4;
    return {
      afi: this.afi,
      safi: 1,
      count: this.count,
      addrs: this.addrs.subarray(0, this.count * w),
      lens: this.lens.subarray(0, this.count),
      pathIds: null,
    };
  }
}

/** Prefixes of one attribute set (null: withdrawals) for the members selected by `except` / `only`. */
export interface GroupBatch {
  afi: 1 | 2;
  attrs: AttrSet | null;
  prefixes: PrefixList;
  /** Every member but this source's peer. */
  except: PathSource | undefined;
  /** Only this source's peer (a withdrawal: the best path moved to it). */
  only: PathSource | undefined;
}

interface Building {
  attrs: AttrSet | null;
  except: PathSource | undefined;
  only: PathSource | undefined;
  v4: ListBuilder | undefined;
  v6: ListBuilder | undefined;
}

/** The shared Adj-RIB-Out of a group: attribute set and source per prefix, pending changes coalesced. */
export class GroupRibOut {
  readonly sent = new PrefixTable<AttrSet>();
  private readonly src = new PrefixTable<PathSource>();
  private readonly pending = new PrefixTable<AttrSet | null>();
  private readonly pendingSrc = new PrefixTable<PathSource>();
  /** How many prefixes of the table each source holds (a member is sent all but its own). */
  private readonly sourced = new Map<PathSource, number>();

  constructor(private readonly table: AttrTable) {}

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Prefixes a member whose own source is `s` has from the group. */
  sentTo(s: PathSource): number {
    return this.sent.size - (this.sourced.get(s) ?? 0);
  }

  /** Source of the prefix's entry (undefined: not in the table). */
  sourceOf(b: number, k: PrefixKey): PathSource | undefined {
    return this.src.get(b, k);
  }

  /** What members should have for this prefix: the attribute set exported from `source`'s path, or null. */
  want(b: number, k: PrefixKey, attrs: AttrSet | null, source: PathSource | undefined): void {
    const cur = this.sent.get(b, k);
    if (attrs === null ? cur === undefined : cur === attrs && this.src.get(b, k) === source) {
      this.pending.delete(b, k);
      return;
    }
    this.pending.set(b, k, attrs);
    if (attrs !== null) this.pendingSrc.set(b, k, source!);
  }

  /** Set an entry without sending it (building a group from what its first member already has). */
  seed(b: number, k: PrefixKey, attrs: AttrSet, source: PathSource): void {
    this.table.ref(attrs);
    this.sent.set(b, k, attrs);
    this.src.set(b, k, source);
    this.sourced.set(source, (this.sourced.get(source) ?? 0) + 1);
  }

  /** Pending changes as a member whose source is `s` would see them: (b, k, attrs or null). */
  forEachPending(s: PathSource, fn: (b: number, k: PrefixKey, attrs: AttrSet | null) => void): void {
    this.pending.forEach((a, b, k) => fn(b, k, a !== null && this.pendingSrc.get(b, k) === s ? null : a));
  }

  /** What a member whose source is `s` has: every entry not from `s`. */
  forEachSentTo(s: PathSource, fn: (attrs: AttrSet, b: number, k: PrefixKey) => void): void {
    this.sent.forEach((a, b, k) => {
      if (this.src.get(b, k) !== s) fn(a, b, k);
    });
  }

  /** Take up to `max` pending changes as batches (withdrawals first); the table is updated as if they were sent. */
  take(max: number): GroupBatch[] {
    const withdraw = new Map<PathSource | undefined, Building>();
    const only = new Map<PathSource, Building>();
    const announce = new Map<AttrSet, Map<PathSource, Building>>();
    let lastAttrs: AttrSet | undefined;
    let lastSrc: PathSource | undefined;
    let last: Building | undefined;
    const add = (g: Building, b: number, k: PrefixKey): void => {
      if (b === BUCKET_V6) (g.v6 ??= new ListBuilder(2)).push(b, k);
      else (g.v4 ??= new ListBuilder(1)).push(b, k);
    };
    let n = 0;
    for (const [b, k, attrs] of this.pending.entries()) {
      if (n++ >= max) break;
      this.pending.delete(b, k);
      const cur = this.sent.get(b, k);
      const curSrc = this.src.get(b, k);
      if (attrs === null) {
        this.pendingSrc.delete(b, k);
        if (cur === undefined) continue;
        this.drop(b, k, cur, curSrc!);
        let g = withdraw.get(curSrc);
        if (!g) withdraw.set(curSrc, (g = { attrs: null, except: curSrc, only: undefined, v4: undefined, v6: undefined }));
        add(g, b, k);
        continue;
      }
      const s = this.pendingSrc.get(b, k)!;
      this.pendingSrc.delete(b, k);
      if (cur === attrs && curSrc === s) continue;
      this.table.ref(attrs);
      if (cur !== undefined) {
        this.drop(b, k, cur, curSrc!);
        if (curSrc !== s) {
          // The member s had this prefix (from another source): now its own path is best — withdraw it there.
          let w = only.get(s);
          if (!w) only.set(s, (w = { attrs: null, except: undefined, only: s, v4: undefined, v6: undefined }));
          add(w, b, k);
        }
      }
      this.sent.set(b, k, attrs);
      this.src.set(b, k, s);
      this.sourced.set(s, (this.sourced.get(s) ?? 0) + 1);
      let g: Building | undefined;
      if (attrs === lastAttrs && s === lastSrc) g = last;
      else {
        let bySrc = announce.get(attrs);
        if (!bySrc) announce.set(attrs, (bySrc = new Map()));
        g = bySrc.get(s);
        if (!g) bySrc.set(s, (g = { attrs, except: s, only: undefined, v4: undefined, v6: undefined }));
        lastAttrs = attrs;
        lastSrc = s;
        last = g;
      }
      add(g!, b, k);
    }
    const out: GroupBatch[] = [];
    const emit = (g: Building): void => {
      for (const l of [g.v4, g.v6])
        if (l?.count) out.push({ afi: l.afi, attrs: g.attrs, prefixes: l.list(), except: g.except, only: g.only });
    };
    for (const g of withdraw.values()) emit(g);
    for (const g of only.values()) emit(g);
    for (const m of announce.values()) for (const g of m.values()) emit(g);
    return out;
  }

  /**
   * The next part of a new member's initial dump: up to `max` entries of the table from `it` (an
   * iterator over `sent`, which survives changes between rounds), minus the member's own, grouped by
   * attribute set. The member's queue holds the group's changes in order with these, so it ends at the
   * latest state whatever the iterator sees.
   */
  dumpRound(it: Iterator<[number, PrefixKey, AttrSet]>, own: PathSource, max: number): { batches: GroupBatch[]; done: boolean } {
    const by = new Map<AttrSet, Building>();
    let n = 0;
    for (;;) {
      if (n++ >= max) return { batches: emitAll(by.values()), done: false };
      const r = it.next();
      if (r.done) return { batches: emitAll(by.values()), done: true };
      const [b, k, a] = r.value;
      if (this.src.get(b, k) === own) continue;
      let g = by.get(a);
      if (!g) by.set(a, (g = { attrs: a, except: undefined, only: undefined, v4: undefined, v6: undefined }));
      if (b === BUCKET_V6) (g.v6 ??= new ListBuilder(2)).push(b, k);
      else (g.v4 ??= new ListBuilder(1)).push(b, k);
    }
  }

  private drop(b: number, k: PrefixKey, cur: AttrSet, curSrc: PathSource): void {
    this.sent.delete(b, k);
    this.src.delete(b, k);
    const c = (this.sourced.get(curSrc) ?? 1) - 1;
    if (c > 0) this.sourced.set(curSrc, c);
    else this.sourced.delete(curSrc);
    this.table.unref(cur);
  }

  clear(): void {
    this.sent.forEach((a) => this.table.unref(a));
    this.sent.clear();
    this.src.clear();
    this.pending.clear();
    this.pendingSrc.clear();
    this.sourced.clear();
  }
}

function emitAll(gs: Iterable<Building>): GroupBatch[] {
  const out: GroupBatch[] = [];
  for (const g of gs)
    for (const l of [g.v4, g.v6])
      if (l?.count) out.push({ afi: l.afi, attrs: g.attrs, prefixes: l.list(), except: g.except, only: g.only });
  return out;
}

/** A member's queue of encoded messages (shared Buffers), written as its socket accepts. */
export class OutQueue {
  private q: Buffer[] = [];
  private head = 0;
  bytes = 0;

  get length(): number {
    return this.q.length - this.head;
  }

  /** The most bytes ever queued. */
  peak = 0;

  push(b: Buffer): void {
    this.q.push(b);
    this.bytes += b.length;
    if (this.bytes > this.peak) this.peak = this.bytes;
  }

  /** Write until the socket pushes back (send returns false) or the queue is empty; false = pushed back. */
  write(send: (b: Buffer) => boolean): boolean {
    while (this.head < this.q.length) {
      const b = this.q[this.head]!;
      this.q[this.head++] = undefined as unknown as Buffer;
      this.bytes -= b.length;
      if (!send(b)) {
        this.compact();
        return false;
      }
    }
    this.q = [];
    this.head = 0;
    return true;
  }

  private compact(): void {
    if (this.head >= 1024 && this.head * 2 >= this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.q = [];
    this.head = 0;
    this.bytes = 0;
  }
}

export class UpdateGroup {
  readonly id = nextGroupId++;
  readonly members = new Set<Peer>();
  readonly out: GroupRibOut;
  /** (best attrs, source, afi) → export attribute set, as Peer.exportCache. */
  readonly exportCache = new Map<number, AttrSet | null>();
  /** A source no peer has: the reflection rules are asked as if for a member that sent nothing. */
  readonly target: PathSource;
  flushScheduled = false;
  /** UPDATE messages encoded for the members so far. */
  encoded = 0;
  /** When a member's full queue first held the group back (performance.now()), 0 when none. */
  stalledSince = 0;
  stallTimer: NodeJS.Timeout | undefined = undefined;
  /** The last member left: the table is released; the speaker drops the group. */
  disposed = false;

  constructor(
    readonly key: string,
    table: AttrTable,
    first: Peer,
  ) {
    this.out = new GroupRibOut(table);
    this.target = { ...first.source, id: -1, address: '' };
  }

  /** Any member: all share policy and encoding. */
  get rep(): Peer {
    return this.members.values().next().value!;
  }

  get caps(): CodecCaps {
    return this.rep.caps;
  }

  /**
   * Queue a round of encoded batches to the members each is for. The messages go out as ONE buffer
   * per member per round (one socket write, not one per UPDATE): shared by every member that gets all
   * of them; a member some batch skips (split horizon) gets its own concatenation.
   */
  deliver(round: readonly { batch: GroupBatch; bufs: readonly Buffer[] }[]): void {
    if (round.length === 0) return;
    const special = new Set<PathSource>();
    for (const r of round) {
      if (r.batch.except !== undefined) special.add(r.batch.except);
      if (r.batch.only !== undefined) special.add(r.batch.only);
    }
    let all: Buffer | undefined;
    for (const m of this.members) {
      if (!special.has(m.source)) {
        all ??= Buffer.concat(round.filter((r) => r.batch.only === undefined).flatMap((r) => r.bufs));
        if (all.length) m.outQueue.push(all);
        continue;
      }
      const mine = round.filter(
        (r) => (r.batch.except === undefined || r.batch.except !== m.source) && (r.batch.only === undefined || r.batch.only === m.source),
      );
      const buf = Buffer.concat(mine.flatMap((r) => r.bufs));
      if (buf.length) m.outQueue.push(buf);
    }
  }

  /** Some member is to receive the batch (not its source's peer; for `only`, that peer). */
  hasRecipient(batch: GroupBatch): boolean {
    for (const m of this.members)
      if ((batch.except === undefined || m.source !== batch.except) && (batch.only === undefined || m.source === batch.only)) return true;
    return false;
  }

  /** The member whose queue holds the group back, if any. */
  slowest(highWater: number): Peer | undefined {
    for (const m of this.members) if (m.outQueue.bytes > highWater) return m;
    return undefined;
  }

  /** A member leaves (session down, evicted); the last one out releases the table. */
  leave(p: Peer): void {
    this.members.delete(p);
    if (p.group === this) p.group = undefined;
    if (this.members.size === 0) this.dispose();
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.stallTimer);
    this.out.clear();
    this.exportCache.clear();
  }
}
