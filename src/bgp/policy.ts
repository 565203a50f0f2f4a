// Import and export rules of the speaker, pure: attributes in, attributes (or a reason to drop) out.
//
// Import (RFC 4271 §9.1.1, RFC 4456 §8):
//   - AS_PATH loop detection: drop a path carrying our AS more often than the peer's allowed count
//     (Calico's numAllowedLocalASNumbers, default 0);
//   - route-reflection loops: drop a path whose ORIGINATOR_ID is our BGP Identifier or whose CLUSTER_LIST
//     holds our cluster ID;
//   - from an eBGP peer: LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST are ignored (§5.1.5, RFC 4456 §7).
// Export (who gets what is in reflector.ts; this is how the attributes change):
//   - to eBGP: prepend our AS (§5.1.2), next hop = self unless keepOriginalNextHop (§5.1.3), no
//     LOCAL_PREF, no MED learned from another AS (§5.1.4), no ORIGINATOR_ID/CLUSTER_LIST;
//   - to iBGP: LOCAL_PREF always present (default 100); next hop unchanged unless nextHopSelf, or the
//     path is local without a next hop; reflected paths get ORIGINATOR_ID and our cluster ID prepended
//     to CLUSTER_LIST, and their next hop is kept (RFC 4456 §8, §10) unless nextHopSelf is set on the
//     peer — an explicit `nextHopMode: Self` rewrites reflected routes too, as BIRD's `next hop self`
//     (which Calico writes for it) does: traffic then goes through the reflector;
//   - well-known communities (RFC 1997): NO_ADVERTISE to nobody, NO_EXPORT/NO_EXPORT_SUBCONFED not to eBGP.
import { formatIpv4Number } from '../common/ip.js';
import { AS_SEQUENCE, type AsPathSegment } from './codec/types.js';
import type { RouteAttributes } from './rib/attrs.js';
import type { PathSource } from './rib/path.js';

export const COMMUNITY_NO_EXPORT = 0xffffff01;
export const COMMUNITY_NO_ADVERTISE = 0xffffff02;
export const COMMUNITY_NO_EXPORT_SUBCONFED = 0xffffff03;
export const DEFAULT_LOCAL_PREF = 100;

export interface LocalIdentity {
  asn: number;
  /** Our BGP Identifier, dotted quad. */
  routerId: string;
  /** Our cluster ID when we are a route reflector (RFC 4456), dotted quad. */
  clusterId?: string;
}

export interface PeerPolicy {
  asn: number;
  ebgp: boolean;
  rrClient: boolean;
  nextHopSelf: boolean;
  keepOriginalNextHop: boolean;
  /** How many times our own AS may appear in a received AS_PATH (Calico numAllowedLocalASNumbers). */
  allowOwnAs: number;
  /** Our address on the session (the next hop we give as "self"). */
  localAddress: string;
  /** Our IPv6 next hop for IPv6 routes when the session runs over IPv4 (else derived). */
  localAddress6?: string;
}

export type ImportResult = { ok: true; attrs: RouteAttributes } | { ok: false; reason: 'as-loop' | 'originator-loop' | 'cluster-loop' };

export function countAs(path: readonly AsPathSegment[] | undefined, asn: number): number {
  let n = 0;
  if (path)
    for (let i = 0; i < path.length; i++) {
      const asns = path[i]!.asns;
      for (let j = 0; j < asns.length; j++) if (asns[j] === asn) n++;
    }
  return n;
}

/** Apply the import rules to attributes received from `peer`. */
export function importAttrs(self: LocalIdentity, peer: PeerPolicy, attrs: RouteAttributes): ImportResult {
  if (countAs(attrs.asPath, self.asn) > peer.allowOwnAs) return { ok: false, reason: 'as-loop' };
  if (!peer.ebgp) {
    if (attrs.originatorId !== undefined && attrs.originatorId === self.routerId) return { ok: false, reason: 'originator-loop' };
    if (self.clusterId !== undefined && attrs.clusterList?.includes(self.clusterId)) return { ok: false, reason: 'cluster-loop' };
    return { ok: true, attrs };
  }
  if (attrs.localPref === undefined && attrs.originatorId === undefined && attrs.clusterList === undefined) return { ok: true, attrs };
  const out = { ...attrs };
  delete out.localPref;
  delete out.originatorId;
  delete out.clusterList;
  return { ok: true, attrs: out };
}

/** What a path looks like when sent to `peer`; null when it must not be sent at all. */
export function exportAttrs(
  self: LocalIdentity,
  peer: PeerPolicy,
  source: PathSource,
  attrs: RouteAttributes,
  afi: 1 | 2,
): RouteAttributes | null {
  const comms = attrs.communities;
  if (comms && comms.length > 0) {
    if (comms.includes(COMMUNITY_NO_ADVERTISE)) return null;
    if (peer.ebgp && (comms.includes(COMMUNITY_NO_EXPORT) || comms.includes(COMMUNITY_NO_EXPORT_SUBCONFED))) return null;
  }
  const out: RouteAttributes = { ...attrs };
  if (out.origin === undefined) out.origin = 0;
  const self4 = peer.localAddress;
  const selfHop = afi === 1 ? self4 : (peer.localAddress6 ?? (self4.includes(':') ? self4 : `::ffff:${self4}`));
  if (peer.ebgp) {
    out.asPath = prependAs(attrs.asPath, self.asn);
    if (!(peer.keepOriginalNextHop && out.nextHop)) {
      out.nextHop = selfHop;
      delete out.linkLocal;
    }
    delete out.localPref;
    if (!source.local) delete out.med;
    delete out.originatorId;
    delete out.clusterList;
    return out;
  }
  // iBGP
  if (out.localPref === undefined) out.localPref = DEFAULT_LOCAL_PREF;
  if (out.asPath === undefined) out.asPath = [];
  const reflected = !source.local && !source.ebgp;
  if (reflected) {
    // RFC 4456 §8: ORIGINATOR_ID = the originator's BGP Identifier if not already set; prepend CLUSTER_LIST.
    if (out.originatorId === undefined) out.originatorId = formatIpv4Number(source.routerId);
    out.clusterList = [self.clusterId ?? self.routerId, ...(attrs.clusterList ?? [])];
    // RFC 4456 §10: reflection keeps the next hop — unless the operator asked for next-hop-self.
    if (peer.nextHopSelf) {
      out.nextHop = selfHop;
      delete out.linkLocal;
    }
    return out;
  }
  if (peer.nextHopSelf || !out.nextHop || out.nextHop === '0.0.0.0' || out.nextHop === '::') {
    out.nextHop = selfHop;
    delete out.linkLocal;
  }
  return out;
}

export function prependAs(path: readonly AsPathSegment[] | undefined, asn: number): AsPathSegment[] {
  const segs = path ? path.map((s) => ({ type: s.type, asns: s.asns.slice() })) : [];
  const first = segs[0];
  // A segment holds at most 255 ASNs (RFC 4271 §4.3).
  if (first && first.type === AS_SEQUENCE && first.asns.length < 255) first.asns.unshift(asn);
  else segs.unshift({ type: AS_SEQUENCE, asns: [asn] });
  return segs;
}
