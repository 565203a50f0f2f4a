// The agent's route table: one record per prefix BGP learned — its best next hop(s), the peer it came
// from, the kernel route computed for it or why there is none. It is the middle stage of the route
// pipeline (DESIGN.md): the speaker hands it changed prefixes, it computes the kernel route only for
// those and hands the dataplane deltas (set/delete one route), and `lookup`/`explain` answer
// `/status` and `tabbyctl route explain` from the same records.
// Prefixes with the same pool, next hops, source and metric share one Group holding the route template
// (learnedTemplate in routes.ts): a pool, node-address or kernel-capability change recomputes one
// template per group and rewrites only the prefixes of groups whose template changed; a pool change
// re-homes only the prefixes of groups the changed pools can contain (the index: group → prefixes).
// A record's BGP decision reason is not stored: the Loc-RIB is asked when a record is read.
// Prefixes are ids of a PrefixIds (an IPv4 prefix as two numbers, no string): the dataplane's route
// reconciler shares its one (RouteSink.prefixIds), so the table and the reconciler hold one id per
// prefix and hand routes over by id — a template route object per group, no object or string per prefix.
import { cidrContainsCidr, formatCidr, parseCidr, tryParseCidr } from '../common/ip.js';
import { PagedColumn } from '../common/paged-column.js';
import { PrefixIds } from '../dataplane/prefix-ids.js';
import type { Route } from '../dataplane/routes.js';
import {
  learnedTemplate,
  poolIndexOf,
  prefixNum,
  NO_ROUTE_TEXT,
  type NoRouteReason,
  type PrefixNum,
  type RouteContext,
  type RouteTemplate,
} from './routes.js';

/** Where the table's kernel routes go (the dataplane's desired state; it programs the kernel in batches). */
export interface RouteSink {
  setRoute(route: Route): void;
  deleteRoute(dst: string): void;
  /** the sink's prefix ids (optional): then routes go by id — `route` is a template whose dst is not read */
  prefixIds?: PrefixIds;
  setRouteAt?(id: number, route: Route): void;
  deleteRouteAt?(id: number): void;
}

/** What `route explain` and `/status` show for one prefix. */
export interface RouteRecord {
  /** the learned prefix (canonical) */
  prefix: string;
  nextHops: readonly string[];
  /** the BGP peer the best path came from ('' = originated here) */
  source: string;
  /** kernel route priority set by a BGPFilter setPriority (absent: the kernel's default) */
  metric?: number;
  /** why BGP chose this path over the others (the Loc-RIB's decision reason: 'only-path', 'local-pref', …) */
  decision?: string;
  /** the enabled pool containing the prefix, if any */
  pool?: string;
  /** the kernel route tabby wants for it */
  route?: Route;
  /** why there is no kernel route */
  reason?: NoRouteReason;
  /** the reason in words */
  why?: string;
}

interface Group {
  key: string;
  /** its slot in RouteTable.groupList */
  ix: number;
  poolIndex: number;
  readonly family: 4 | 6;
  readonly nextHops: readonly string[];
  readonly source: string;
  readonly metric: number | undefined;
  tpl: RouteTemplate;
  /** the kernel route of a member (dst ''), one object for all: undefined when the template is no route */
  route: Route | undefined;
  /** prefixes in the group (they are found by a scan of the table when a pool or template changes —
   *  rare — rather than kept in a set per group: a Set entry per prefix cost as much as the table's own) */
  count: number;
}

const groupKey = (poolIndex: number, source: string, metric: number | undefined, nh: readonly string[]): string =>
  `${poolIndex} ${source} ${metric ?? ''} ${nhKey(nh)}`;

const joined = new WeakMap<readonly string[], string>();
const nhKey = (nh: readonly string[]): string => {
  let k = joined.get(nh);
  if (k === undefined) {
    k = nh.join(',');
    joined.set(nh, k);
  }
  return k;
};

/** The same next hops (the speaker hands one array per attribute set: equal lists are often not one
 *  array, and telling them apart by identity built a group key per attribute-set change). */
