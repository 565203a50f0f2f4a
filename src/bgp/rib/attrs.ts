// Interned path-attribute sets: one frozen AttrSet object per distinct set of attributes, shared by
// every path that carries it (a full table has ~1M prefixes but only tens of thousands of distinct
// attribute sets — this sharing is what keeps the RIB small). Reference-counted by the RIBs: a set
// leaves the table when its last path goes.
//
// An AttrSet never holds MP_REACH/MP_UNREACH (their NLRI are not attributes of a path); the next hop
// of either family is kept in `nextHop` (+ `linkLocal` for IPv6). The decision process (decision.ts)
// reads only the derived numeric fields computed here once per set.
import { parseIpv4Number } from '../../common/ip.js';
import { AS_CONFED_SEQUENCE, AS_CONFED_SET, AS_SET, type AsPathSegment, type PathAttributes } from '../codec/types.js';

/** Attributes of a path, without MP_REACH/MP_UNREACH and without wire-layout hints. */
export type RouteAttributes = Omit<PathAttributes, 'mpReach' | 'mpUnreach' | 'wireOrder' | 'wireExtended'> & {
  /** IPv6 link-local next hop (RFC 2545), when the path is IPv6 and the peer sent one. */
  linkLocal?: string;
  /** Route priority set by a BGPFilter setPriority (Calico's krt_metric): local only, never sent. */
  priority?: number;
};

export class AttrSet {
  /** Paths (in any RIB) that reference this set. */
  refs = 0;
  // Derived once, read by the decision process.
  readonly origin: number;
  readonly localPref: number | undefined;
  readonly med: number | undefined;
  readonly asPathLength: number;
  /** First AS of the AS_PATH (RFC 4271 §9.1.2.2 c), 0 when the path is empty (own AS). */
  readonly neighborAs: number;
  readonly originatorId: number | undefined;
  readonly clusterListLength: number;
  /** The next hop ('' when none). */
  readonly nextHop: string;
  /** [nextHop], shared (frozen) by every best-route event of this set. */
  readonly nextHops: readonly string[];

  constructor(
    readonly id: number,
    readonly key: string,
    readonly attrs: Readonly<RouteAttributes>,
  ) {
    this.origin = attrs.origin ?? 2;
    this.localPref = attrs.localPref;
    this.med = attrs.med;
    this.asPathLength = asPathLength(attrs.asPath);
    this.neighborAs = neighborAs(attrs.asPath);
    this.originatorId = attrs.originatorId !== undefined ? parseIpv4Number(attrs.originatorId) : undefined;
    this.clusterListLength = attrs.clusterList?.length ?? 0;
    this.nextHop = attrs.nextHop ?? '';
    this.nextHops = Object.freeze([this.nextHop]);
  }
}

/** RFC 4271 §9.1.2.2 a: AS_SET counts 1; RFC 5065 §5.3: confederation segments count 0. */
export function asPathLength(path: readonly AsPathSegment[] | undefined): number {
  if (!path) return 0;
  let n = 0;
  for (const seg of path) {
    if (seg.type === AS_SET) n += 1;
    else if (seg.type === AS_CONFED_SEQUENCE || seg.type === AS_CONFED_SET) continue;
    else n += seg.asns.length;
  }
  return n;
}

/** The neighbouring AS: the first AS of the first AS_SEQUENCE (confed segments skipped), 0 if none. */
export function neighborAs(path: readonly AsPathSegment[] | undefined): number {
  if (!path) return 0;
  for (const seg of path) {
    if (seg.type === AS_CONFED_SEQUENCE || seg.type === AS_CONFED_SET) continue;
    if (seg.type === AS_SET) return 0;
    if (seg.asns.length > 0) return seg.asns[0]!;
  }
  return 0;
}

