// RouteReconciler: the set of kernel routes tabby owns, kept equal to a desired set.
// Desired routes name interfaces (dev: 'tunl0', 'vxlan.calico', 'eth0'); the kernel speaks indexes,
// so a link cache (dump + link events) resolves them, and a route whose device does not exist yet
// waits until it does. Ownership: rtm_protocol == RTPROT_TABBY, except routes through workload
// interfaces (cali*), which belong to the CNI wiring (wireWorkload/unwireWorkload). Routes of every
// other owner are never touched; a foreign route on a desired destination is reported as a conflict.
// Events: a route deleted or changed behind our back is repaired within debounceMs; link changes and
// lost events (ENOBUFS) trigger a full resync; a periodic full resync catches anything else.
// Desired state comes as deltas (set/delete one route) or a whole set (setDesired); holdDeletes(true)
// keeps routes tabby owns but no longer wants (graceful restart: a restarted agent deletes nothing a
// previous run installed until routing has converged).
import { EventEmitter } from 'node:events';
import type { KernelRoute, Link, NextHop } from './netlink/messages.js';
import type { EventKind, NetlinkEvent, RouteOp } from './netlink/netlink.js';
import type { NetlinkError } from './netlink/socket.js';
import { RT_SCOPE, RT_TABLE } from './netlink/constants.js';
import { RTPROT_TABBY, isWorkloadIfName } from './ownership.js';
import {
  Reconciler,
  type ApplyResult,
  type Failure,
  type ReconcileDriver,
  type ReconcileError,
  type ReconcilerOptions,
  type ResyncProgress,
} from './reconciler.js';
import { copyRoute } from './netlink/route-scan.js';
import { PrefixIds } from './prefix-ids.js';
import { log, type Logger } from '../common/log.js';
import { parseCidr, formatCidr, parseIpv4Number } from '../common/ip.js';

export type RouteScope = 'universe' | 'link' | 'host' | number;

/** A route as tabby's components want it. */
export interface Route {
  /** destination prefix "10.65.1.0/26" */
  dst: string;
  type?: 'unicast' | 'blackhole';
  gateway?: string;
  dev?: string;
  onlink?: boolean;
  scope?: RouteScope;
  /** default: main (254) */
  table?: number;
  /** kernel route priority (metric; BGPFilter setPriority). Default: the kernel's (IPv4 0, IPv6 1024) */
  metric?: number;
  multipath?: { gateway?: string; dev?: string; onlink?: boolean; weight?: number }[];
}

/** What the reconciler needs from a Netlink handle (a fake can stand in). */
export interface RouteDataplane {
  listRoutes(family?: 4 | 6): Promise<KernelRoute[]>;
  /** the same as a stream (optional; preferred): a big table is compared as it arrives, one object
   *  reused for every route (copied when kept); `stop()` true ends it early (it rejects) */
  listRoutesEach?(family: 4 | 6 | undefined, start: () => (r: KernelRoute) => void, stop?: () => boolean): Promise<void>;
  listLinks(): Promise<Link[]>;
  routeBatch(ops: readonly RouteOp[]): Promise<{ op: RouteOp; error: NetlinkError }[]>;
  /** the same without an op object per route (optional; preferred): route i is a template, its destination apart */
  routeBatchTo?(
    op: 'replace' | 'del',
    count: number,
    route: (i: number) => Partial<KernelRoute>,
    dst: (i: number) => string,
    /** the destination of route i as IPv4 numbers when len(i) ≥ 0 (then dst(i) is not asked) */
    dst4?: { len(i: number): number; net(i: number): number },
  ): Promise<{ index: number; error: NetlinkError }[]>;
  subscribe(kinds: readonly EventKind[]): EventEmitter & { close(): void; pause?(): void; resume?(): void };
}

/** Above this many changes in one pass the event subscription is paused (our own notifications, one
 *  datagram per route, would flood its queue and double the work; lost events cannot be reported
 *  safely) and a resync follows once the changes are over. */
export const BULK_PAUSE_THRESHOLD = 64;

export interface RouteReconcilerOptions extends ReconcilerOptions {
  /** after a bulk change, the resync dump waits until changes have been quiet this long (default 2 s) */
  bulkResyncQuietMs?: number;
  /** rtm_protocol of owned routes (default RTPROT_TABBY) */
  protocol?: number;
  /** ownership test; default: protocol matches and the route is not through a cali* interface */
  owns?: (route: KernelRoute, devName: string | undefined) => boolean;
  logger?: Logger;
}

