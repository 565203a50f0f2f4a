// What `tabbyctl bgp routes` shows for one peer: every prefix received from it (accepted, best or
// rejected — and by which BGPFilter rule) or every Loc-RIB prefix toward it (advertised or not, and
// why: a filter rule, or the protocol rule that held it back). Types and formatting only; the
// speaker fills the rows (routeReport()).
import type { RouteAttributes } from './rib/attrs.js';
import type { FilterAction } from './filter/types.js';

export type RouteReportState = 'best' | 'accepted' | 'rejected' | 'advertised' | 'not-advertised';

export interface RouteReportEntry {
  prefix: string;
  state: RouteReportState;
  /** `<filter> <list>[<index>] <action>`, `default Accept`, or the protocol's reason. */
  decidedBy: string;
  filter?: string;
  rule?: number;
  action?: FilterAction;
  nextHop?: string;
  asPath: number[];
  communities: string[];
  localPref?: number;
  med?: number;
  priority?: number;
}

/** An originated prefix an export filter keeps from one peer, and the rule that decided it. */
export interface ExportRejection {
  prefix: string;
  /** The peer's address. */
  peer: string;
  filter: string;
  /** Index of the rule in the filter's exportV4/exportV6 list. */
  rule: number;
  /** `<filter> exportV4[<index>] Reject`. */
  decidedBy: string;
}

/** The display fields of a route's attributes (AS_PATH flattened; communities as aa:nn / aa:nn:mm). */
export function reportAttrs(
  a: Readonly<RouteAttributes> | undefined,
): Pick<RouteReportEntry, 'nextHop' | 'asPath' | 'communities' | 'localPref' | 'med' | 'priority'> {
  const out: Pick<RouteReportEntry, 'nextHop' | 'asPath' | 'communities' | 'localPref' | 'med' | 'priority'> = {
    asPath: [],
    communities: [],
  };
  if (!a) return out;
  if (a.nextHop) out.nextHop = a.nextHop;
  for (const s of a.asPath ?? []) out.asPath.push(...s.asns);
  for (const c of a.communities ?? []) out.communities.push(`${c >>> 16}:${c & 0xffff}`);
  for (const c of a.largeCommunities ?? []) out.communities.push(`${c.global}:${c.local1}:${c.local2}`);
  if (a.localPref !== undefined) out.localPref = a.localPref;
  if (a.med !== undefined) out.med = a.med;
  if (a.priority !== undefined) out.priority = a.priority;
  return out;
}
