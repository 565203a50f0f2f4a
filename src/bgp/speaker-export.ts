// The speaker's export side (RFC 4271 §9.2, update-send): what each peer is sent and how it is written.
//
//   best-path change ▶ per peer or per update group: who gets it (reflector.ts) ▶ export filters and
//   attributes (policy.ts) ▶ Adj-RIB-Out ▶ packed UPDATEs ▶ the session's queue, as its socket accepts
//
// Peers of one export key share an update group (update-group.ts): one table, one encoding. A peer's
// initial dump comes from its group's table or, alone, from the Loc-RIB; End-of-RIB follows it (RFC 4724).
// The speaker (speaker.ts) owns the peers and the RIBs and calls in here; this module reads them
// through ExportHost.
import { Buffer } from 'node:buffer';
import type { Logger } from '../common/log.js';
import { encodeRouteRefresh } from './codec/message.js';
import { FAMILY_IPV4_UNICAST, FAMILY_IPV6_UNICAST, type FamilyKey } from './codec/types.js';
import type { Peer } from './peer.js';
import { exportAttrs, type LocalIdentity } from './policy.js';
import { shouldAdvertise } from './reflector.js';
import type { AttrSet, AttrTable } from './rib/attrs.js';
import type { LocRib } from './rib/loc-rib.js';
import type { Path } from './rib/path.js';
import { afiOfBucket, type PrefixKey, type PrefixTable } from './rib/prefix-table.js';
import { encodeBatch, encodeEndOfRib } from './rib/update-writer.js';
import { UpdateGroup, groupKey, type GroupLimits } from './update-group.js';

/** What the export side reads from its speaker. */
export interface ExportHost {
  readonly rib: LocRib;
  readonly attrTable: AttrTable;
  readonly log: Logger;
  /** Longest a flush runs before it yields to the event loop. */
  readonly sliceMs: number;
  readonly limits: GroupLimits;
  /** Outgoing interface of originated prefixes that have one (BGPFilter `interface` matches it). */
  readonly localIface: PrefixTable<string>;
  /** Originated interface (device) routes: exported only where a filter rule accepts them. */
  readonly localDirect: PrefixTable<true>;
  /** We reflect (RFC 4456). */
  reflecting(): boolean;
  peers(): readonly Peer[];
  /** Restarting (RFC 4724 §4.1): best-path output is held back, no dump starts. */
  deferring(): boolean;
  /** Who we are toward a peer (its BGPPeer localASNumber). */
  identityFor(p: Peer): LocalIdentity;
  /** A peer's initial dump and End-of-RIB are queued. */
  dumpDone(address: string): void;
  /** A route refresh the peer asked for is sent (RFC 7313 EoRR). */
  refreshDone(address: string, afi: 1 | 2): void;
}

export class Exporter {
  /** Update groups by key, and as an array for the hot loop. */
  private readonly groups = new Map<string, UpdateGroup>();
  private groupList: UpdateGroup[] = [];
  /** Settled peers that wait for their group to settle before joining it. */
  private readonly joinWaiting = new Set<Peer>();

  constructor(private readonly host: ExportHost) {}