const scopeNumber = (s: RouteScope | undefined): number | undefined =>
  s === undefined ? undefined : typeof s === 'number' ? s : s === 'link' ? RT_SCOPE.LINK : s === 'host' ? RT_SCOPE.HOST : RT_SCOPE.UNIVERSE;

/** "10.65.1.7/26" → "10.65.1.0/26"; a bare address → /32 or /128. An IPv4 prefix already in that
 *  form comes back as the same string (no copy: the route table's keys are shared down to here). */
export function normalizeDst(dst: string): string {
  const slash = dst.indexOf('/');
  const v4 = parseIpv4Number(slash < 0 ? dst : dst.slice(0, slash));
  if (v4 >= 0) {
    // fast path without BigInt
    const len = slash < 0 ? 32 : Number(dst.slice(slash + 1));
    if (Number.isInteger(len) && len >= 0 && len <= 32 && (slash < 0 || /^\d{1,2}$/.test(dst.slice(slash + 1)))) {
      const net = len === 0 ? 0 : (v4 & (~0 << (32 - len))) >>> 0;
      if (net === v4 >>> 0 && slash > 0 && dst.length - slash - 1 === (len < 10 ? 1 : 2)) return dst;
      return `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${len}`;
    }
  }
  return formatCidr(parseCidr(dst));
}

/** The reconciler's key of a route: its destination in the main table (the string itself), else "table|dst". */
export const routeKey = (table: number, dst: string): string => (table === RT_TABLE.MAIN ? dst : `${table}|${dst}`);

function sameHops(a: NextHop[] | undefined, b: NextHop[] | undefined): boolean {
  if (!a?.length && !b?.length) return true; // the common case: no allocation per comparison (1M per resync)
  const norm = (h: NextHop[] | undefined): string =>
    (h ?? [])
      .map((x) => `${x.gateway ?? ''}/${x.oif ?? 0}/${x.onlink ? 1 : 0}/${x.weight ?? 1}`)
      .sort()
      .join(',');
  return norm(a) === norm(b);
}

/** The kernel's default priority when none is given: IPv4 0, IPv6 1024 (IP6_RT_PRIO_USER). */
const defaultPriority = (family: number): number => (family === 6 ? 1024 : 0);
const samePriority = (want: KernelRoute, have: KernelRoute): boolean =>
  (want.priority ?? defaultPriority(want.family)) === (have.priority ?? defaultPriority(have.family));

/** Kernel-form equality on the fields tabby sets. */
export function sameRoute(want: KernelRoute, have: KernelRoute): boolean {
  return want.dst === have.dst && sameBesidesDst(want, have);
}

/** sameRoute but for the destination (the reconciler compares objects under one key; a desired
 *  route is a template shared by many destinations). */
function sameBesidesDst(want: KernelRoute, have: KernelRoute): boolean {
  if (want.table !== have.table || want.type !== have.type || want.protocol !== have.protocol) return false;
  // a blackhole/unreachable/prohibit route has no next hop (IPv6 dumps it with dev lo)
  if (want.type !== 'unicast') return want.family === 6 || want.scope === have.scope;
  if ((want.gateway ?? '') !== (have.gateway ?? '') || (want.oif ?? 0) !== (have.oif ?? 0) || !!want.onlink !== !!have.onlink) return false;
  // IPv6 routes always dump with scope universe; the kernel picks v4 scopes we do not set.
  if (want.family === 4 && want.scope !== have.scope) return false;
  if (!samePriority(want, have)) return false;
  return sameHops(want.multipath, have.multipath);
}

/** Kernel-made routes of kinds tabby never programs (never compared, never owned). */
const notOurKind = (r: KernelRoute): boolean =>
  r.type === 'local' || r.type === 'broadcast' || r.type === 'multicast' || r.type === 'anycast';

/** A desired route in kernel form without its destination (dst ''): one object is shared by every
 *  desired route with the same next hop, device, metric… — the reconciler's key names the destination,
 *  so 1M desired routes hold no object each. It remembers the device names it was asked with (a link
 *  change re-resolves them); the extra fields are ignored by encoding and comparison. */
interface Wanted extends KernelRoute {
  devName?: string;
  hops?: Route['multipath'];
}

/** The destination of a reconciler key (routeKey: "dst" or "table|dst"). */
const dstOfKey = (key: string): string => {
  const i = key.indexOf('|');
  return i < 0 ? key : key.slice(i + 1);
};

