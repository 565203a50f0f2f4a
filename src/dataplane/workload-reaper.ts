// Batched deletion of workload veths for CNI DEL. Unregistering a netdev waits for an RCU grace period
// (~30 ms on a loaded machine), so 100 DELs deleting one veth each spend seconds in the kernel. Here a
// DEL *retires* the host side instead: the routes to the pod go at once and the link joins the
// WORKLOAD_RETIRED_GROUP link group (a plain attribute change, no grace period); the reaper then deletes
// the whole group with one RTM_DELLINK (one unregister_netdevice_many: one grace period for every veth
// retired meanwhile, the pod ends going with their pairs). DEL answers after the retire: the address is
// released and nothing routes to the pod any more; the link itself is gone within `delayMs` + one
// deletion. A later ADD that finds a retired link under its name never reuses it: wireWorkload deletes it
// first (see there), so a re-ADD of the same pod cannot race the pending deletion.
import { Netlink, requests } from './netlink/netlink.js';
import { NetlinkError, isErrno } from './netlink/socket.js';
import { RTPROT_TABBY, WORKLOAD_RETIRED_GROUP } from './ownership.js';

export interface ReaperOptions {
  /** The netns of the host sides (default: the caller's). */
  netnsPath?: string;
  /** Longest a retired link waits for its batch (default 100 ms). */
  delayMs?: number;
  /** Delete at once when this many are waiting (default 64). */
  maxBatch?: number;
  onError?: (err: unknown) => void;
}

export class VethReaper {
  private readonly nl: Netlink;
  /** A second socket: a group deletion holds its socket for the whole unregister. */
  private readonly reapNl: Netlink;
  private readonly delayMs: number;
  private readonly maxBatch: number;
  private waiting = 0;
  /** Retired links whose DEL may still name the routes to drop (unroute). */
  private readonly pendingIndex = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  /** Group deletions made (tests and debug logs). */
  reaps = 0;
  /** Links retired. */
  retired = 0;

  constructor(private readonly opts: ReaperOptions = {}) {
    this.nl = new Netlink({ netnsPath: opts.netnsPath, offLoop: true });
    this.reapNl = new Netlink({ netnsPath: opts.netnsPath, offLoop: true });
    this.delayMs = opts.delayMs ?? 100;
    this.maxBatch = opts.maxBatch ?? 64;
  }

  /** Take the host side `hostIfName` out of service: routes to `dsts` through it deleted, the link in
   *  the retired group, deleted with the next batch. False when there is no such veth. */
  async retire(hostIfName: string, dsts: string[] = []): Promise<boolean> {
    const link = await this.nl.getLink(hostIfName);
    if (!link || link.kind !== 'veth') return false;
    // One sendmsg: into the retired group, then the routes through it go — the link stays up until its
    // batch, and nothing may route to the (possibly reassigned) address through it meanwhile.
    const retire = link.group !== WORKLOAD_RETIRED_GROUP ? [requests.setLink({ index: link.index, group: WORKLOAD_RETIRED_GROUP })] : [];
    const res = await this.nl.pipeline([
      ...retire,
      ...dsts.map((dst) => requests.deleteRoute({ dst, oif: link.index, protocol: RTPROT_TABBY })),
    ]);
    const [grouped] = retire.length ? res : [undefined];
    if (grouped instanceof NetlinkError) {
      if (isErrno(grouped, 'ENODEV')) return false; // gone meanwhile (its routes with it)
      throw grouped;
    }
    const failed = res.slice(retire.length).find((r) => r instanceof NetlinkError && !isErrno(r, 'ESRCH', 'ENOENT'));
    if (failed) throw failed;
    this.pendingIndex.set(hostIfName, link.index);
    this.retired++;
    this.waiting++;
    this.schedule(this.waiting >= this.maxBatch ? 0 : this.delayMs);
    return true;
  }

  /** Delete the routes to `dsts` through the retired link `hostIfName` (the DEL learns the pod's
   *  addresses from its release). Only through that link: a route a new pod's ADD put in for a reused
   *  address goes through the new pod's link and stays. */
  async unroute(hostIfName: string, dsts: string[]): Promise<void> {
    const index = this.pendingIndex.get(hostIfName);
    this.pendingIndex.delete(hostIfName);
    if (index === undefined) return;
    for (const dst of dsts) {
      try {
        await this.nl.deleteRoute({ dst, oif: index, protocol: RTPROT_TABBY });
      } catch (e) {
        if (!isErrno(e, 'ENODEV')) throw e; // the batch took the link (and its routes) already
      }
    }
  }

  /** Delete every retired link now and wait for it (agent stop; the in-process plugin's DEL). */
  async drain(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.running) await this.running;
    if (this.waiting > 0 || this.reaps === 0) await this.reap();
  }

  /** Delete what is retired now, then stop. */
  async close(): Promise<void> {
    await this.drain().catch((e: unknown) => this.opts.onError?.(e));
    this.closed = true;
    this.nl.close();
    this.reapNl.close();
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    if (this.timer && ms > 0) return; // the batch already has its deadline
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reap().catch((e: unknown) => this.opts.onError?.(e));
    }, ms);
    this.timer.unref?.();
  }

  /** One group deletion (never two at once); links retired while it runs wait for the next. */
  private async reap(): Promise<void> {
    while (this.running) await this.running;
    const taken = this.waiting;
    this.waiting = 0;
    if (this.pendingIndex.size > 4096) this.pendingIndex.clear(); // DELs that never asked: bounded
    this.running = (async () => {
      try {
        await this.reapNl.deleteLinkGroup(WORKLOAD_RETIRED_GROUP);
        this.reaps++;
      } catch (e) {
        this.waiting += taken; // try again with the next batch
        throw e;
      } finally {
        this.running = undefined;
      }
    })();
    await this.running;
    if (this.waiting > 0) this.schedule(this.waiting >= this.maxBatch ? 0 : this.delayMs);
  }
}
