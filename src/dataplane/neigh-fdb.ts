// NeighFdbReconciler: per remote VTEP, the two entries VXLAN needs on vxlan.calico (as Felix does):
//   neighbour  <remote tunnel IP> lladdr <remote VTEP MAC> dev vxlan.calico nud permanent
//   FDB        <remote VTEP MAC> dev vxlan.calico dst <remote node IP> self permanent
// (the route "<remote block> via <remote tunnel IP> dev vxlan.calico onlink" is the RouteReconciler's).
// Two instances of the generic Reconciler; ownership: permanent entries on vxlan.calico (and the kernel's
// FAILED/INCOMPLETE leftovers of them) are ours; multicast NOARP entries and learned ones are not.
import { EventEmitter } from 'node:events';
import type { Netlink, NetlinkEvent } from './netlink/netlink.js';
import type { Neighbor } from './netlink/messages.js';
import { NUD } from './netlink/constants.js';
import { Reconciler, type ApplyResult, type Failure, type ReconcileDriver, type ReconcilerOptions } from './reconciler.js';
import { VXLAN_IF_NAME } from './ownership.js';
import { log, type Logger } from '../common/log.js';

export interface VxlanPeer {
  /** the remote node's address on its vxlan.calico (its tunnel address) */
  tunnelIp: string;
  /** the remote VTEP's MAC (vxlanMacForNode(remote node name)) */
  mac: string;
  /** the remote node's underlay IP (UDP destination) */
  nodeIp: string;
  node?: string;
}

export interface NeighFdbOptions extends ReconcilerOptions {
  ifName?: string;
  logger?: Logger;
}

const ZERO_MAC = '00:00:00:00:00:00';

const isMulticastIp = (ip: string | undefined): boolean => !!ip && (ip.includes(':') ? /^ff/i.test(ip) : Number(ip.split('.')[0]) >= 224);
const isMulticastMac = (mac: string | undefined): boolean => !!mac && (parseInt(mac.slice(0, 2), 16) & 1) === 1;

async function each<T>(items: T[], fn: (it: T) => Promise<unknown>): Promise<Failure<T>[]> {
  const failed: Failure<T>[] = [];
  await Promise.all(
    items.map(async (it) => {
      try {
        await fn(it);
      } catch (e) {
        failed.push({ item: it, error: e as Error });
      }
    }),
  );
  return failed;
}

export class NeighFdbReconciler extends EventEmitter {
  readonly ifName: string;
  private ifIndex = 0;
  readonly neigh: Reconciler<Neighbor>;
  readonly fdb: Reconciler<Neighbor>;
  private sub: (EventEmitter & { close(): void }) | undefined;
  private readonly log: Logger;

  constructor(
    private readonly nl: Netlink,
    opts: NeighFdbOptions = {},
  ) {
    super();
    this.ifName = opts.ifName ?? VXLAN_IF_NAME;
    this.log = opts.logger ?? log('vxlan-peers');
    const onDev = (n: Neighbor): boolean => this.ifIndex !== 0 && n.ifindex === this.ifIndex;
    const neighDriver: ReconcileDriver<Neighbor> = {
      kind: 'neigh',
      key: (n) => n.dst ?? '',
      equal: (a, b) => a.lladdr === b.lladdr && (b.state & NUD.PERMANENT) !== 0 && a.ifindex === b.ifindex,
      // ours: the permanent entries we make, and the kernel's leftovers of them (FAILED/INCOMPLETE after a
      // delete); not the kernel's NOARP entries for IPv6 multicast (ff02::…) nor learned dynamic ones.
      owned: (n) =>
        onDev(n) && (n.state & (NUD.PERMANENT | NUD.FAILED | NUD.INCOMPLETE)) !== 0 && (n.state & NUD.NOARP) === 0 && !isMulticastIp(n.dst),
      mayReplace: (n) => onDev(n) && !isMulticastIp(n.dst),
      list: async () => {
        await this.resolve();
        if (!this.ifIndex) return [];
        return (await this.nl.listNeighbors(undefined, this.ifIndex)).filter((n) => n.family !== 'bridge' && onDev(n));
      },
      apply: (items) => each(items, (n) => this.needDev().then(() => this.nl.setNeighbor({ ...n, ifindex: this.ifIndex }))),
      remove: (items) => each(items, (n) => this.nl.deleteNeighbor(n)),
    };
    const fdbDriver: ReconcileDriver<Neighbor> = {
      kind: 'fdb',
      key: (n) => n.lladdr ?? '',
      equal: (a, b) => a.dst === b.dst && (b.state & NUD.PERMANENT) !== 0 && a.ifindex === b.ifindex,
      owned: (n) => onDev(n) && n.lladdr !== ZERO_MAC && !isMulticastMac(n.lladdr),
      mayReplace: (n) => onDev(n),
      list: async () => {
        await this.resolve();
        if (!this.ifIndex) return [];
        return (await this.nl.listNeighbors('bridge', this.ifIndex)).filter((n) => onDev(n) && n.lladdr !== ZERO_MAC);
      },
      apply: (items) => each(items, (n) => this.needDev().then(() => this.nl.setFdb(this.ifIndex, n.lladdr!, n.dst!))),
      remove: (items) => each(items, (n) => this.nl.deleteFdb(n.ifindex, n.lladdr!, n.dst)),
    };
    this.neigh = new Reconciler(neighDriver, opts);
    this.fdb = new Reconciler(fdbDriver, opts);
    for (const r of [this.neigh, this.fdb]) {
      r.on('applied', (res: ApplyResult<Neighbor>) => {
        for (const f of res.failed)
          this.log.warn(
            { kind: r.driver.kind, dst: f.item.dst, mac: f.item.lladdr, err: f.error.message },
            'VXLAN peer entry failed; will retry',
          );
        this.emit('applied', { kind: r.driver.kind, ...res });
      });
    }
  }

