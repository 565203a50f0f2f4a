// Read-only view of a speaker's Loc-RIB (locRib()): best routes, every path, why the best won.
import type { LocRib } from './rib/loc-rib.js';
import type { RouteAttributes } from './rib/attrs.js';
import { formatPrefixKey, parsePrefixKey, type PrefixKey } from './rib/prefix-table.js';
import type { BestRouteEvent } from './speaker-types.js';

/** Read-only Loc-RIB access for the agent, the CLI and tests. */
export class LocRibView {
  constructor(private readonly rib: LocRib) {}
  get size(): number {
    return this.rib.size;
  }
  /** The best route of a prefix ('10.0.0.0/24'), or undefined. */
  get(prefix: string): BestRouteEvent | undefined {
    const k = parsePrefixKey(prefix);
    return this.routeAt(k.bucket, k.key);
  }
  /** Every path of a prefix (best first) with its source and the reason the best won. */
  paths(prefix: string): { source: string; attrs: Readonly<RouteAttributes>; stale: boolean; best: boolean }[] {
    const k = parsePrefixKey(prefix);
    return this.rib
      .paths(k.bucket, k.key)
      .map((p, i) => ({ source: p.source.address, attrs: p.attrs.attrs, stale: p.stale, best: i === 0 }));
  }
  /** Why the best path of a prefix won ('local-pref', 'as-path', …). */
  reason(prefix: string): string | undefined {
    const k = parsePrefixKey(prefix);
    const d = this.rib.decision(k.bucket, k.key);
    return d.best ? d.reason : undefined;
  }
  /** Every best route (prefix order within families is unspecified). */
  *routes(): Generator<BestRouteEvent> {
    for (const [b, k] of this.rib.table.entries()) {
      const r = this.routeAt(b, k);
      if (r) yield r;
    }
  }
  private routeAt(b: number, k: PrefixKey): BestRouteEvent | undefined {
    const best = this.rib.best(b, k);
    if (!best) return undefined;
    const nextHops = this.rib.opts.multipath ? this.rib.decision(b, k).multipath.map((x) => x.attrs.nextHop) : [best.attrs.nextHop];
    return { prefix: formatPrefixKey(b, k), nextHops, attrs: best.attrs.attrs, source: best.source.address, stale: best.stale };
  }
}
