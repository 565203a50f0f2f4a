// IPAM garbage collection of deleted nodes, as calico-kube-controllers does it: the addresses, block
// affinities and empty blocks of Nodes that no longer exist — and allocations whose handle record is
// gone — are released once they have stayed that way for a grace period.
// One agent at a time does it: a lease in the datastore (GC_LEASE_KEY, {holder}) that its holder renews by
// compare-and-swap every interval. Another agent takes it over, again by CAS, when it has seen the
// lease's revision unchanged for leaseMs on its OWN clock (no comparison of clocks between machines,
// like Kubernetes leader election's observed time). Every release is IPAM's own CAS with the address's
// sequence number, so an allocation racing the collector never loses its address.
// Pure step (tick) with the clock and datastore passed in; start() runs it on a timer.
import { GC_LEASE_KEY } from '../datastore/keys.js';
import type { Datastore, KVPair } from '../datastore/types.js';
import { DatastoreConflict, DatastoreExists, DatastoreNotFound } from '../datastore/types.js';
import type { Ipam } from './ipam.js';
import type { IpamCheckReport } from './check.js';
import { affinityNode } from './block.js';

export interface GcLease {
  holder: string;
}

export interface IpamGcOptions {
  ds: Datastore;
  ipam: Ipam;
  /** Who this is (the node name). */
  holder: string;
  /** Release what has been gone this long (default 5 min: a node re-registering after a reboot keeps its blocks). */
  graceMs?: number;
  /** A lease not renewed for this long (as seen here) is taken over (default 30 s). */
  leaseMs?: number;
  /** How often to renew and collect (default 10 s; at most leaseMs / 3). */
  intervalMs?: number;
  now?: () => number;
  logger?: { info(o: object, m?: string): void; warn(o: object, m?: string): void };
}

export interface GcTick {
  leader: boolean;
  /** Nodes seen gone (with how long, ms) and those released in this tick. */
  goneNodes: Record<string, number>;
  releasedNodes: string[];
  releasedIps: string[];
  releasedBlocks: string[];
}

