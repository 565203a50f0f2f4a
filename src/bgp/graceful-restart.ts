// Graceful restart (RFC 4724) bookkeeping, pure helpers the speaker uses.
//
// Helper side (§4.2): when a peer that advertised the capability loses its session (not by a
// NOTIFICATION we sent or received), its routes are kept and marked stale — best path still uses
// them — until it comes back and sends End-of-RIB (stale ones it did not re-announce are then
// removed), or its restart time runs out, or it comes back without the capability / without the
// forwarding bit for a family (then removed at once).
// Restarting side (§4.1): advertise the capability with the Restart State bit, send End-of-RIB after
// the initial dump, and defer best-path output (events, exports) until every GR peer's End-of-RIB
// arrived or the selection-deferral timer fired (SelectionDeferral).
// Path generations (shared with enhanced route refresh, RFC 7313): a peer's paths of the current
// session live in `paths`; going stale (session down under GR, or BoRR) moves them to `stalePaths`
// and starts a new generation; the speaker's sweep removes the stale ones not re-announced.
import type { Capability, FamilyKey } from './codec/types.js';
import type { AttrTable } from './rib/attrs.js';
import { uninternPath, type Path } from './rib/path.js';
import { PrefixTable, type PrefixKey } from './rib/prefix-table.js';
import type { TimerHandle, Clock } from './clock.js';

export type GrCapability = Extract<Capability, { kind: 'graceful-restart' }>;

export interface GrOptions {
  /** Restart time we advertise, seconds (≤ 4095). Calico uses 120. */
  restartTime: number;
  /** We are coming back from a restart: set the R bit and defer best-path output. */
  restarting?: boolean;
  /** Selection-deferral limit when restarting, seconds (default: restartTime). */
  deferralTime?: number;
  /** We kept forwarding state (the F bit), default true: routes stay in the kernel across a restart. */
  forwardingPreserved?: boolean;
}

/** Whether a dropped peer's routes should be kept stale (RFC 4724 §4.2). */
export function keepStaleOnDown(peerGr: GrCapability | undefined, reason: { notification?: boolean }): boolean {
  if (!peerGr) return false;
  // A NOTIFICATION ends GR unless both sides do RFC 8538 (tabby does not advertise N).
  if (reason.notification) return false;
  return true;
}

/** Families (afi) whose stale routes must go at once when the peer re-establishes (§4.2). */
export function familiesToFlushOnReturn(peerGr: GrCapability | undefined, stale: readonly (1 | 2)[]): (1 | 2)[] {
  if (!peerGr) return stale.slice();
  return stale.filter((afi) => !peerGr.families.some((f) => f.afi === afi && f.safi === 1 && f.forwardingPreserved));
}

/** Restart time of the peer, ms (0 when it did not advertise GR). */
export function restartTimeMs(peerGr: GrCapability | undefined): number {
  return peerGr ? peerGr.restartTime * 1000 : 0;
}

/** A peer's path generations (Peer in peer.ts holds these). */
export interface PathGenerations {
  /** The current generation's paths (released ones, no longer interned, are skipped and compacted away). */
  paths: Path[];
  /** How many of `paths` were released. */
  released: number;
  stalePaths: Path[];
  refreshPaths: Path[];
  readonly refreshing: Set<1 | 2>;
}

/** Prefixes holding a stale path of this peer. */
export function staleCount(p: Pick<PathGenerations, 'stalePaths'>): number {
  let n = 0;
  for (const x of p.stalePaths) n += x.refs;
  return n;
}

/** Start a new generation of the peer's paths: the current ones leave its table (an unheld one releases its attributes). */
export function newGeneration(p: PathGenerations, attrTable: AttrTable): void {
  for (const path of p.paths) {
    if (!path.interned) continue;
    uninternPath(path);
    if (path.refs === 0) attrTable.unref(path.attrs);
  }
  p.paths = [];
  p.released = 0;
}

/**
 * The current generation goes stale (only the peer's few shared Path objects are touched, not every
 * prefix): on a GR session loss (§4.2), or at BoRR (RFC 7313 §4, `refresh` remembers them for EoRR).
 */
export function markStale(p: PathGenerations, attrTable: AttrTable, refresh = false): void {
  for (const path of p.paths) {
    if (!path.interned) continue;
    path.stale = true;
    p.stalePaths.push(path);
    if (refresh) p.refreshPaths.push(path);
  }
  newGeneration(p, attrTable);
}

/** EoRR of the last family being refreshed (after the sweep): paths marked at BoRR that still serve other families are current again. */
export function endRefresh(p: PathGenerations): void {
  if (p.refreshing.size !== 0) return;
  const back = new Set(p.refreshPaths);
  for (const path of back) path.stale = false;
  p.stalePaths = p.stalePaths.filter((x) => !back.has(x));
  p.refreshPaths = [];
}

/** Restarting side (§4.1): best-path output held back until End-of-RIB from every peer or the deferral timer. */
export class SelectionDeferral {
  private active: boolean;
  private changed = new PrefixTable<true>();
  private timer: TimerHandle | undefined;

  constructor(restarting: boolean) {
    this.active = restarting;
  }

  get deferring(): boolean {
    return this.active;
  }
  get heldCount(): number {
    return this.changed.size;
  }

  /** Arm the selection-deferral timer (speaker start). */
  arm(clock: Clock, ms: number, onExpire: () => void): void {
    if (this.active) this.timer = clock.setTimer(ms, onExpire);
  }

  /** While deferring, remember a changed prefix instead of announcing it (true = held). */
  hold(b: number, k: PrefixKey): boolean {
    if (!this.active) return false;
    this.changed.set(b, k, true);
    return true;
  }

  /** Stop deferring; the prefixes that changed meanwhile (undefined when not deferring). */
  end(): PrefixTable<true> | undefined {
    this.timer?.cancel();
    this.timer = undefined;
    if (!this.active) return undefined;
    this.active = false;
    const d = this.changed;
    this.changed = new PrefixTable();
    return d;
  }

  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}

/** A peer still owes End-of-RIB for the restarting side (not back yet, or a GR family without EoR). */
export function awaitingEndOfRib(
  p: {
    state: string;
    negotiated?: { peerGracefulRestart?: GrCapability; families: readonly FamilyKey[] } | undefined;
    eorReceived: ReadonlySet<1 | 2>;
  },
  ipv4: FamilyKey,
): boolean {
  if (p.state !== 'Established') return true;
  if (!p.negotiated?.peerGracefulRestart) return false;
  return p.negotiated.families.some((f) => !p.eorReceived.has(f === ipv4 ? 1 : 2));
}
