// `apply --dry-run` and BGPFilters, pure: which of its own blocks each node would keep from which BGP
// peer because of an export filter — evaluated with the speaker's own filter engine on the sessions the
// configuration implies (expectedSessions), each block with the communities BGPConfiguration gives it.
// bgp-impact.ts compares before and after a change and warns about every block a change newly keeps
// from a peer (and when it keeps every block from every peer of a node).
import { FilterChain, routePrefixOf } from '../bgp/filter/engine.js';
import type { RouteAttributes } from '../bgp/rib/attrs.js';
import { expectedSessions } from './cluster-check.js';
import type { ClusterInput } from './cluster-check.js';
import { communitiesFor, resolveFilters, type CommunityConfig, type FilterRes } from './bgp-policy.js';

export interface ExportKept {
  node: string;
  block: string;
  /** Peer label: `node-1 (172.31.1.11)` or the address. */
  peer: string;
  /** `<filter> exportV4[<i>] Reject`. */
  decidedBy: string;
}

/** Every (node, own exported block, peer) an export filter rejects. */
export function exportsKept(
  input: Pick<ClusterInput, 'nodes' | 'peers' | 'bgp' | 'selector' | 'blocks'>,
  filters: readonly FilterRes[],
  /** Blocks not exported over BGP at all (VXLAN pools, disableBGPExport): by pool name. */
  notExportedPools: ReadonlySet<string>,
  communities?: CommunityConfig,
): ExportKept[] {
  const out: ExportKept[] = [];
  const chains = new Map<string, { chain: FilterChain; missing: string[] }>();
  for (const n of input.nodes) {
    if (n.routeReflector) continue;
    const blocks = input.blocks.filter(
      (b) => b.node === n.name && b.affinityState === 'confirmed' && !(b.pool && notExportedPools.has(b.pool)),
    );
    if (blocks.length === 0) continue;
    const ownAsn = n.asNumber ?? input.bgp.asNumber;
    for (const p of expectedSessions(input, n.name)) {
      if (!p.filters?.length) continue;
      const key = JSON.stringify(p.filters);
      let entry = chains.get(key);
      if (!entry) {
        const r = resolveFilters(p.filters, filters);
        try {
          entry = { chain: new FilterChain(r.filters), missing: r.missing };
        } catch {
          continue; // a filter the validator would refuse: apply says so, not this estimate
        }
        chains.set(key, entry);
      }
      const { chain, missing } = entry;
      for (const b of blocks) {
        const v6 = b.cidr.includes(':');
        if (v6 !== (p.family === 6)) continue;
        const c = communitiesFor(b.cidr, communities);
        const attrs: RouteAttributes = { origin: 0, asPath: [] };
        if (c.communities.length) attrs.communities = c.communities;
        if (c.largeCommunities.length) attrs.largeCommunities = c.largeCommunities;
        const d = chain.evaluate('export', routePrefixOf(b.cidr), {
          attrs,
          fromPeer: false,
          ebgpPeer: (p.localAsn ?? ownAsn) !== p.asn,
        }).decision;
        if (d.action !== 'Reject') continue;
        out.push({
          node: n.name,
          block: b.cidr,
          peer: p.peerNode ? `${p.peerNode} (${p.address})` : p.address,
          decidedBy:
            d.filter !== undefined && missing.includes(d.filter)
              ? `${d.filter} (no such BGPFilter: the agent fails closed and rejects every route)`
              : `${d.filter} ${v6 ? 'exportV6' : 'exportV4'}[${d.rule}] Reject`,
        });
      }
    }
  }
  return out;
}
