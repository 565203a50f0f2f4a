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
  readonly members: Set<string>;
}

interface Rec {
  g: Group;
  route: Route | undefined;
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

function sameTemplate(a: RouteTemplate, b: RouteTemplate): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.gateway === b.gateway && a.dev === b.dev && !!a.onlink === !!b.onlink;
}

const poolDesc = (ctx: RouteContext, i: number): string => {
  const p = ctx.pools[i]?.pool;
  return p ? `${p.cidr} ${p.ipipMode} ${p.vxlanMode}` : '';
};

export class RouteTable {
  private readonly recs = new Map<string, Rec>();
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
    const rec = this.recs.get(prefix);
    const x = rec && rec.g.nextHops === nextHops && rec.g.source === source && rec.g.metric === metric ? undefined : prefixNum(prefix);
    if (rec && !x) return; // same next hops, same peer, same metric: nothing to do
    const g = this.groupFor(x!, nextHops, source, metric);
    if (rec) {
      if (rec.g === g) return;
      this.leave(rec, prefix);
      rec.g = g;
      g.members.add(prefix);
      this.place(prefix, rec);
    } else {
      const r: Rec = { g, route: undefined };
      g.members.add(prefix);
      this.recs.set(prefix, r);
      this.place(prefix, r);
    }
  }

  /** A prefix has no best route any more. */
  remove(prefix: string): void {
    const rec = this.recs.get(prefix);
    if (!rec) return;
    this.recs.delete(prefix);
    this.leave(rec, prefix);
    if (rec.route) {
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
    for (const g of this.groups.values()) {
      const tpl = learnedTemplate(ctx, g.family, g.poolIndex, g.nextHops);
      if (sameTemplate(tpl, g.tpl)) continue;
      g.tpl = tpl;
      for (const p of g.members) this.place(p, this.recs.get(p)!);
    }
    // 3. members of groups a changed pool may affect: each finds its pool and group again
    for (const g of rehome) {
      for (const p of g.members) {
        const rec = this.recs.get(p)!;
        const ng = this.groupFor(prefixNum(p), g.nextHops, g.source, g.metric);
        rec.g = ng;
        ng.members.add(p);
        this.place(p, rec);
      }
    }
    // own blocks: only the prefixes that are (or were) one of them
    for (const b of old.ownBlocks)
      if (!ctx.ownBlocks.has(b)) {
        const r = this.recs.get(b);
        if (r) this.place(b, r);
      }
    for (const b of ctx.ownBlocks)
      if (!old.ownBlocks.has(b)) {
        const r = this.recs.get(b);
        if (r) this.place(b, r);
      }
  }

  /** The record of exactly this prefix. */
  lookup(prefix: string): RouteRecord | undefined {
    const c = tryParseCidr(prefix);
    if (!c) return undefined;
    const p = formatCidr(c);
    const rec = this.recs.get(p);
    return rec ? this.record(p, rec) : undefined;
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
      const rec = this.recs.get(p);
      if (rec) return this.record(p, rec);
    }
    return undefined;
  }

  /** Up to `limit` records (status pages; the table may hold a million). */
  records(limit = Infinity): RouteRecord[] {
    const out: RouteRecord[] = [];
    for (const [p, rec] of this.recs) {
      if (out.length >= limit) break;
      out.push(this.record(p, rec));
    }
    return out;
  }

  /** Counts by outcome, for status and metrics. */
  counts(): { learned: number; routed: number; byReason: Partial<Record<NoRouteReason, number>> } {
    const byReason: Partial<Record<NoRouteReason, number>> = {};
    for (const g of this.groups.values()) {
      if (typeof g.tpl === 'string') byReason[g.tpl] = (byReason[g.tpl] ?? 0) + g.members.size;
    }
    let own = 0;
    for (const b of this.ctx.ownBlocks) if (this.recs.has(b)) own++;
    if (own) byReason['own-block'] = own;
    return { learned: this.recs.size, routed: this.routed, byReason };
  }

  // ---------------------------------------------------------------- internals

  private record(prefix: string, rec: Rec): RouteRecord {
    const r: RouteRecord = { prefix, nextHops: rec.g.nextHops, source: rec.g.source };
    if (rec.g.metric !== undefined) r.metric = rec.g.metric;
    const decision = this.decisionOf?.(prefix);
    if (decision) r.decision = decision;
    const pool = rec.g.poolIndex >= 0 ? this.ctx.pools[rec.g.poolIndex]?.pool.cidr : undefined;
    if (pool) r.pool = pool;
    if (rec.route) r.route = { ...rec.route };
    else {
      const reason = this.ctx.ownBlocks.has(prefix) ? 'own-block' : typeof rec.g.tpl === 'string' ? rec.g.tpl : undefined;
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
        members: new Set(),
      };
      this.groups.set(key, g);
    }
    this.last = { nh: nextHops, source, metric, poolIndex, g };
    return g;
  }

  private leave(rec: Rec, prefix: string): void {
    const g = rec.g;
    g.members.delete(prefix);
    if (g.members.size === 0) {
      this.groups.delete(g.key);
      if (this.last?.g === g) this.last = undefined;
    }
  }

  /** Compute the prefix's kernel route from its group and hand the change (if any) to the sink. */
  private place(prefix: string, rec: Rec): void {
    const t = rec.g.tpl;
    const prev = rec.route;
    if (typeof t === 'string' || this.ctx.ownBlocks.has(prefix)) {
      if (prev) {
        rec.route = undefined;
        this.routed--;
        this.sink.deleteRoute(prefix);
      }
      return;
    }
    const metric = rec.g.metric;
    if (prev && prev.gateway === t.gateway && prev.dev === t.dev && !!prev.onlink === !!t.onlink && prev.metric === metric) return;
    const r: Route = t.dev
      ? t.onlink
        ? { dst: prefix, gateway: t.gateway, dev: t.dev, onlink: true }
        : { dst: prefix, gateway: t.gateway, dev: t.dev }
      : { dst: prefix, gateway: t.gateway };
    if (metric !== undefined) r.metric = metric;
    if (!prev) this.routed++;
    rec.route = r;
    this.sink.setRoute(r);
  }
}
