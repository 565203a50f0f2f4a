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
import { cidrContainsCidr, formatCidr, parseCidr, tryParseCidr } from '../common/ip.js';
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
  poolIndex: number;
  readonly family: 4 | 6;
  readonly nextHops: readonly string[];
  readonly source: string;
  readonly metric: number | undefined;
  tpl: RouteTemplate;
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

function sameTemplate(a: RouteTemplate | undefined, b: RouteTemplate): boolean {
  if (a === undefined) return false;
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.gateway === b.gateway && a.dev === b.dev && !!a.onlink === !!b.onlink;
}

const poolDesc = (ctx: RouteContext, i: number): string => {
  const p = ctx.pools[i]?.pool;
  return p ? `${p.cidr} ${p.ipipMode} ${p.vxlanMode}` : '';
};

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
  /** prefix → its group: the record is the group (the kernel route follows from the group's template,
   *  so no object per prefix is kept beyond the map slot and the group's member entry) */
  private readonly recs = new Map<string, Group>();
  private readonly groups = new Map<string, Group>();
  private last: { nh: readonly string[]; source: string; metric: number | undefined; poolIndex: number; g: Group } | undefined;
  private routed = 0;

  /** `decisionOf(prefix)`: the Loc-RIB's reason for a prefix's best path, asked only when a record is read */
  constructor(
    private ctx: RouteContext,
    private readonly sink: RouteSink,
    private readonly decisionOf?: (prefix: string) => string | undefined,
  ) {}

  /** learned prefixes */
  get size(): number {
    return this.recs.size;
  }
  /** learned prefixes with a kernel route */
  get routedCount(): number {
    return this.routed;
  }

  /** A prefix's best route changed (or appeared). `prefix` is canonical ("10.1.2.0/24"); `metric` is the
   *  kernel route priority a BGPFilter set (undefined: the kernel's default). */
  update(prefix: string, nextHops: readonly string[], source: string, metric?: number): void {
    const old = this.recs.get(prefix);
    if (old && old.nextHops === nextHops && old.source === source && old.metric === metric) return; // nothing new
    const g = this.groupFor(prefixNum(prefix), nextHops, source, metric);
    if (old === g) return;
    if (old) this.leave(old);
    g.count++;
    this.recs.set(prefix, g);
    const own = this.ctx.ownBlocks.has(prefix);
    this.move(prefix, old?.tpl, old?.metric, own, g.tpl, g.metric, own);
  }

  /** A prefix has no best route any more. */
  remove(prefix: string): void {
    const g = this.recs.get(prefix);
    if (!g) return;
    this.recs.delete(prefix);
    this.leave(g);
    if (routable(g.tpl, this.ctx.ownBlocks.has(prefix))) {
      this.routed--;
      this.sink.deleteRoute(prefix);
    }
  }

  /** Forget every prefix (the speaker was restarted); their kernel routes are deleted. */
  clear(): void {
    for (const p of [...this.recs.keys()]) this.remove(p);
  }

  /** Pools, node addresses, own blocks or kernel capabilities changed: recompute what they affect. */
  setContext(ctx: RouteContext): void {
    const old = this.ctx;
    // own blocks first, under the old templates: only the prefixes that are (or were) one of them
    const ownMoved = (b: string): void => {
      const g = this.recs.get(b);
      if (g) this.move(b, g.tpl, g.metric, old.ownBlocks.has(b), g.tpl, g.metric, ctx.ownBlocks.has(b));
    };
    for (const b of old.ownBlocks) if (!ctx.ownBlocks.has(b)) ownMoved(b);
    for (const b of ctx.ownBlocks) if (!old.ownBlocks.has(b)) ownMoved(b);
    this.ctx = ctx;
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
    }
    if (!before.size && !rehome.length) return;
    // 3. members of groups a changed pool may affect: each finds its pool and group again (one scan for 2 and 3)
    const moved = new Set(rehome);
    for (const [p, g] of this.recs) {
      const was = before.get(g);
      if (was !== undefined) {
        const own = ctx.ownBlocks.has(p);
        this.move(p, was, g.metric, own, g.tpl, g.metric, own);
      } else if (moved.has(g)) {
        const ng = this.groupFor(prefixNum(p), g.nextHops, g.source, g.metric);
        this.recs.set(p, ng);
        ng.count++;
        const own = ctx.ownBlocks.has(p);
        this.move(p, g.tpl, g.metric, own, ng.tpl, ng.metric, own);
      }
    }
  }

  /** The record of exactly this prefix. */
  lookup(prefix: string): RouteRecord | undefined {
    const c = tryParseCidr(prefix);
    if (!c) return undefined;
    const p = formatCidr(c);
    const g = this.recs.get(p);
    return g ? this.record(p, g) : undefined;
  }

  /** The record that decides where traffic to this address or prefix goes: the longest learned prefix
   *  containing it (routes the agent computes from the datastore are not in this table). */
  explain(query: string): RouteRecord | undefined {
    const c = tryParseCidr(query);
    if (!c) return undefined;
    const bits = c.family === 4 ? 32 : 128;
    for (let len = c.prefixLen; len >= 0; len--) {
      const net = c.network & ~((1n << BigInt(bits - len)) - 1n);
      const p = formatCidr({ family: c.family, ip: net, network: net, prefixLen: len });
      const g = this.recs.get(p);
      if (g) return this.record(p, g);
    }
    return undefined;
  }

  /** Up to `limit` records (status pages; the table may hold a million). */
  records(limit = Infinity): RouteRecord[] {
    const out: RouteRecord[] = [];
    for (const [p, g] of this.recs) {
      if (out.length >= limit) break;
      out.push(this.record(p, g));
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
    for (const b of this.ctx.ownBlocks) if (this.recs.has(b)) own++;
    if (own) byReason['own-block'] = own;
    return { learned: this.recs.size, routed: this.routed, byReason };
  }

  // ---------------------------------------------------------------- internals

  private record(prefix: string, g: Group): RouteRecord {
    const r: RouteRecord = { prefix, nextHops: g.nextHops, source: g.source };
    if (g.metric !== undefined) r.metric = g.metric;
    const decision = this.decisionOf?.(prefix);
    if (decision) r.decision = decision;
    const pool = g.poolIndex >= 0 ? this.ctx.pools[g.poolIndex]?.pool.cidr : undefined;
    if (pool) r.pool = pool;
    const route = routeOf(prefix, g.tpl, g.metric, this.ctx.ownBlocks.has(prefix));
    if (route) r.route = route;
    else {
      const reason = this.ctx.ownBlocks.has(prefix) ? 'own-block' : typeof g.tpl === 'string' ? g.tpl : undefined;
      if (reason) {
        r.reason = reason;
        r.why = NO_ROUTE_TEXT[reason];
      }
    }
    return r;
  }

  private groupFor(x: PrefixNum, nextHops: readonly string[], source: string, metric: number | undefined): Group {
    const poolIndex = poolIndexOf(this.ctx, x);
    const l = this.last;
    if (l && l.nh === nextHops && l.source === source && l.metric === metric && l.poolIndex === poolIndex) return l.g;
    const key = groupKey(poolIndex, source, metric, nextHops);
    let g = this.groups.get(key);
    if (!g) {
      g = {
        key,
        poolIndex,
        family: x.family,
        nextHops,
        source,
        metric,
        tpl: learnedTemplate(this.ctx, x.family, poolIndex, nextHops),
        count: 0,
      };
      this.groups.set(key, g);
    }
    this.last = { nh: nextHops, source, metric, poolIndex, g };
    return g;
  }

  private leave(g: Group): void {
    if (--g.count === 0) {
      this.groups.delete(g.key);
      if (this.last?.g === g) this.last = undefined;
    }
  }

  /** A prefix's kernel route went from (template, metric, own block) before to after: hand the sink the change, if any. */
  private move(
    prefix: string,
    t0: RouteTemplate | undefined,
    m0: number | undefined,
    own0: boolean,
    t1: RouteTemplate,
    m1: number | undefined,
    own1: boolean,
  ): void {
    const was = routable(t0, own0);
    if (!routable(t1, own1)) {
      if (was) {
        this.routed--;
        this.sink.deleteRoute(prefix);
      }
      return;
    }
    if (was && sameTemplate(t0, t1) && m0 === m1) return;
    if (!was) this.routed++;
    this.sink.setRoute(routeOf(prefix, t1, m1, false)!);
  }
}