/** Two templates are the same in every field (interning; exact, unlike the kernel-form equality). */
function sameTemplate(a: Wanted, b: Wanted): boolean {
  return (
    a.family === b.family &&
    a.table === b.table &&
    a.protocol === b.protocol &&
    a.type === b.type &&
    a.scope === b.scope &&
    a.gateway === b.gateway &&
    a.oif === b.oif &&
    a.onlink === b.onlink &&
    a.priority === b.priority &&
    a.devName === b.devName &&
    a.hops === undefined &&
    b.hops === undefined
  );
}
const templateKey = (w: Wanted): string =>
  `${w.family}|${w.table}|${w.protocol}|${w.type}|${w.scope}|${w.gateway ?? ''}|${w.oif ?? ''}|${w.onlink ? 1 : 0}|${w.priority ?? ''}|${w.devName ?? ''}|${w.hops ? JSON.stringify(w.hops) : ''}`;

/** A template with its destination: the route as netlink sends it (made per request, not kept). */
function withDst(w: Wanted, dst: string): KernelRoute {
  const r: KernelRoute = { family: w.family, dst, table: w.table, protocol: w.protocol, scope: w.scope, type: w.type };
  if (w.oif !== undefined) r.oif = w.oif;
  if (w.gateway !== undefined) r.gateway = w.gateway;
  if (w.onlink) r.onlink = true;
  if (w.priority !== undefined) r.priority = w.priority;
  if (w.multipath) r.multipath = w.multipath;
  return r;
}

/** A desired kernel route back in tabby's form. */
function routeOf(w: Wanted, dst: string): Route {
  const r: Route = { dst, table: w.table, scope: w.scope };
  if (w.type !== 'unicast') r.type = w.type as 'blackhole';
  if (w.gateway) r.gateway = w.gateway;
  if (w.devName) r.dev = w.devName;
  if (w.onlink) r.onlink = true;
  if (w.priority !== undefined) r.metric = w.priority;
  if (w.hops) r.multipath = w.hops;
  return r;
}

export class RouteReconciler extends EventEmitter {
  private readonly rec: Reconciler<KernelRoute>;
  /** the reconciler's key ids: the agent's route table shares them (setAt/deleteAt) — a learned prefix
   *  has one id and no string in both */
  readonly prefixIds = new PrefixIds();
  /** the last template route given to setAt and its kernel form (a bulk change repeats one template;
   *  cleared when links change: the form holds the device's index) */
  private lastAt: Route | undefined;
  private lastAtKernel: Wanted | undefined;
  private readonly protocol: number;
  private readonly owns: (r: KernelRoute, dev: string | undefined) => boolean;
  private readonly byName = new Map<string, number>();
  private readonly byIndex = new Map<number, string>();
  /** desired routes whose device is missing (tabby's form), by key; the others are the reconciler's
   *  desired set, in kernel form with the device names (no second map of 1M routes) */
  private readonly unresolved = new Map<string, Route>();
  /** devices named by desired routes (cache; undefined = recompute) */
  private devs: Set<string> | undefined;
  /** desired templates by templateKey, and the last one used (a bulk change repeats it) */
  private readonly templates = new Map<string, Wanted>();
  private lastTemplate: Wanted | undefined;
  private sub: (EventEmitter & { close(): void; pause?(): void; resume?(): void }) | undefined;
  private readonly log: Logger;
  private readonly bulkQuietMs: number;

