// Who receives a best path (RFC 4271 §9.2, RFC 4456 §6): the advertisement rules of a full-mesh
// iBGP speaker and of a route reflector, pure.
//
//   - never back to the peer the path came from;
//   - locally originated and eBGP-learned paths go to every peer;
//   - an iBGP-learned path, full mesh (no cluster ID): to eBGP peers only (§9.2: not re-sent to iBGP);
//   - an iBGP-learned path on a route reflector: from a client → to all clients and non-clients;
//     from a non-client → to clients only (and eBGP peers).
// How the attributes change on the way (ORIGINATOR_ID, CLUSTER_LIST, next hop) is in policy.ts.
import type { PathSource } from './rib/path.js';

export interface ReflectionTarget {
  /** The PathSource of the peer we would send to (to recognise the path's own source). */
  source: PathSource;
  ebgp: boolean;
  rrClient: boolean;
}

/** true when the path from `from` may be advertised to `to`. `reflector` = we have a cluster ID. */
export function shouldAdvertise(from: PathSource, to: ReflectionTarget, reflector: boolean): boolean {
  if (from === to.source) return false;
  if (from.local || from.ebgp) return true;
  if (to.ebgp) return true;
  if (!reflector) return false;
  return from.rrClient || to.rrClient;
}