/** Canonical text of an attribute set: equal attributes ⇔ equal keys. */
export function attrKey(a: RouteAttributes): string {
  let k = `o${a.origin ?? ''}|n${a.nextHop ?? ''}`;
  if (a.linkLocal !== undefined) k += `|ll${a.linkLocal}`;
  if (a.asPath) for (const s of a.asPath) k += `|s${s.type}:${s.asns.join(',')}`;
  if (a.med !== undefined) k += `|m${a.med}`;
  if (a.localPref !== undefined) k += `|l${a.localPref}`;
  if (a.atomicAggregate) k += '|A';
  if (a.aggregator) k += `|g${a.aggregator.asn}:${a.aggregator.address}`;
  if (a.communities?.length) k += `|c${a.communities.join(',')}`;
  if (a.originatorId !== undefined) k += `|i${a.originatorId}`;
  if (a.clusterList?.length) k += `|C${a.clusterList.join(',')}`;
  if (a.extCommunities?.length) k += `|e${a.extCommunities.join(',')}`;
  if (a.largeCommunities?.length) {
    k += '|L';
    for (const c of a.largeCommunities) k += `${c.global}:${c.local1}:${c.local2},`;
  }
  if (a.unknown?.length) for (const u of a.unknown) k += `|u${u.code}:${u.flags}:${u.value.toString('hex')}`;
  if (a.priority !== undefined) k += `|p${a.priority}`;
  return k;
}

/** Strip MP_REACH/MP_UNREACH and wire-layout hints; take the MP next hop when the family is not IPv4. */
export function routeAttributesOf(a: PathAttributes, mpNextHop?: { nextHop: string; linkLocal?: string }): RouteAttributes {
  const { mpReach: _r, mpUnreach: _u, wireOrder: _o, wireExtended: _e, ...rest } = a;
  const out: RouteAttributes = rest;
  if (mpNextHop) {
    out.nextHop = mpNextHop.nextHop;
    if (mpNextHop.linkLocal) out.linkLocal = mpNextHop.linkLocal;
    else delete out.linkLocal;
  }
  return out;
}

/** The table of interned sets. */
export class AttrTable {
  private readonly byKey = new Map<string, AttrSet>();
  private nextId = 1;

  /** The one AttrSet for these attributes (created on first use). Does not take a reference. */
  intern(attrs: RouteAttributes): AttrSet {
    const key = attrKey(attrs);
    let set = this.byKey.get(key);
    if (!set) {
      set = new AttrSet(this.nextId++, key, freezeAttrs(attrs));
      this.byKey.set(key, set);
    }
    return set;
  }

  ref(set: AttrSet): void {
    set.refs++;
  }

  unref(set: AttrSet): void {
    if (--set.refs <= 0) {
      set.refs = 0;
      if (this.byKey.get(set.key) === set) this.byKey.delete(set.key);
    }
  }

  /** Distinct sets currently interned. */
  get size(): number {
    return this.byKey.size;
  }
}

/**
 * Freeze in place (no copy): callers hand over fresh objects (the decoder's, policy results) and
 * never mutate them afterwards. Nested arrays are frozen too; Buffers cannot be, and are not shared.
 */
function freezeAttrs(a: RouteAttributes): RouteAttributes {
  for (const k of Object.keys(a) as (keyof RouteAttributes)[]) if (a[k] === undefined) delete a[k];
  if (a.asPath) {
    for (const seg of a.asPath) {
      Object.freeze(seg.asns);
      Object.freeze(seg);
    }
    Object.freeze(a.asPath);
  }
  if (a.communities) Object.freeze(a.communities);
  if (a.clusterList) Object.freeze(a.clusterList);
  if (a.extCommunities) Object.freeze(a.extCommunities);
  if (a.largeCommunities) {
    for (const c of a.largeCommunities) Object.freeze(c);
    Object.freeze(a.largeCommunities);
  }
  if (a.aggregator) Object.freeze(a.aggregator);
  if (a.unknown) {
    for (const u of a.unknown) Object.freeze(u);
    Object.freeze(a.unknown);
  }
  return Object.freeze(a);
}