  constructor(
    private readonly nl: RouteDataplane,
    opts: RouteReconcilerOptions = {},
  ) {
    super();
    this.bulkQuietMs = opts.bulkResyncQuietMs ?? 2000;
    this.protocol = opts.protocol ?? RTPROT_TABBY;
    this.owns = opts.owns ?? ((r, dev) => r.protocol === this.protocol && !isWorkloadIfName(dev));
    this.log = opts.logger ?? log('routes');
    const driver: ReconcileDriver<KernelRoute> = {
      kind: 'route',
      key: (r) => routeKey(r.table, r.dst),
      equal: sameBesidesDst,
      // the kernel keys a route by (dst, priority): a new metric is a second route, the old one goes after it
      leavesOld: (want, have) => !samePriority(want, have),
      owned: (r) => r.type !== 'local' && r.type !== 'broadcast' && this.owns(r, r.oif ? this.byIndex.get(r.oif) : undefined),
      list: () => this.dump(),
      ...(nl.listRoutesEach
        ? { listEach: (start: () => (r: KernelRoute) => void, stop?: () => boolean) => this.dumpEach(start, stop), copy: copyRoute }
        : {}),
      apply: (items, ids) => this.batch('replace', items, ids),
      remove: (items, ids) => this.batch('del', items, ids),
    };
    // a resync dump that gave way to changes comes back when they are over, like the one after a bulk change
    this.rec = new Reconciler(driver, { yieldQuietMs: this.bulkQuietMs, ...opts, ids: this.prefixIds });
    this.rec.on('applied', (r: ApplyResult<KernelRoute>) => {
      for (const f of r.failed)
        this.log.warn({ dst: f.item.dst, table: f.item.table, err: f.error.message }, 'route change failed; will retry');
      if (r.conflicts.length)
        this.log.warn(
          { conflicts: r.conflicts.slice(0, 10), count: r.conflicts.length },
          'destination held by a route tabby does not own; left alone',
        );
      this.emit('applied', r);
    });
    this.rec.on('insync', () => {
      if (this.inSync) this.emit('insync');
    });
  }

  /** true when the kernel matched the desired set after the last apply and nothing waits for a device. */
  get inSync(): boolean {
    return this.rec.inSync && this.unresolved.size === 0;
  }
  get pending(): number {
    return this.rec.pendingCount + this.unresolved.size;
  }
  /** routes wanted (including those waiting for their device) */
  get desiredCount(): number {
    return this.rec.desiredCount + this.unresolved.size;
  }
  /** owned routes no longer wanted, kept because deletes are held */
  get heldCount(): number {
    return this.rec.heldCount;
  }
  get lastError(): ReconcileError | undefined {
    return this.rec.lastError;
  }
  /** the resync dumps (status) */
  get resyncProgress(): ResyncProgress {
    return this.rec.resyncProgress;
  }

  /** Graceful restart: while held, routes tabby owns but no longer wants stay in the kernel. */
  holdDeletes(hold: boolean): void {
    this.rec.holdDeletes(hold);
  }

  /** Replace the desired set. */
  setDesired(routes: Iterable<Route>): void {
    this.devs = undefined;
    this.unresolved.clear();
    const kernel = new Map<string, KernelRoute>();
    for (const r of routes) {
      const dst = normalizeDst(r.dst);
      const key = routeKey(r.table ?? RT_TABLE.MAIN, dst);
      const k = this.toKernel(r, dst.includes(':') ? 6 : 4);
      if (k) {
        kernel.set(key, this.intern(k));
        this.unresolved.delete(key);
      } else {
        kernel.delete(key);
        this.unresolved.set(key, r);
      }
    }
    this.rec.setDesiredMap(kernel);
  }

  /** Add or change one desired route. */
  set(route: Route): void {
    const dst = normalizeDst(route.dst);
    const key = routeKey(route.table ?? RT_TABLE.MAIN, dst);
    if (route.dev || route.multipath) this.devs = undefined;
    const k = this.toKernel(route, dst.includes(':') ? 6 : 4);
    if (k) {
      if (this.unresolved.size) this.unresolved.delete(key);
      this.rec.setKeyed(key, this.intern(k));
    } else {
      this.unresolved.set(key, route);
      this.rec.delete(key);
    }
  }

  /** set() of a main-table route by its destination's id in `prefixIds` (the caller holds the id);
   *  `route.dst` is not read. A template route object repeated across calls is converted once. */
  setAt(id: number, route: Route): void {
    if (route.dev || route.multipath) this.devs = undefined;
    let k: Wanted | undefined;
    if (route === this.lastAt) k = this.lastAtKernel;
    else {
      k = this.toKernel(route, this.prefixIds.len4(id) >= 0 ? 4 : 6);
      if (k) {
        k = this.intern(k);
        this.lastAt = route;
        this.lastAtKernel = k;
      }
    }
    if (k) {
      if (this.unresolved.size) this.unresolved.delete(this.prefixIds.key(id));
      this.rec.setId(id, k);
    } else {
      const dst = this.prefixIds.key(id);
      this.unresolved.set(dst, { ...route, dst });
      this.rec.deleteId(id);
    }
  }

  /** delete() by the destination's id in `prefixIds`. */
  deleteAt(id: number): void {
    this.devs = undefined;
    if (this.unresolved.size) this.unresolved.delete(this.prefixIds.key(id));
    this.rec.deleteId(id);
  }