  get inSync(): boolean {
    return this.neigh.inSync && this.fdb.inSync;
  }

  private async resolve(): Promise<void> {
    const l = await this.nl.getLink(this.ifName);
    const idx = l?.index ?? 0;
    if (idx !== this.ifIndex) {
      this.ifIndex = idx;
      // desired entries carry the index: rebuild them
      this.neigh.setDesired(this.neigh.desiredItems().map((n) => ({ ...n, ifindex: idx })));
      this.fdb.setDesired(this.fdb.desiredItems().map((n) => ({ ...n, ifindex: idx })));
    }
  }

  private async needDev(): Promise<void> {
    if (!this.ifIndex) await this.resolve();
    if (!this.ifIndex) throw Object.assign(new Error(`${this.ifName} does not exist`), { code: 'ENODEV' });
  }

  /** The desired set of remote VTEPs (all of them, replacing the previous set). */
  setPeers(peers: Iterable<VxlanPeer>): void {
    const neigh: Neighbor[] = [];
    const fdb: Neighbor[] = [];
    for (const p of peers) {
      const family = p.tunnelIp.includes(':') ? 6 : 4;
      neigh.push({ family, ifindex: this.ifIndex, state: NUD.PERMANENT, flags: 0, dst: p.tunnelIp, lladdr: p.mac });
      fdb.push({ family: 'bridge', ifindex: this.ifIndex, state: NUD.PERMANENT, flags: 0, dst: p.nodeIp, lladdr: p.mac });
    }
    this.neigh.setDesired(neigh);
    this.fdb.setDesired(fdb);
  }

  async apply(): Promise<{ neigh: ApplyResult<Neighbor>; fdb: ApplyResult<Neighbor> }> {
    const neigh = await this.neigh.apply();
    const fdb = await this.fdb.apply();
    return { neigh, fdb };
  }

  async start(): Promise<{ neigh: ApplyResult<Neighbor>; fdb: ApplyResult<Neighbor> }> {
    if (!this.sub) {
      this.sub = this.nl.subscribe(['neigh', 'link']);
      this.sub.on('event', (ev: NetlinkEvent) => this.onEvent(ev));
      this.sub.on('overrun', () => {
        this.neigh.markResync();
        this.fdb.markResync();
      });
    }
    const first = await this.apply();
    this.neigh.start();
    this.fdb.start();
    return first;
  }

  stop(): void {
    this.neigh.stop();
    this.fdb.stop();
    this.sub?.close();
    this.sub = undefined;
  }

  private onEvent(ev: NetlinkEvent): void {
    if (ev.kind === 'link') {
      if (ev.link.name === this.ifName || ev.link.index === this.ifIndex) {
        this.neigh.markResync();
        this.fdb.markResync();
      }
      return;
    }
    if (ev.kind !== 'neigh' || !this.ifIndex || ev.neigh.ifindex !== this.ifIndex) return;
    const r = ev.neigh.family === 'bridge' ? this.fdb : this.neigh;
    if (ev.neigh.family === 'bridge' && ev.neigh.lladdr === ZERO_MAC) return;
    if (ev.type === 'new') r.observe(ev.neigh);
    else r.forget(ev.neigh);
  }
}
