// Paths as the RIBs hold them: a source (which peer, or local origination) plus an interned
// attribute set (attrs.ts) plus a stale mark (RFC 4724 graceful restart).
// Paths are interned too: one Path object per (source, attribute set, session generation), shared
// by every prefix that source sent with those attributes — a 1M-prefix table from one peer holds
// ~50k Path objects, not 1M. A source finds its current Path for a set through the set (internPath). `refs` counts the prefixes holding the path (kept by the Loc-RIB).
// A new session of the peer starts a new generation, so marking a dropped peer's paths stale
// touches only its few Path objects, and a re-announced prefix gets a fresh (non-stale) Path.
import { parseIpv4Number } from '../../common/ip.js';
import type { AttrSet } from './attrs.js';

/** Where a path came from. One object per peer (and one for local origination), shared by its paths. */
export interface PathSource {
  /** Small integer unique per source; 0 = locally originated. */
  readonly id: number;
  /** Peer address as text; '' for a local path. */
  readonly address: string;
  /** Peer address as a number for the "lowest peer address" tie-breaker (RFC 4271 §9.1.2.2 g). */
  readonly addressKey: bigint;
  /** true for an external peer (different AS). */
  readonly ebgp: boolean;
  /** The peer's BGP Identifier (from its OPEN), as an unsigned 32-bit number. */
  routerId: number;
  /** The peer's AS. */
  readonly asn: number;
  /** The peer is a route-reflector client of this speaker (RFC 4456). */
  readonly rrClient: boolean;
  /** Locally originated (originate()). */
  readonly local: boolean;
  /** Prefixes that currently hold a path from this source (maintained by the Loc-RIB). */
  routes: number;
}

export class Path {
  /** Prefixes holding this path (maintained by the Loc-RIB). */
  refs = 0;
  /** Its id in the Loc-RIB's table while prefixes hold it (slot-table.ts), else 0. */
  id = 0;
  /** Still its source's current path for its attribute set (may get new prefixes); then it is in
   *  the set's chain (AttrSet.paths, linked by nextOfSet) and its peer's `paths`. */
  interned = false;
  nextOfSet: Path | undefined = undefined;
  constructor(
    readonly source: PathSource,
    readonly attrs: AttrSet,
    /** RFC 4724 §4.2: kept across a peer's restart until its End-of-RIB; still used for best path. */
    public stale = false,
  ) {}
}

/** Local origination (one per process is fine: it only ever counts routes). */
export const LOCAL_SOURCE: PathSource = {
  id: 0,
  address: '',
  addressKey: 0n,
  ebgp: false,
  routerId: 0,
  asn: 0,
  rrClient: false,
  local: true,
  routes: 0,
};

/** A PathSource for a peer. */
export function peerSource(opts: {
  id: number;
  address: string;
  ebgp: boolean;
  routerId?: number;
  asn: number;
  rrClient?: boolean;
}): PathSource {
  return {
    id: opts.id,
    address: opts.address,
    addressKey: addressKeyOf(opts.address),
    ebgp: opts.ebgp,
    routerId: opts.routerId ?? 0,
    asn: opts.asn,
    rrClient: opts.rrClient ?? false,
    local: false,
    routes: 0,
  };
}

/** Order-preserving numeric key of an IPv4 or IPv6 address (IPv4 sorts before IPv6). */
export function addressKeyOf(address: string): bigint {
  if (address === '') return 0n;
  if (!address.includes(':')) return BigInt(parseIpv4Number(address));
  // IPv6: expand '::' and fold 16-bit groups; offset by 2^32 so every v6 address sorts after v4.
  let text = address;
  const pct = text.indexOf('%');
  if (pct >= 0) text = text.slice(0, pct);
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array<string>(8 - h.length - r.length).fill('0'), ...r];
  let v = 0n;
  for (const g of groups) {
    if (g.includes('.')) {
      v = (v << 32n) | BigInt(parseIpv4Number(g));
      continue;
    }
    v = (v << 16n) | BigInt(parseInt(g, 16) || 0);
  }
  return v + (1n << 32n);
}

/** The source's current-generation Path for an attribute set, or undefined. */
export function currentPath(set: AttrSet, source: PathSource): Path | undefined {
  for (let x = set.paths; x !== undefined; x = x.nextOfSet) if (x.source === source) return x;
  return undefined;
}

/** Make `path` its source's current one for its set (the caller checked currentPath() first). */
export function internPath(path: Path): void {
  path.interned = true;
  path.nextOfSet = path.attrs.paths;
  path.attrs.paths = path;
}

/** The path is no longer current (released, or its generation ended): off its set's chain. */
export function uninternPath(path: Path): void {
  if (!path.interned) return;
  path.interned = false;
  const set = path.attrs;
  if (set.paths === path) set.paths = path.nextOfSet;
  else
    for (let x = set.paths; x !== undefined; x = x.nextOfSet)
      if (x.nextOfSet === path) {
        x.nextOfSet = path.nextOfSet;
        break;
      }
  path.nextOfSet = undefined;
}