  /** Drop one desired route (the kernel route goes on the next apply). */
  delete(dst: string, table: number = RT_TABLE.MAIN): void {
    const key = routeKey(table, normalizeDst(dst));
    this.devs = undefined;
    if (this.unresolved.size) this.unresolved.delete(key);
    this.rec.delete(key);
  }

  /** The desired routes in tabby's form (those in the kernel's form are turned back). */
  desired(): Route[] {
    const out: Route[] = [...this.unresolved.values()];
    for (const [key, k] of this.rec.desiredEntries()) out.push(routeOf(k as Wanted, dstOfKey(key)));
    return out;
  }

  /** One reconcile pass now. */
  apply(): Promise<ApplyResult<KernelRoute>> {
    return this.rec.apply();
  }

  /** A full resync now: dump the kernel, then reconcile everything. */
  resync(): Promise<ApplyResult<KernelRoute>> {
    this.rec.markResync();
    return this.rec.apply();
  }

  /** Subscribe to route/link events, reconcile now, then keep reconciling until stop(). */
  async start(): Promise<ApplyResult<KernelRoute>> {
    if (!this.sub) {
      this.sub = this.nl.subscribe(['route', 'link']);
      this.sub.on('event', (ev: NetlinkEvent) => this.onEvent(ev));
      this.sub.on('overrun', () => {
        this.log.warn('netlink events lost; full resync');
        this.rec.markResync();
      });
    }
    const first = await this.rec.apply();
    this.rec.start();
    return first;
  }

  stop(): void {
    this.rec.stop();
    this.sub?.close();
    this.sub = undefined;
  }

  private onEvent(ev: NetlinkEvent): void {
    if (ev.kind === 'link') this.lastAt = undefined;
    if (ev.kind === 'route') {
      if (ev.route.type === 'local' || ev.route.type === 'broadcast') return;
      if (ev.type === 'new') this.rec.observe(ev.route);
      else this.rec.forget(ev.route);
    } else if (ev.kind === 'link') {
      const l = ev.link;
      const known = this.byIndex.get(l.index);
      if (ev.type === 'new') {
        this.byIndex.set(l.index, l.name);
        if (known !== undefined && known !== l.name && this.byName.get(known) === l.index) this.byName.delete(known);
        this.byName.set(l.name, l.index);
      } else {
        this.byIndex.delete(l.index);
        if (this.byName.get(l.name) === l.index) this.byName.delete(l.name);
      }
      // Only devices our routes use matter: one that appears/renames resolves waiting routes; one that
      // goes down or away takes its IPv4 routes with it without any route event — resync.
      if (this.usesDev(l.name) || (known !== undefined && this.usesDev(known))) {
        this.reresolve();
        this.rec.markResync();
      }
    }
  }

  private usesDev(name: string): boolean {
    if (!this.devs) {
      this.devs = new Set();
      const add = (r: { dev?: string | undefined; multipath?: Route['multipath'] }): void => {
        if (r.dev) this.devs!.add(r.dev);
        for (const h of r.multipath ?? []) if (h.dev) this.devs!.add(h.dev);
      };
      for (const r of this.unresolved.values()) add(r);
      for (const k of this.rec.desiredValues()) {
        const w = k as Wanted;
        if (w.devName || w.hops) add({ dev: w.devName, multipath: w.hops });
      }
    }
    return this.devs.has(name);
  }

  /** Recompute desired kernel routes that name a device after the name → index map changed. */
  private reresolve(): void {
    const named: Route[] = [...this.unresolved.values()];
    for (const [key, k] of this.rec.desiredEntries()) {
      const w = k as Wanted;
      if (w.devName || w.hops) named.push(routeOf(w, dstOfKey(key)));
    }
    for (const r of named) this.set(r);
  }

  private devIndex(dev: string | undefined): number | undefined | null {
    if (dev === undefined) return undefined;
    const i = this.byName.get(dev);
    return i === undefined ? null : i;
  }

  /** The shared template equal to this one (kept while in use; the cache is bounded). */
  private intern(w: Wanted): Wanted {
    const l = this.lastTemplate;
    if (l && sameTemplate(l, w)) return l;
    const key = templateKey(w);
    let t = this.templates.get(key);
    if (!t) {
      if (this.templates.size >= 4096) this.templates.clear(); // many next hops: sharing starts over
      this.templates.set(key, w);
      t = w;
    }
    this.lastTemplate = t;
    return t;
  }

