// Interned path-attribute sets: one frozen AttrSet object per distinct set of attributes, shared by
// every path that carries it (a full table has ~1M prefixes but only tens of thousands of distinct
// attribute sets — this sharing is what keeps the RIB small). Reference-counted by the RIBs: a set
// leaves the table when its last path goes.
// Found by a numeric hash of the attributes and compared field by field (hashAttrs/sameAttrs): no
// text key per set (a concatenated key string was ~300 B per set kept, and built for every UPDATE).
//
// An AttrSet never holds MP_REACH/MP_UNREACH (their NLRI are not attributes of a path); the next hop
// of either family is kept in `nextHop` (+ `linkLocal` for IPv6). The decision process (decision.ts)
// reads only the derived numeric fields computed here once per set.
import { parseIpv4Number } from '../../common/ip.js';
import type { Path } from './path.js';
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
  /** The next set in its hash chain (AttrTable). */
  next: AttrSet | undefined = undefined;
  /** The current-generation paths carrying this set, one per source, chained by Path.nextOfSet:
   *  how a peer finds its Path for an UPDATE's set (a per-peer Map was ~46 B per set). */
  paths: Path | undefined = undefined;

  constructor(
    readonly id: number,
    /** hashAttrs(attrs): where the table keeps it */
    readonly hash: number,
    readonly attrs: Readonly<RouteAttributes>,
    /** [nextHop], shared (frozen) by every set with that next hop and every best-route event of them. */
    readonly nextHops: readonly string[],
  ) {}

  // Read by the decision process, which runs only for prefixes with more than one path: derived on
  // use rather than kept per set (a full table's sets are mostly held by single-path prefixes).
  get origin(): number {
    return this.attrs.origin ?? 2;
  }
  get localPref(): number | undefined {
    return this.attrs.localPref;
  }
  get med(): number | undefined {
    return this.attrs.med;
  }
  get asPathLength(): number {
    return asPathLength(this.attrs.asPath);
  }
  /** First AS of the AS_PATH (RFC 4271 §9.1.2.2 c), 0 when the path is empty (own AS). */
  get neighborAs(): number {
    return neighborAs(this.attrs.asPath);
  }
  get originatorId(): number | undefined {
    const o = this.attrs.originatorId;
    return o !== undefined ? parseIpv4Number(o) : undefined;
  }
  get clusterListLength(): number {
    return this.attrs.clusterList?.length ?? 0;
  }
  /** The next hop ('' when none). */
  get nextHop(): string {
    return this.nextHops[0]!;
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

/** Canonical text of an attribute set: equal attributes ⇔ equal keys (for logs and tests; interning uses hashAttrs). */
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

// FNV-1a style mixing over 32-bit words; allocation-free (no text is built).
const mix = (h: number, v: number): number => Math.imul(h ^ v, 0x01000193);
function mixText(h: number, s: string): number {
  h = mix(h, s.length);
  for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i));
  return h;
}
const OPT = 0x7fffffff; // stands for "absent" where 0 is a value

/** A 32-bit hash of the attributes: equal attributes (sameAttrs) ⇒ equal hashes. */
export function hashAttrs(a: RouteAttributes): number {
  // index loops: this runs once per received UPDATE, and must not allocate (no iterators)
  let h = mix(0x811c9dc5, a.origin ?? OPT);
  h = mixText(h, a.nextHop ?? '');
  if (a.linkLocal !== undefined) h = mixText(mix(h, 1), a.linkLocal);
  const path = a.asPath;
  if (path)
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      h = mix(mix(h, 2), seg.type);
      for (let j = 0; j < seg.asns.length; j++) h = mix(h, seg.asns[j]!);
    }
  h = mix(mix(h, 3), a.med ?? OPT);
  h = mix(h, a.localPref ?? OPT);
  if (a.atomicAggregate) h = mix(h, 4);
  if (a.aggregator) h = mixText(mix(mix(h, 5), a.aggregator.asn), a.aggregator.address);
  const cs = a.communities;
  if (cs) for (let i = 0; i < cs.length; i++) h = mix(mix(h, 6), cs[i]!);
  if (a.originatorId !== undefined) h = mixText(mix(h, 7), a.originatorId);
  const cl = a.clusterList;
  if (cl) for (let i = 0; i < cl.length; i++) h = mixText(mix(h, 8), cl[i]!);
  const ext = a.extCommunities;
  if (ext)
    for (let i = 0; i < ext.length; i++) {
      const e = ext[i]!;
      h = mix(mix(mix(h, 9), Number(e >> 32n)), Number(e & 0xffffffffn));
    }
  const lc = a.largeCommunities;
  if (lc)
    for (let i = 0; i < lc.length; i++) {
      const c = lc[i]!;
      h = mix(mix(mix(mix(h, 10), c.global), c.local1), c.local2);
    }
  const un = a.unknown;
  if (un)
    for (let i = 0; i < un.length; i++) {
      const u = un[i]!;
      h = mix(mix(mix(h, 11), u.code), u.flags);
      for (let j = 0; j < u.value.length; j++) h = mix(h, u.value[j]!);
    }
  if (a.priority !== undefined) h = mix(mix(h, 12), a.priority);
  return h | 0;
}

const none: readonly never[] = [];

function sameList<T>(x: readonly T[] | undefined, y: readonly T[] | undefined, eq: (a: T, b: T) => boolean): boolean {
  const a = x ?? none,
    b = y ?? none;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!eq(a[i]!, b[i]!)) return false;
  return true;
}
const is = <T>(a: T, b: T): boolean => a === b;

