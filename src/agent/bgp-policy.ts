// BGP policy from the datastore into speaker settings, pure: a BGPPeer's `filters` resolved to the
// BGPFilter resources (in order), the communities BGPConfiguration gives an originated prefix
// (`communities` + `prefixAdvertisements`), the per-peer next-hop controls and the static routes
// to peers that BGPPeer reachableBy asks for.
//   - A filter named by a BGPPeer that does not exist fails closed: it is replaced by a filter that
//     rejects everything in both directions, and the agent reports the problem (chose: Calico's BIRD
//     would refuse the whole configuration; accepting everything would fail open).
//   - prefixAdvertisements: every entry whose cidr contains the prefix adds its communities (names
//     from `communities` or literal values), in order, without duplicates.
import { parseCidr, cidrContainsCidr } from '../common/ip.js';
import { parseCommunity } from '../bgp/filter/engine.js';
import type { NamedFilter } from '../bgp/filter/types.js';
import type { LargeCommunity } from '../bgp/codec/types.js';
import type { Route } from '../dataplane/routes.js';

export interface FilterRes {
  metadata: { name: string };
  spec: NamedFilter['spec'];
}

const REJECT_ALL: NamedFilter['spec'] = {
  importV4: [{ action: 'Reject' }],
  exportV4: [{ action: 'Reject' }],
  importV6: [{ action: 'Reject' }],
  exportV6: [{ action: 'Reject' }],
};

/** BGPPeer.filters → the filters in order; a missing one becomes reject-all and is listed in `missing`. */
export function resolveFilters(
  names: readonly string[] | undefined,
  all: readonly FilterRes[],
): { filters: NamedFilter[]; missing: string[] } {
  const filters: NamedFilter[] = [];
  const missing: string[] = [];
  for (const name of names ?? []) {
    const f = all.find((x) => x.metadata.name === name);
    if (f) filters.push({ name, spec: f.spec ?? {} });
    else {
      missing.push(name);
      filters.push({ name, spec: REJECT_ALL });
    }
  }
  return { filters, missing };
}

export interface CommunityConfig {
  communities?: { name: string; value: string }[];
  prefixAdvertisements?: { cidr: string; communities?: string[] }[];
}

/** The communities an originated prefix carries (standard as 32-bit values, large as triples). */
export function communitiesFor(
  prefix: string,
  cfg: CommunityConfig | undefined,
): { communities: number[]; largeCommunities: LargeCommunity[] } {
  const out = { communities: [] as number[], largeCommunities: [] as LargeCommunity[] };
  if (!cfg?.prefixAdvertisements?.length) return out;
  let p;
  try {
    p = parseCidr(prefix);
  } catch {
    return out;
  }
  const named = new Map((cfg.communities ?? []).map((c) => [c.name, c.value]));
  for (const adv of cfg.prefixAdvertisements) {
    let c;
    try {
      c = parseCidr(adv.cidr);
    } catch {
      continue;
    }
    if (c.family !== p.family || !cidrContainsCidr(c, p)) continue;
    for (const ref of adv.communities ?? []) {
      const v = parseCommunity(named.get(ref) ?? ref);
      if (!v) continue;
      if (v.kind === 'standard') {
        if (!out.communities.includes(v.value)) out.communities.push(v.value);
      } else if (
        !out.largeCommunities.some((x) => x.global === v.value.global && x.local1 === v.value.local1 && x.local2 === v.value.local2)
      )
        out.largeCommunities.push(v.value);
    }
  }
  return out;
}

/** BGPPeer nextHopMode (Auto | Self | Keep) and the older keepOriginalNextHop, as speaker flags. */
export function nextHopFlags(
  mode: string | undefined,
  keepOriginalNextHop: boolean | undefined,
): { nextHopSelf: boolean; keepOriginalNextHop: boolean } {
  if (mode === 'Self') return { nextHopSelf: true, keepOriginalNextHop: false };
  if (mode === 'Keep') return { nextHopSelf: false, keepOriginalNextHop: true };
  return { nextHopSelf: false, keepOriginalNextHop: !!keepOriginalNextHop };
}

/** BGPPeer reachableBy: a kernel route to the peer's address via that gateway (Calico adds the same
 *  static route so the session does not depend on what BGP itself learns). */
export function peerRoutes(peers: Iterable<{ address: string; family: 4 | 6; reachableBy?: string }>): Route[] {
  const out: Route[] = [];
  for (const p of peers) {
    if (!p.reachableBy || p.reachableBy.includes(':') !== (p.family === 6)) continue;
    out.push({ dst: `${p.address}/${p.family === 4 ? 32 : 128}`, gateway: p.reachableBy });
  }
  return out;
}
