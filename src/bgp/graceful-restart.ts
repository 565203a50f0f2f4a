// Graceful restart (RFC 4724) bookkeeping, pure helpers the speaker uses.
//
// Helper side (§4.2): when a peer that advertised the capability loses its session (not by a
// NOTIFICATION we sent or received), its routes are kept and marked stale — best path still uses
// them — until it comes back and sends End-of-RIB (stale ones it did not re-announce are then
// removed), or its restart time runs out, or it comes back without the capability / without the
// forwarding bit for a family (then removed at once).
// Restarting side (§4.1): advertise the capability with the Restart State bit, send End-of-RIB after
// the initial dump, and defer best-path output (events, exports) until every GR peer's End-of-RIB
// arrived or the selection-deferral timer fired.
import type { Capability } from './codec/types.js';

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