/** The same attributes (what attrKey tells apart; an empty list = none, atomicAggregate false = absent). */
export function sameAttrs(a: RouteAttributes, b: RouteAttributes): boolean {
  return (
    a.origin === b.origin &&
    (a.nextHop ?? '') === (b.nextHop ?? '') &&
    a.linkLocal === b.linkLocal &&
    a.med === b.med &&
    a.localPref === b.localPref &&
    !a.atomicAggregate === !b.atomicAggregate &&
    a.originatorId === b.originatorId &&
    a.priority === b.priority &&
    (a.aggregator === b.aggregator ||
      (a.aggregator !== undefined &&
        b.aggregator !== undefined &&
        a.aggregator.asn === b.aggregator.asn &&
        a.aggregator.address === b.aggregator.address)) &&
    sameList(a.asPath, b.asPath, (x, y) => x.type === y.type && sameList(x.asns, y.asns, is)) &&
    sameList(a.communities, b.communities, is) &&
    sameList(a.clusterList, b.clusterList, is) &&
    sameList(a.extCommunities, b.extCommunities, is) &&
    sameList(a.largeCommunities, b.largeCommunities, (x, y) => x.global === y.global && x.local1 === y.local1 && x.local2 === y.local2) &&
    sameList(a.unknown, b.unknown, (x, y) => x.code === y.code && x.flags === y.flags && x.value.equals(y.value))
  );
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

/** The table of interned sets: chained by `AttrSet.next` from a bucket array (no Map entry per set). */
export class AttrTable {
  private buckets: (AttrSet | undefined)[] = new Array<AttrSet | undefined>(64);
  private mask = 63;
  private nextId = 1;
  private count = 0;
  /** next hop → its frozen one-element array (and the one string), shared by sets and best-route events */
  private readonly hops = new Map<string, readonly string[]>();

  /** `hash` is for tests (a constant one makes every set collide). */
  constructor(private readonly hash: (a: RouteAttributes) => number = hashAttrs) {}

  /** The one AttrSet for these attributes (created on first use). Does not take a reference. */
  intern(attrs: RouteAttributes): AttrSet {
    const h = this.hash(attrs);
    const i = h & this.mask;
    for (let x = this.buckets[i]; x !== undefined; x = x.next) if (x.hash === h && sameAttrs(x.attrs, attrs)) return x;
    const nextHops = this.nextHopsOf(attrs.nextHop ?? '');
    if (attrs.nextHop !== undefined && !Object.isFrozen(attrs)) attrs.nextHop = nextHops[0]; // one string per next hop
    const set = new AttrSet(this.nextId++, h, freezeAttrs(attrs), nextHops);
    set.next = this.buckets[i];
    this.buckets[i] = set;
    if (++this.count > 2 * (this.mask + 1)) this.resize((this.mask + 1) * 2);
    return set;
  }

  private nextHopsOf(nh: string): readonly string[] {
    let a = this.hops.get(nh);
    if (a === undefined) {
      if (this.hops.size >= 4096) this.hops.clear(); // arrays handed out stay valid; only sharing is lost
      a = Object.freeze([nh]);
      this.hops.set(nh, a);
    }
    return a;
  }

  ref(set: AttrSet): void {
    set.refs++;
  }

  unref(set: AttrSet): void {
    if (--set.refs > 0) return;
    set.refs = 0;
    const i = set.hash & this.mask;
    let x = this.buckets[i];
    if (x === set) this.buckets[i] = set.next;
    else {
      while (x !== undefined && x.next !== set) x = x.next;
      if (x === undefined) return; // not in the table (already left)
      x.next = set.next;
    }
    set.next = undefined;
    if (--this.count * 8 < this.mask + 1 && this.mask > 63) this.resize((this.mask + 1) / 2);
  }

  private resize(n: number): void {
    const old = this.buckets;
    const b = (this.buckets = new Array<AttrSet | undefined>(n));
    const mask = (this.mask = n - 1);
    for (let x of old) {
      while (x !== undefined) {
        const next = x.next;
        x.next = b[x.hash & mask];
        b[x.hash & mask] = x;
        x = next;
      }
    }
  }

  /** Distinct sets currently interned. */
  get size(): number {
    return this.count;
  }
}

/**
 * Freeze in place (no copy): callers hand over fresh objects (the decoder's, policy results) and
 * never mutate them afterwards. Nested arrays are frozen too; Buffers cannot be, and are not shared.
 */
function freezeAttrs(a: RouteAttributes): RouteAttributes {
  if (Object.isFrozen(a)) return a; // a set's attributes interned again after the set left the table
  // index and for-in loops: no key array or iterator per new set
  for (const k in a) if (a[k as keyof RouteAttributes] === undefined) delete a[k as keyof RouteAttributes];
  if (a.asPath) {
    // a copy of exact length: the decoder pushes segments, and a pushed-to array keeps room for 17
    const path = (a.asPath = a.asPath.slice());
    for (let i = 0; i < path.length; i++) {
      Object.freeze(path[i]!.asns);
      Object.freeze(path[i]);
    }
    Object.freeze(path);
  }
  if (a.communities) Object.freeze(a.communities);
  if (a.clusterList) Object.freeze(a.clusterList);
  if (a.extCommunities) Object.freeze(a.extCommunities);
  if (a.largeCommunities) {
    for (let i = 0; i < a.largeCommunities.length; i++) Object.freeze(a.largeCommunities[i]);
    Object.freeze(a.largeCommunities);
  }
  if (a.aggregator) Object.freeze(a.aggregator);
  if (a.unknown) {
    for (let i = 0; i < a.unknown.length; i++) Object.freeze(a.unknown[i]);
    Object.freeze(a.unknown);
  }
  return Object.freeze(a);
}