  /** A prefix's best path changed (null: gone): queue what each group and each lone peer is to be sent. */
  announce(b: number, k: PrefixKey, best: Path | null | undefined): void {
    const groups = this.groupList;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (g.disposed) continue;
      g.out.want(b, k, best ? this.exportForGroup(g, best, b, k) : null, best?.source);
      this.scheduleGroupFlush(g);
    }
    const peers = this.host.peers();
    for (let i = 0; i < peers.length; i++) {
      const p = peers[i]!;
      if (p.group || p.state !== 'Established' || (!p.dumpDone && !p.dumping)) continue;
      // nothing to send (split horizon: the path came from p, which never had it) → no flush either
      if (p.adjOut.want(b, k, best ? this.exportFor(p, best, b, k) : null) || p.dumping) this.scheduleFlush(p);
    }
  }

  /** A peer is gone: it waits for no group. */
  forget(p: Peer): void {
    this.joinWaiting.delete(p);
  }

  /** Update groups: members, prefixes in the shared Adj-RIB-Out, changes not yet encoded. */
  updateGroups(): { id: number; members: string[]; prefixes: number; pending: number; encoded: number }[] {
    this.pruneGroups();
    return this.groupList.map((g) => ({
      id: g.id,
      members: [...g.members].map((p) => p.config.address),
      prefixes: g.out.sent.size,
      pending: g.out.pendingCount,
      encoded: g.encoded,
    }));
  }

  /** The attribute set `best` is sent to `p` with, or null (not sent). Cached per (attrs, source). */
  exportFor(p: Peer, best: Path, b: number, k: PrefixKey): AttrSet | null {
    const afi = afiOfBucket(b);
    if (!shouldAdvertise(best.source, p.target, this.host.reflecting())) return null;
    const fam: FamilyKey = afi === 1 ? FAMILY_IPV4_UNICAST : FAMILY_IPV6_UNICAST;
    if (p.negotiated && !p.negotiated.families.includes(fam)) return null;
    if (p.filters.hasExport(afi)) {
      // Export filters (BGPFilter) per prefix, before the Adj-RIB-Out; then the protocol's rules.
      const iface = best.source.local ? this.host.localIface.get(b, k) : undefined;
      const set = p.filters.exportDecide(best, afi, b, k, iface, (a) => {
        const out = exportAttrs(this.host.identityFor(p), p.policy, best.source, a, afi);
        return out ? this.host.attrTable.intern(out) : null;
      });
      // An interface route leaves only on a rule's Accept (Calico's export filter rejects what no BGPFilter accepted).
      if (set && best.source.local && p.filters.lastRule?.action !== 'Accept' && this.host.localDirect.get(b, k)) return null;
      return set;
    }
    if (best.source.local && this.host.localDirect.get(b, k)) return null;
    return this.cachedExport(p.exportCache, p, best, afi);
  }

  /** exportFor() for an update group: the same rules, asked for a member that is not the path's source. */
  private exportForGroup(g: UpdateGroup, best: Path, b: number, k: PrefixKey): AttrSet | null {
    const rep = g.rep;
    // Groups hold peers without export filters: no rule can accept an interface route for them.
    if (best.source.local && this.host.localDirect.get(b, k)) return null;
    const afi = afiOfBucket(b);
    if (!shouldAdvertise(best.source, { source: g.target, ebgp: rep.policy.ebgp, rrClient: rep.policy.rrClient }, this.host.reflecting()))
      return null;
    const fam: FamilyKey = afi === 1 ? FAMILY_IPV4_UNICAST : FAMILY_IPV6_UNICAST;
    if (rep.negotiated && !rep.negotiated.families.includes(fam)) return null;
    return this.cachedExport(g.exportCache, rep, best, afi);
  }

  /** The protocol's export attributes of `best` toward `p` (no filters), cached per (attrs, source, family). */
  private cachedExport(cache: Map<number, AttrSet | null>, p: Peer, best: Path, afi: 1 | 2): AttrSet | null {
    const cacheKey = best.attrs.id * 4096 + best.source.id * 2 + (afi - 1);
    const hit = cache.get(cacheKey);
    if (hit !== undefined) return hit;
    const out = exportAttrs(this.host.identityFor(p), p.policy, best.source, best.attrs.attrs, afi);
    const set = out ? this.host.attrTable.intern(out) : null;
    if (cache.size >= 65536) cache.clear();
    cache.set(cacheKey, set);
    return set;
  }

  /**
   * A settled peer (initial dump and End-of-RIB sent, nothing pending) joins the update group of its
   * key when that group is settled too: both then hold the same export of the same Loc-RIB, so the
   * peer's own Adj-RIB-Out is dropped. The first member builds the group's table from the Loc-RIB.
   */
  private tryJoin(p: Peer): void {
    this.joinWaiting.delete(p);
    if (p.group || p.state !== 'Established' || !p.dumpDone || !p.eorSent || this.host.deferring()) return;
    if (p.adjOut.pendingCount > 0 || p.refreshOut.size > 0 || p.outQueue.length > 0) return;
    const g = this.groupFor(p);
    if (!g) return;
    if (g.out.pendingCount > 0) {
      this.joinWaiting.add(p);
      return;
    }
    if (g.out.sentTo(p.source) !== p.adjOut.sent.size) {
      // Not the same view (should not happen when both are settled): stay alone.
      this.host.log.debug({ peer: p.config.address, group: g.out.sentTo(p.source), own: p.adjOut.sent.size }, 'update group: not joined');
      if (g.members.size === 0) g.dispose();
      this.pruneGroups();
      return;
    }
    p.adjOut.clear();
    g.members.add(p);
    p.group = g;
  }

  /** Take a member out of its group with its own Adj-RIB-Out: exactly what it was queued, plus the group's pending changes. */
  evict(p: Peer, why: string): void {
    const g = p.group;
    if (!g) return;
    if (p.groupDump) {
      // Still in its initial dump: it goes on alone with a full dump (what it was queued is re-sent).
      p.groupDump = undefined;
      g.leave(p);
      this.pruneGroups();
      p.dumping = this.host.rib.table.entries();
      p.dumpDone = false;
      this.scheduleFlush(p);
      return;
    }
    g.out.forEachSentTo(p.source, (a, b, k) => p.adjOut.seed(b, k, a));
    g.out.forEachPending(p.source, (b, k, a) => p.adjOut.want(b, k, a));
    g.leave(p);
    this.pruneGroups();
    this.host.log.info({ peer: p.config.address, why }, 'update group: peer continues on its own');
    this.scheduleFlush(p);
  }

  private pruneGroups(): void {
    if (!this.groupList.some((g) => g.disposed)) return;
    this.groupList = this.groupList.filter((g) => !g.disposed);
    for (const [key, g] of this.groups) if (g.disposed) this.groups.delete(key);
  }

  // Called per prefix and group/peer: the closures are made in helpers of their own, as a closure
  // written here would make V8 allocate its context on every call, scheduled or not.
  private scheduleGroupFlush(g: UpdateGroup): void {
    if (g.flushScheduled || g.disposed) return;
    this.queueGroupFlush(g);
  }

  private queueGroupFlush(g: UpdateGroup): void {
    g.flushScheduled = true;
    setImmediate(() => {
      g.flushScheduled = false;
      this.flushGroup(g);
    });
  }

  /** Export, pack and encode a group's pending changes once, queue the bytes to every member, write. */
  private flushGroup(g: UpdateGroup): void {
    if (g.disposed) return;
    const deadline = performance.now() + this.host.sliceMs;
    while (g.out.pendingCount > 0) {
      const slow = g.slowest(this.host.limits.highWater);
      if (slow) {
        // The group goes at the pace of its slowest member, for a while: then that member goes on alone.
        const now = performance.now();
        if (!g.stalledSince) g.stalledSince = now;
        if (now - g.stalledSince >= this.host.limits.evictMs) {
          g.stalledSince = 0;
          this.evict(slow, `its socket held the group back for ${this.host.limits.evictMs} ms`);
          continue;
        }
        clearTimeout(g.stallTimer);
        g.stallTimer = setTimeout(() => this.flushGroup(g), this.host.limits.evictMs - (now - g.stalledSince) + 1);
        g.stallTimer.unref?.();
        return;
      }
      g.stalledSince = 0;
      const caps = g.caps;
      // A batch no member is to receive (split horizon: a lone member that sent every route, as a node
      // with one upstream peer has) updates the shared table but is not encoded.
      g.deliver(
        g.out
          .take(2000)
          .filter((batch) => g.hasRecipient(batch))
          .map((batch) => {
            const bufs = encodeBatch(batch, caps);
            g.encoded += bufs.length;
            return { batch, bufs };
          }),
      );
      for (const m of g.members) this.writeQueue(m);
      if (performance.now() > deadline) break;
    }
    if (g.out.pendingCount > 0) {
      this.scheduleGroupFlush(g);
      return;
    }
    for (const p of [...this.joinWaiting]) this.tryJoin(p);
  }

  /** Write a peer's queued messages until its socket pushes back. */
  private writeQueue(p: Peer): void {
    const s = p.session;
    if (!s || p.blocked || p.outQueue.length === 0) return;
    if (!p.outQueue.write((b) => s.send(b))) p.blocked = true;
  }

  /** Recompute what a peer should have (after a policy change). */
  refreshExports(p: Peer): void {
    this.host.rib.forEach((best, b, k) => p.adjOut.want(b, k, this.exportFor(p, best, b, k)));
    p.adjOut.sent.forEach((_s, b, k) => {
      if (!this.host.rib.best(b, k)) p.adjOut.want(b, k, null);
    });
    this.scheduleFlush(p);
  }

  startDump(p: Peer): void {
    p.dumpDone = false;
    // A peer with a group key joins its group now and is dumped from the group's table (no Adj-RIB-Out
    // of its own, ever): many clients coming up to a full reflector hold one table, not one each.
    const g = this.host.deferring() ? undefined : this.groupFor(p);
    if (g) {
      p.adjOut.clear();
      g.members.add(p);
      p.group = g;
      p.groupDump = g.out.sent.entries();
      // Peers of this key that were alone join it too, once their own Adj-RIB-Out is settled.
      for (const q of this.host.peers()) if (q !== p && !q.group && this.sameGroupKey(q, g)) this.tryJoin(q);
    } else p.dumping = this.host.rib.table.entries();
    this.scheduleFlush(p);
  }

  private sameGroupKey(q: Peer, g: UpdateGroup): boolean {
    return q.state === 'Established' && groupKey(q, this.host.identityFor(q).asn) === g.key;
  }

  /**
   * The update group of a peer's key (built from the Loc-RIB when it does not exist yet), or undefined.
   * A group is built only for a second peer of the key: a lone peer keeps its own Adj-RIB-Out, where
   * split horizon stores nothing for the routes it sent (a node with one upstream peer would otherwise
   * keep a shared table of every route it learned, for nobody).
   */
  private groupFor(p: Peer): UpdateGroup | undefined {
    const key = groupKey(p, this.host.identityFor(p).asn);
    if (key === undefined) return undefined;
    const g = this.groups.get(key);
    if (g && !g.disposed) return g;
    if (!this.host.peers().some((q) => q !== p && q.state === 'Established' && groupKey(q, this.host.identityFor(q).asn) === key))
      return undefined;
    const ng = new UpdateGroup(key, this.host.attrTable, p);
    ng.members.add(p); // rep for the export rules while building
    this.host.rib.forEach((best, b, k) => {
      const a = this.exportForGroup(ng, best, b, k);
      if (a) ng.out.seed(b, k, a, best.source);
    });
    ng.members.delete(p);
    this.pruneGroups();
    this.groups.set(key, ng);
    this.groupList.push(ng);
    return ng;
  }

  /** Part of a member's initial dump from its group's table, as its queue drains; then End-of-RIB. */
  private dumpFromGroup(p: Peer, g: UpdateGroup): void {
    const deadline = performance.now() + this.host.sliceMs;
    while (p.groupDump && !p.blocked && p.outQueue.bytes < this.host.limits.lowWater) {
      const { batches, done } = g.out.dumpRound(p.groupDump, p.source, 2000);
      const msgs = batches.flatMap((batch) => encodeBatch(batch, p.caps));
      if (done) {
        p.groupDump = undefined;
        p.dumpDone = true;
        p.eorSent = true; // RFC 4724 §2: End-of-RIB after the initial dump, behind it in the queue
        msgs.push(...endOfRibs(p));
      }
      if (msgs.length) p.outQueue.push(msgs.length === 1 ? msgs[0]! : Buffer.concat(msgs));
      this.writeQueue(p);
      if (done) this.host.dumpDone(p.config.address);
      if (performance.now() > deadline) break;
    }
    if (p.groupDump && !p.blocked) this.scheduleFlush(p);
  }

  scheduleFlush(p: Peer): void {
    if (p.flushScheduled || p.blocked) return;
    this.queueFlush(p);
  }

  private queueFlush(p: Peer): void {
    p.flushScheduled = true;
    setImmediate(() => {
      p.flushScheduled = false;
      this.flush(p);
    });
  }

  /** Move part of the initial dump into Adj-RIB-Out, then write pending changes until the socket pushes back. */
  private flush(p: Peer): void {
    const s = p.session;
    if (!s || p.state !== 'Established') return;
    if (p.outQueue.length > 0) {
      this.writeQueue(p);
      if (p.blocked) return;
    }
    if (p.group) {
      if (p.groupDump) this.dumpFromGroup(p, p.group);
      if (p.group && p.group.out.pendingCount > 0 && p.outQueue.bytes < this.host.limits.lowWater) this.scheduleGroupFlush(p.group);
      return;
    }
    const deadline = performance.now() + this.host.sliceMs;
    if (p.dumping) {
      let n = 0;
      for (;;) {
        const r = p.dumping.next();
        if (r.done) {
          p.dumping = undefined;
          p.dumpDone = true;
          break;
        }
        const [b, k, slot] = r.value;
        const best = Array.isArray(slot) ? slot[0]! : slot;
        p.adjOut.want(b, k, this.exportFor(p, best, b, k));
        if ((++n & 1023) === 0 && performance.now() > deadline) break;
      }
    }
    // RFC 7313 §4: BoRR before the re-sent routes of a refreshed family.
    for (const [afi, st] of p.refreshOut) {
      if (st !== 'queued' || p.blocked) continue;
      if (p.negotiated?.enhancedRouteRefresh && !s.send(encodeRouteRefresh({ afi, safi: 1, subtype: 1 }))) p.blocked = true;
      p.refreshOut.set(afi, 'sending');
    }
    while (p.adjOut.pendingCount > 0) {
      // One write per round (not one per UPDATE): a socket write is a syscall and a TCP segment.
      const msgs = p.adjOut.take(2000).flatMap((batch) => encodeBatch(batch, p.caps));
      if (msgs.length && !s.send(msgs.length === 1 ? msgs[0]! : Buffer.concat(msgs))) p.blocked = true;
      if (p.blocked || performance.now() > deadline) break;
    }
    for (const [afi, st] of p.refreshOut) {
      if (st !== 'sending' || p.adjOut.resendPending(afi)) continue;
      if (p.negotiated?.enhancedRouteRefresh && !s.send(encodeRouteRefresh({ afi, safi: 1, subtype: 2 }))) p.blocked = true; // EoRR
      p.refreshOut.delete(afi);
      this.host.refreshDone(p.config.address, afi);
    }
    if (p.dumping || p.adjOut.pendingCount > 0 || [...p.refreshOut.values()].includes('queued')) {
      if (!p.blocked) this.scheduleFlush(p);
      return;
    }
    if (p.dumpDone && !p.eorSent) {
      // RFC 4724 §2: End-of-RIB after the initial dump, one per negotiated family.
      p.eorSent = true;
      for (const m of endOfRibs(p)) s.send(m);
      this.host.dumpDone(p.config.address);
    }
    this.tryJoin(p);
  }
}

/** RFC 4724 §2: one End-of-RIB per negotiated family, after the initial dump. */
function endOfRibs(p: Peer): Buffer[] {
  const out: Buffer[] = [];
  for (const fam of p.negotiated?.families ?? [FAMILY_IPV4_UNICAST]) {
    if (fam === FAMILY_IPV4_UNICAST) out.push(encodeEndOfRib(1, p.caps));
    else if (fam === FAMILY_IPV6_UNICAST) out.push(encodeEndOfRib(2, p.caps));
  }
  return out;
}