export class IpamGc {
  private readonly graceMs: number;
  private readonly leaseMs: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** The lease as last seen (revision) and when, on this clock. */
  private seen: { revision: number; at: number } | undefined;
  /** First time (this clock) each finding was seen while leading: node name or `ip|sequence`. */
  private readonly since = new Map<string, number>();
  /** The revisions of each gone node's blocks and affinities when last seen: a change restarts its grace. */
  private readonly marks = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: IpamGcOptions) {
    this.graceMs = o.graceMs ?? 5 * 60_000;
    this.leaseMs = o.leaseMs ?? 30_000;
    this.intervalMs = Math.min(o.intervalMs ?? 10_000, Math.max(1, Math.floor(this.leaseMs / 3)));
    this.now = o.now ?? (() => performance.now());
  }

  start(): void {
    const run = () => {
      this.running = this.tick().catch((err: unknown) =>
        this.o.logger?.warn({ err }, 'IPAM garbage collection failed (retried next interval)'),
      );
      void this.running.finally(() => {
        if (this.timer) this.timer = setTimeout(run, this.intervalMs);
      });
    };
    this.timer = setTimeout(run, 0);
  }

  /** Stop; the lease is left to expire (a restarting holder takes it back by renewing it). */
  async stop(): Promise<void> {
    const t = this.timer;
    this.timer = undefined;
    if (t) clearTimeout(t);
    await this.running;
  }

  /** One step: hold or take the lease; as the holder, collect what has been gone for the grace period. */
  async tick(): Promise<GcTick> {
    const out: GcTick = { leader: false, goneNodes: {}, releasedNodes: [], releasedIps: [], releasedBlocks: [] };
    out.leader = await this.holdLease();
    if (!out.leader) {
      this.since.clear();
      this.marks.clear();
      return out;
    }
    const now = this.now();
    const report = await this.o.ipam.check();
    const gone = new Set([...report.blocksOfGoneNodes, ...report.affinitiesOfGoneNodes].map((x) => x.node));
    const leaks = new Map(report.leaked.map((l) => [`${l.ip}|${l.sequenceNumber ?? ''}`, l]));
    for (const k of [...this.since.keys()]) if (!gone.has(k) && !leaks.has(k)) this.since.delete(k);
    // A gone node whose IPAM records changed since the last look was in use meanwhile (it may have
    // registered, allocated and been deleted again between two looks): its grace starts again.
    const marks = gone.size > 0 ? await this.nodeMarks(gone) : new Map<string, string>();
    for (const k of [...this.marks.keys()]) if (!gone.has(k)) this.marks.delete(k);
    for (const n of gone) {
      const m = marks.get(n) ?? '';
      if (this.marks.has(n) && this.marks.get(n) !== m) this.since.delete(n);
      this.marks.set(n, m);
    }
    for (const k of [...gone, ...leaks.keys()]) if (!this.since.has(k)) this.since.set(k, now);
    const due = (k: string) => now - this.since.get(k)! >= this.graceMs;
    for (const n of gone) out.goneNodes[n] = Math.round(now - this.since.get(n)!);
    const dueNodes = new Set([...gone].filter(due));
    const dueReport: IpamCheckReport = {
      ...report,
      leaked: report.leaked.filter((l) => due(`${l.ip}|${l.sequenceNumber ?? ''}`)),
      handleMismatches: [],
      blocksOfGoneNodes: report.blocksOfGoneNodes.filter((b) => dueNodes.has(b.node)),
      affinitiesOfGoneNodes: report.affinitiesOfGoneNodes.filter((a) => dueNodes.has(a.node)),
    };
    if (dueNodes.size === 0 && dueReport.leaked.length === 0) return out;
    const g = await this.o.ipam.gc(dueReport);
    out.releasedNodes = [...dueNodes];
    out.releasedIps = g.releasedIps;
    out.releasedBlocks = g.releasedBlocks;
    for (const n of dueNodes) this.since.delete(n);
    this.o.logger?.info(
      { nodes: out.releasedNodes, ips: g.releasedIps.length, blocks: g.releasedBlocks },
      'IPAM garbage collection released the addresses of deleted nodes',
    );
    return out;
  }

  /** For each node, the keys and revisions of the blocks affine to it and of its affinities. */
  private async nodeMarks(nodes: Set<string>): Promise<Map<string, string>> {
    const [blocks, affs] = await Promise.all([this.o.ipam.store.listBlocks(), this.o.ipam.store.listAffinities()]);
    const parts = new Map<string, string[]>();
    const add = (node: string | null, kv: KVPair<unknown>) => {
      if (node !== null && nodes.has(node)) parts.set(node, [...(parts.get(node) ?? []), `${kv.key}@${kv.revision}`]);
    };
    for (const b of blocks) add(affinityNode(b.value.affinity), b);
    for (const a of affs) add(a.value.node, a);
    return new Map([...parts].map(([n, p]) => [n, p.sort().join(',')]));
  }

  /** Renew our lease, create it, or take over one not renewed for leaseMs; true when we hold it. */
  private async holdLease(): Promise<boolean> {
    const { ds, holder } = this.o;
    const now = this.now();
    let kv: KVPair<GcLease> | undefined;
    try {
      kv = await ds.get<GcLease>(GC_LEASE_KEY);
      if (!kv) {
        kv = await ds.create<GcLease>(GC_LEASE_KEY, { holder });
      } else if (kv.value.holder === holder) {
        kv = await ds.update<GcLease>(GC_LEASE_KEY, { holder }, kv.revision);
      } else {
        if (this.seen?.revision !== kv.revision) this.seen = { revision: kv.revision, at: now };
        if (now - this.seen.at < this.leaseMs) return false;
        this.o.logger?.info(
          { previous: kv.value.holder, silentMs: Math.round(now - this.seen.at) },
          'taking over the IPAM garbage collection lease',
        );
        kv = await ds.update<GcLease>(GC_LEASE_KEY, { holder }, kv.revision);
      }
    } catch (e) {
      if (e instanceof DatastoreConflict || e instanceof DatastoreExists || e instanceof DatastoreNotFound) return false; // another agent won
      throw e;
    }
    this.seen = { revision: kv.revision, at: now };
    return true;
  }
}