  /** The route's template (dst ''), or undefined while a device it names is missing. */
  private toKernel(r: Route, family: 4 | 6): Wanted | undefined {
    const type = r.type ?? 'unicast';
    const oif = this.devIndex(r.dev);
    if (oif === null) return undefined;
    const k: Wanted = {
      family,
      dst: '',
      table: r.table ?? RT_TABLE.MAIN,
      protocol: this.protocol,
      type,
      scope: scopeNumber(r.scope) ?? (type === 'unicast' && !r.gateway && !r.multipath?.length ? RT_SCOPE.LINK : RT_SCOPE.UNIVERSE),
    };
    if (r.metric !== undefined) k.priority = r.metric;
    if (type === 'unicast') {
      if (oif !== undefined) {
        k.oif = oif;
        k.devName = r.dev!;
      }
      if (r.gateway) k.gateway = r.gateway;
      if (r.onlink) k.onlink = true;
      if (r.multipath?.length) {
        const hops: NextHop[] = [];
        for (const h of r.multipath) {
          const hi = this.devIndex(h.dev);
          if (hi === null) return undefined;
          hops.push({
            ...(h.gateway ? { gateway: h.gateway } : {}),
            oif: hi ?? 0,
            ...(h.onlink ? { onlink: true } : {}),
            weight: h.weight ?? 1,
          });
        }
        k.multipath = hops;
        k.hops = r.multipath;
      }
    }
    return k;
  }

  private async dump(): Promise<KernelRoute[]> {
    await this.refreshLinks();
    return (await this.nl.listRoutes()).filter((r) => !notOurKind(r));
  }

  private async dumpEach(start: () => (r: KernelRoute) => void, stop?: () => boolean): Promise<void> {
    await this.refreshLinks();
    await this.nl.listRoutesEach!(
      undefined,
      () => {
        const each = start();
        return (r) => {
          if (!notOurKind(r)) each(r);
        };
      },
      stop,
    );
  }

  private async refreshLinks(): Promise<void> {
    const links = await this.nl.listLinks();
    let changed = links.length !== this.byIndex.size;
    for (const l of links)
      if (this.byIndex.get(l.index) !== l.name) {
        changed = true;
        break;
      }
    if (changed) {
      this.lastAt = undefined;
      this.byName.clear();
      this.byIndex.clear();
      for (const l of links) {
        this.byName.set(l.name, l.index);
        this.byIndex.set(l.index, l.name);
      }
      this.reresolve();
    }
  }

  private async batch(op: 'replace' | 'del', items: KernelRoute[], ids: ArrayLike<number>): Promise<Failure<KernelRoute>[]> {
    // a desired item is a shared template (dst ''); a dumped one has its own dst. A main-table IPv4
    // key is encoded from its numbers (no text per route: formatting it was ~220 B of garbage each)
    const dstOf = (i: number): string => items[i]!.dst || dstOfKey(this.rec.keyOf(ids[i]!));
    const pids = this.prefixIds;
    const dst4 = { len: (i: number): number => (items[i]!.dst ? -1 : pids.len4(ids[i]!)), net: (i: number): number => pids.net4(ids[i]!) };
    const bulk = items.length > BULK_PAUSE_THRESHOLD && this.sub?.pause !== undefined;
    if (bulk) this.sub!.pause!();
    let failed: { index: number; error: NetlinkError }[];
    try {
      if (this.nl.routeBatchTo) failed = await this.nl.routeBatchTo(op, items.length, (i) => items[i]!, dstOf, dst4);
      else {
        const ops: RouteOp[] = items.map((t, i) => ({ op, route: t.dst ? t : withDst(t as Wanted, dstOf(i)) }));
        const at = new Map(ops.map((o, i) => [o, i]));
        failed = (await this.nl.routeBatch(ops)).map((f) => ({ index: at.get(f.op)!, error: f.error }));
      }
    } finally {
      if (bulk) {
        this.sub?.resume?.();
        // anyone else's change during the pause is seen by a dump — once the bulk changes are over, not
        // after every batch (a dump of the whole table per batch made large ingests quadratic)
        this.rec.markResyncSoon(this.bulkQuietMs);
      }
    }
    return failed
      .filter((f) => !(op === 'del' && (f.error.code === 'ESRCH' || f.error.code === 'ENOENT')))
      .map((f) => ({ item: withDst(items[f.index]! as Wanted, dstOf(f.index)), error: f.error, index: f.index }));
  }
}