function sameHops(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameTemplate(a: RouteTemplate | undefined, b: RouteTemplate): boolean {
  if (a === undefined) return false;
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.gateway === b.gateway && a.dev === b.dev && !!a.onlink === !!b.onlink;
}

const poolDesc = (ctx: RouteContext, i: number): string => {
  const p = ctx.pools[i]?.pool;
  return p ? `${p.cidr} ${p.ipipMode} ${p.vxlanMode}` : '';
};

const templateRoute = (t: RouteTemplate, metric: number | undefined): Route | undefined => routeOf('', t, metric, false);

/** The kernel route of a prefix with this template, or undefined (no route, or an own block's). */
function routeOf(prefix: string, t: RouteTemplate | undefined, metric: number | undefined, own: boolean): Route | undefined {
  if (t === undefined || typeof t === 'string' || own) return undefined;
  const r: Route = t.dev
    ? t.onlink
      ? { dst: prefix, gateway: t.gateway, dev: t.dev, onlink: true }
      : { dst: prefix, gateway: t.gateway, dev: t.dev }
    : { dst: prefix, gateway: t.gateway };
  if (metric !== undefined) r.metric = metric;
  return r;
}

const routable = (t: RouteTemplate | undefined, own: boolean): boolean => t !== undefined && typeof t !== 'string' && !own;

export class RouteTable {
  /** by prefix id: its group's slot in groupList, 0 = not learned (the record is the group: the kernel
   *  route follows from the group's template, so nothing per prefix is kept beyond this slot and the
   *  id — an index as narrow as the number of groups needs, usually one byte, rather than a pointer in
   *  a JS array: an eighth of the size, off V8's heap; in pages, so growing copies nothing) */
  private groupIx = new PagedColumn(8);
  private readonly groupList: (Group | undefined)[] = [undefined];
  private readonly freeGroups: number[] = [];
  private count = 0;
  private readonly ids: PrefixIds;
  /** routes go to the sink by id (it shares the ids) */
  private readonly byId: boolean;
  private readonly groups = new Map<string, Group>();
  private last: { nh: readonly string[]; source: string; metric: number | undefined; poolIndex: number; g: Group } | undefined;
  private routed = 0;
  /** the own blocks (ctx.ownBlocks): IPv4 networks by length, the rest as strings */
  private own4: (Set<number> | undefined)[] = [];
  /** a PrefixNum reused for IPv4 ids (pool lookup without an object per prefix) */
  private readonly scratch: PrefixNum = { family: 4, net4: 0, len: 0 };

  /** `decisionOf(prefix)`: the Loc-RIB's reason for a prefix's best path, asked only when a record is read */
  constructor(
    private ctx: RouteContext,
    private readonly sink: RouteSink,
    private readonly decisionOf?: (prefix: string) => string | undefined,
  ) {
    this.byId = !!(sink.prefixIds && sink.setRouteAt && sink.deleteRouteAt);
    this.ids = this.byId ? sink.prefixIds! : new PrefixIds();
    this.ids.onRemap((remap, size) => {
      const next = this.groupIx.emptyLike(size);
      for (let id = 0; id < this.groupIx.capacity && id < remap.length; id++) {
        const g = this.groupIx.get(id);
        if (g !== 0) next.set(remap[id]!, g);
      }
      this.groupIx = next;
    });
    this.indexOwn();
  }

  /** learned prefixes */
  get size(): number {
    return this.count;
  }
  /** learned prefixes with a kernel route */
  get routedCount(): number {
    return this.routed;
  }

  /** A prefix's best route changed (or appeared). `prefix` is canonical ("10.1.2.0/24"); `metric` is the
   *  kernel route priority a BGPFilter set (undefined: the kernel's default). */
  update(prefix: string, nextHops: readonly string[], source: string, metric?: number): void {
    this.updateId(this.ids.get(prefix), nextHops, source, metric);
  }

  /** update() of an IPv4 prefix as numbers (network without host bits, signed or not; length 0..32). */
  update4(net: number, len: number, nextHops: readonly string[], source: string, metric?: number): void {
    this.updateId(this.ids.get4(len === 0 ? 0 : net & (~0 << (32 - len)), len), nextHops, source, metric);
  }

  /** A prefix has no best route any more. */
  remove(prefix: string): void {
    this.removeId(this.ids.find(prefix));
  }

  /** remove() of an IPv4 prefix as numbers. */
  remove4(net: number, len: number): void {
    this.removeId(this.ids.find4(len === 0 ? 0 : net & (~0 << (32 - len)), len));
  }

  /** Forget every prefix (the speaker was restarted); their kernel routes are deleted. */
  clear(): void {
    for (let id = 0; id < this.groupIx.capacity; id++) if (this.groupIx.get(id)) this.removeId(id);
    if (!this.byId) this.ids.compact();
  }

  /** Pools, node addresses, own blocks or kernel capabilities changed: recompute what they affect. */
  setContext(ctx: RouteContext): void {
    const old = this.ctx;
    // own blocks first, under the old templates: only the prefixes that are (or were) one of them
    const ownMoved = (b: string): void => {
      const id = this.ids.find(b);
      const g = this.groupAt(id);
      if (g) this.move(id, g.tpl, g.metric, old.ownBlocks.has(b), g, ctx.ownBlocks.has(b));
    };
    for (const b of old.ownBlocks) if (!ctx.ownBlocks.has(b)) ownMoved(b);
    for (const b of ctx.ownBlocks) if (!old.ownBlocks.has(b)) ownMoved(b);
    this.ctx = ctx;
    this.indexOwn();
    this.last = undefined;
    const oldPools = old.pools.map((_, i) => poolDesc(old, i));
    const newPools = ctx.pools.map((_, i) => poolDesc(ctx, i));
    const poolsChanged = oldPools.join('|') !== newPools.join('|');
    const changed = poolsChanged
      ? [...oldPools.filter((d) => !newPools.includes(d)), ...newPools.filter((d) => !oldPools.includes(d))]
      : [];
    const changedCidrs = changed.map((d) => parseCidr(d.split(' ')[0]!));
    const rehome: Group[] = [];
    if (poolsChanged) {
      // 1. groups whose pool is unchanged and cannot lose members to a changed pool: new pool index, new key
      const kept: Group[] = [];
      for (const g of this.groups.values()) {
        const desc = g.poolIndex >= 0 ? oldPools[g.poolIndex]! : '';
        const own = g.poolIndex >= 0 ? old.pools[g.poolIndex]!.cidr : undefined;
        // a member may move: its pool changed, or a changed pool could be inside its pool (or it had none)
        if (changed.includes(desc) || !own || changedCidrs.some((c) => cidrContainsCidr(own, c))) rehome.push(g);
        else {
          g.poolIndex = newPools.indexOf(desc);
          kept.push(g);
        }
      }
      this.groups.clear();
      for (const g of kept) {
        g.key = groupKey(g.poolIndex, g.source, g.metric, g.nextHops);
        this.groups.set(g.key, g);
      }
    }
    // 2. templates of the remaining groups under the new context: members rewritten only when it changed
    const before = new Map<Group, RouteTemplate>();
    for (const g of this.groups.values()) {
      const tpl = learnedTemplate(ctx, g.family, g.poolIndex, g.nextHops);
      if (sameTemplate(tpl, g.tpl)) continue;
      before.set(g, g.tpl);
      g.tpl = tpl;
      g.route = templateRoute(tpl, g.metric);
    }
    if (!before.size && !rehome.length) return;
    // 3. members of groups a changed pool may affect: each finds its pool and group again (one scan for 2 and 3)
    const moved = new Set(rehome);
    for (let id = 0; id < this.groupIx.capacity; id++) {
      const g = this.groupAt(id);
      if (g === undefined) continue;
      const was = before.get(g);
      if (was !== undefined) {
        const own = this.isOwn(id);
        this.move(id, was, g.metric, own, g, own);
      } else if (moved.has(g)) {
        const ng = this.groupFor(id, g.nextHops, g.source, g.metric);
        this.groupIx.set(id, ng.ix);
        ng.count++;
        this.leave(g);
        const own = this.isOwn(id);
        this.move(id, g.tpl, g.metric, own, ng, own);
      }
    }
  }

  /** The record of exactly this prefix. */
  lookup(prefix: string): RouteRecord | undefined {
    const c = tryParseCidr(prefix);
    if (!c) return undefined;
    const id = this.ids.find(formatCidr(c));
    const g = this.groupAt(id);
    return g ? this.record(id, g) : undefined;
  }

  /** The record that decides where traffic to this address or prefix goes: the longest learned prefix
   *  containing it (routes the agent computes from the datastore are not in this table). */
  explain(query: string): RouteRecord | undefined {
    const c = tryParseCidr(query);
    if (!c) return undefined;
    const bits = c.family === 4 ? 32 : 128;
    for (let len = c.prefixLen; len >= 0; len--) {
      const net = c.network & ~((1n << BigInt(bits - len)) - 1n);
      const id = this.ids.find(formatCidr({ family: c.family, ip: net, network: net, prefixLen: len }));
      const g = this.groupAt(id);
      if (g) return this.record(id, g);
    }
    return undefined;
  }

  /** Up to `limit` records (status pages; the table may hold a million). */
  records(limit = Infinity): RouteRecord[] {
    const out: RouteRecord[] = [];
    for (let id = 0; id < this.groupIx.capacity && out.length < limit; id++) {
      const g = this.groupAt(id);
      if (g) out.push(this.record(id, g));
    }
    return out;
  }

  /** Up to `limit` kernel routes of learned prefixes (status: no record and no BGP decision each —
   *  the status publisher asks every second, and records with their decision were the largest
   *  allocation on the route path during an ingest). */
  routes(limit = Infinity): Route[] {
    const out: Route[] = [];
    for (let id = 0; id < this.groupIx.capacity && out.length < limit; id++) {
      const g = this.groupAt(id);
      if (g?.route && !this.isOwn(id)) out.push(routeOf(this.ids.key(id), g.tpl, g.metric, false)!);
    }
    return out;
  }

  /** Counts by outcome, for status and metrics. */
  counts(): { learned: number; routed: number; byReason: Partial<Record<NoRouteReason, number>> } {
    const byReason: Partial<Record<NoRouteReason, number>> = {};
    for (const g of this.groups.values()) {
      if (typeof g.tpl === 'string') byReason[g.tpl] = (byReason[g.tpl] ?? 0) + g.count;
    }
    let own = 0;
    for (const b of this.ctx.ownBlocks) {
      const id = this.ids.find(b);
      if (this.groupAt(id)) own++;
    }
    if (own) byReason['own-block'] = own;
    return { learned: this.count, routed: this.routed, byReason };
  }

  // ---------------------------------------------------------------- internals

  private updateId(id: number, nextHops: readonly string[], source: string, metric: number | undefined): void {
    const old = this.groupAt(id);
    if (old && old.source === source && old.metric === metric && sameHops(old.nextHops, nextHops)) return; // nothing new
    const g = this.groupFor(id, nextHops, source, metric);
    if (old === g) return;
    if (old) this.leave(old);
    else {
      this.ids.retain(id);
      this.count++;
      this.groupIx.grow(id + 1);
    }
    g.count++;
    this.groupIx.set(id, g.ix);
    const own = this.isOwn(id);
    this.move(id, old?.tpl, old?.metric, own, g, own);
  }

  private removeId(id: number): void {
    const g = this.groupAt(id);
    if (!g) return;
    this.groupIx.set(id, 0);
    this.count--;
    this.leave(g);
    if (routable(g.tpl, this.isOwn(id))) {
      this.routed--;
      this.sinkDelete(id);
    }
    this.ids.release(id);
    if (!this.byId) this.ids.compact();
  }

  /** The group of a prefix id (-1 or not learned: undefined). */
  private groupAt(id: number): Group | undefined {
    return id >= 0 && id < this.groupIx.capacity ? this.groupList[this.groupIx.get(id)] : undefined;
  }

  private indexOwn(): void {
    this.own4 = [];
    for (const b of this.ctx.ownBlocks) {
      const c = tryParseCidr(b);
      if (c?.family === 4) (this.own4[c.prefixLen] ??= new Set()).add(Number(c.network) | 0);
    }
  }

  private isOwn(id: number): boolean {
    if (this.ctx.ownBlocks.size === 0) return false;
    const len = this.ids.len4(id);
    if (len >= 0) return this.own4[len]?.has(this.ids.net4(id)) ?? false;
    return this.ctx.ownBlocks.has(this.ids.key(id));
  }

  private prefixNumOf(id: number): PrefixNum {
    const len = this.ids.len4(id);
    if (len < 0) return prefixNum(this.ids.key(id));
    this.scratch.net4 = this.ids.net4(id) >>> 0;
    this.scratch.len = len;
    return this.scratch;
  }

  private record(id: number, g: Group): RouteRecord {
    const prefix = this.ids.key(id);
    const r: RouteRecord = { prefix, nextHops: g.nextHops, source: g.source };
    if (g.metric !== undefined) r.metric = g.metric;
    const decision = this.decisionOf?.(prefix);
    if (decision) r.decision = decision;
    const pool = g.poolIndex >= 0 ? this.ctx.pools[g.poolIndex]?.pool.cidr : undefined;
    if (pool) r.pool = pool;
    const own = this.isOwn(id);
    const route = routeOf(prefix, g.tpl, g.metric, own);
    if (route) r.route = route;
    else {
      const reason = own ? 'own-block' : typeof g.tpl === 'string' ? g.tpl : undefined;
      if (reason) {
        r.reason = reason;
        r.why = NO_ROUTE_TEXT[reason];
      }
    }
    return r;
  }

  private groupFor(id: number, nextHops: readonly string[], source: string, metric: number | undefined): Group {
    const x = this.prefixNumOf(id);
    const poolIndex = poolIndexOf(this.ctx, x);
    const l = this.last;
    if (l && l.source === source && l.metric === metric && l.poolIndex === poolIndex && sameHops(l.nh, nextHops)) {
      l.nh = nextHops;
      return l.g;
    }
    const key = groupKey(poolIndex, source, metric, nextHops);
    let g = this.groups.get(key);
    if (!g) {
      const tpl = learnedTemplate(this.ctx, x.family, poolIndex, nextHops);
      const ix = this.freeGroups.pop() ?? this.groupList.length;
      this.groupIx.widen(ix);
      g = { key, ix, poolIndex, family: x.family, nextHops, source, metric, tpl, route: templateRoute(tpl, metric), count: 0 };
      this.groupList[ix] = g;
      this.groups.set(key, g);
    }
    this.last = { nh: nextHops, source, metric, poolIndex, g };
    return g;
  }

  private leave(g: Group): void {
    if (--g.count === 0) {
      // a group re-homed by setContext is no longer under its key (another may be)
      if (this.groups.get(g.key) === g) this.groups.delete(g.key);
      this.groupList[g.ix] = undefined;
      this.freeGroups.push(g.ix);
      if (this.last?.g === g) this.last = undefined;
    }
  }

  private sinkDelete(id: number): void {
    if (this.byId) this.sink.deleteRouteAt!(id);
    else this.sink.deleteRoute(this.ids.key(id));
  }

  /** A prefix's kernel route went from (template, metric, own block) before to its group's after: hand
   *  the sink the change, if any. */
  private move(id: number, t0: RouteTemplate | undefined, m0: number | undefined, own0: boolean, g: Group, own1: boolean): void {
    const was = routable(t0, own0);
    if (!routable(g.tpl, own1)) {
      if (was) {
        this.routed--;
        this.sinkDelete(id);
      }
      return;
    }
    if (was && sameTemplate(t0, g.tpl) && m0 === g.metric) return;
    if (!was) this.routed++;
    if (this.byId) this.sink.setRouteAt!(id, g.route!);
    else this.sink.setRoute(routeOf(this.ids.key(id), g.tpl, g.metric, false)!);
  }
}
