// FakeRouteDataplane: an in-memory stand-in for a Netlink handle where a RouteReconciler (or the
// agent's adapter) needs one in a unit test — no root, no kernel. Kernel-like semantics for what the
// reconciler uses (add = EEXIST on a taken table+dst, replace, delete = ESRCH when absent, routes
// through a deleted link vanish silently as IPv4's do), events for changes made "by hand"
// (byHand*), and fault injection (failNextRouteOps).
import { EventEmitter } from 'node:events';
import type { KernelRoute, Link } from './netlink/messages.js';
import type { EventKind, NetlinkEvent, RouteOp } from './netlink/netlink.js';
import { NetlinkError } from './netlink/socket.js';
import type { RouteDataplane } from './routes.js';
import { RT_SCOPE, RT_TABLE, RTPROT } from './netlink/constants.js';

class FakeSubscription extends EventEmitter {
  paused = false;
  closed = false;
  constructor(readonly kinds: readonly EventKind[]) {
    super();
  }
  close(): void {
    this.closed = true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

export class FakeRouteDataplane implements RouteDataplane {
  readonly links = new Map<number, Link>();
  /** key table|dst → route */
  readonly routes = new Map<string, KernelRoute>();
  private subs: FakeSubscription[] = [];
  private nextIndex = 2;
  private failures: { code: string; errno: number }[] = [];
  /** counters for assertions */
  readonly calls = { listRoutes: 0, listLinks: 0, routeBatch: 0, ops: 0 };

  constructor() {
    this.links.set(1, { index: 1, name: 'lo', flags: 1, up: true, mtu: 65536, mac: '00:00:00:00:00:00' });
  }

  private key(r: { table?: number; dst: string }): string {
    return `${r.table ?? RT_TABLE.MAIN}|${r.dst}`;
  }

  private emit(ev: NetlinkEvent): void {
    for (const s of this.subs)
      if (!s.closed && !s.paused && s.kinds.includes(ev.kind === 'address' ? 'address' : ev.kind)) s.emit('event', ev);
  }

  private full(r: Partial<KernelRoute> & { dst: string }): KernelRoute {
    return {
      family: r.dst.includes(':') ? 6 : 4,
      dst: r.dst,
      table: r.table ?? RT_TABLE.MAIN,
      protocol: r.protocol ?? RTPROT.BOOT,
      scope: r.scope ?? RT_SCOPE.UNIVERSE,
      type: r.type ?? 'unicast',
      ...(r.oif !== undefined ? { oif: r.oif } : {}),
      ...(r.gateway ? { gateway: r.gateway } : {}),
      ...(r.onlink ? { onlink: true } : {}),
      ...(r.multipath ? { multipath: r.multipath } : {}),
    };
  }

  // ---------------------------------------------------------------- RouteDataplane

  async listRoutes(family?: 4 | 6): Promise<KernelRoute[]> {
    this.calls.listRoutes++;
    return [...this.routes.values()].filter((r) => !family || r.family === family).map((r) => ({ ...r }));
  }

  async listLinks(): Promise<Link[]> {
    this.calls.listLinks++;
    return [...this.links.values()].map((l) => ({ ...l }));
  }

  async routeBatch(ops: readonly RouteOp[]): Promise<{ op: RouteOp; error: NetlinkError }[]> {
    this.calls.routeBatch++;
    const failed: { op: RouteOp; error: NetlinkError }[] = [];
    for (const op of ops) {
      this.calls.ops++;
      const f = this.failures.shift();
      if (f) {
        failed.push({ op, error: new NetlinkError(f.errno, `fake ${op.op} ${op.route.dst}`) });
        continue;
      }
      const k = this.key(op.route);
      const cur = this.routes.get(k);
      if (op.op === 'del') {
        if (!cur || (op.route.protocol !== undefined && op.route.protocol !== cur.protocol)) {
          failed.push({ op, error: new NetlinkError(3, `fake del ${op.route.dst}`) }); // ESRCH
          continue;
        }
        this.routes.delete(k);
        this.emit({ kind: 'route', type: 'del', route: cur });
        continue;
      }
      if (op.op === 'add' && cur) {
        failed.push({ op, error: new NetlinkError(17, `fake add ${op.route.dst}`) });
        continue;
      }
      if (op.route.oif !== undefined && !this.links.has(op.route.oif)) {
        failed.push({ op, error: new NetlinkError(19, `fake ${op.op} ${op.route.dst}`) });
        continue;
      }
      const r = this.full(op.route);
      this.routes.set(k, r);
      this.emit({ kind: 'route', type: 'new', route: r });
    }
    return failed;
  }

  subscribe(kinds: readonly EventKind[]): FakeSubscription {
    const s = new FakeSubscription(kinds);
    this.subs.push(s);
    return s;
  }

  // ---------------------------------------------------------------- test controls

  /** The next n route operations fail with this errno (default EIO). */
  failNextRouteOps(n: number, errno = 5, code = 'EIO'): void {
    for (let i = 0; i < n; i++) this.failures.push({ code, errno });
  }

  /** A link appears (like `ip link add`); returns its index. */
  byHandAddLink(name: string): number {
    const index = this.nextIndex++;
    const l: Link = { index, name, flags: 1, up: true, mtu: 1500, mac: '02:00:00:00:00:00' };
    this.links.set(index, l);
    this.emit({ kind: 'link', type: 'new', link: l });
    return index;
  }

  /** A link goes away: its routes vanish without route events (as IPv4's do). */
  byHandDeleteLink(name: string): void {
    for (const l of this.links.values()) {
      if (l.name !== name) continue;
      this.links.delete(l.index);
      for (const [k, r] of this.routes) if (r.oif === l.index) this.routes.delete(k);
      this.emit({ kind: 'link', type: 'del', link: l });
    }
  }

  byHandAddRoute(r: Partial<KernelRoute> & { dst: string }): void {
    const full = this.full(r);
    this.routes.set(this.key(full), full);
    this.emit({ kind: 'route', type: 'new', route: full });
  }

  byHandDeleteRoute(dst: string, table: number = RT_TABLE.MAIN): void {
    const k = this.key({ dst, table });
    const cur = this.routes.get(k);
    if (!cur) return;
    this.routes.delete(k);
    this.emit({ kind: 'route', type: 'del', route: cur });
  }

  route(dst: string, table: number = RT_TABLE.MAIN): KernelRoute | undefined {
    return this.routes.get(this.key({ dst, table }));
  }
}
