// The BGP decision process (RFC 4271 §9.1.2), pure: a list of candidate paths for one prefix in,
// the best one, the reason it won, and the equal-cost (multipath) set out.
//
// The process is a chain of small steps run in order. Each step keeps only the candidates that are
// best by that one criterion; the first step that leaves a single candidate is the reason recorded.
// Elimination (rather than a pairwise sort) is what §9.1.2.2 specifies, and it matters for MED:
// MED only compares paths from the same neighbouring AS, which is not a total order.
//
// Steps (in order):
//   local          locally originated paths beat learned ones (like BIRD's static > BGP preference)
//   local-pref     highest LOCAL_PREF (§9.1.1; a missing one counts as 100)
//   as-path        shortest AS_PATH (§9.1.2.2 a; AS_SET counts 1, confederation segments 0)
//   origin         lowest ORIGIN (IGP < EGP < INCOMPLETE) (§9.1.2.2 b)
//   med            lowest MED among paths with the same neighbouring AS (§9.1.2.2 c; missing = 0)
//   ebgp           paths from eBGP peers over iBGP peers (§9.1.2.2 d)
//   router-id      lowest BGP Identifier, ORIGINATOR_ID standing in for it when set (§9.1.2.2 f, RFC 4456 §9)
//   cluster-list   shortest CLUSTER_LIST (RFC 4456 §9)
//   peer-address   lowest peer address (§9.1.2.2 g)
// (The IGP-cost step §9.1.2.2 e is skipped: tabby does not resolve next hops recursively.)
//
// Multipath (ECMP): every path that survives the chain up to and including `ebgp` is equal-cost;
// those with distinct next hops form the multipath set (best first).
import type { Path } from './path.js';

export type DecisionReason =
  | 'only-path'
  | 'local'
  | 'local-pref'
  | 'as-path'
  | 'origin'
  | 'med'
  | 'ebgp'
  | 'router-id'
  | 'cluster-list'
  | 'peer-address'
  | 'equal';

export interface DecisionOptions {
  /** Compare MED between paths from different neighbouring ASes too (BIRD `med metric`, Cisco always-compare-med). */
  alwaysCompareMed?: boolean;
  /** Build the multipath set. */
  multipath?: boolean;
  /** Maximum paths in the multipath set (default 16). */
  maxPaths?: number;
}

export interface Decision {
  best: Path | undefined;
  reason: DecisionReason;
  /** Equal-cost paths with distinct next hops, best first; [best] without multipath; [] without a best. */
  multipath: Path[];
}

/** One step: narrows the candidates (never to zero). */
interface Step {
  readonly name: DecisionReason;
  readonly select: (paths: Path[], opts: DecisionOptions) => Path[];
}

/** Keep the candidates with the maximum (or minimum) of a numeric key. */
function keepBy(paths: Path[], key: (p: Path) => number | bigint, lowest: boolean): Path[] {
  let bestKey = key(paths[0]!);
  for (let i = 1; i < paths.length; i++) {
    const k = key(paths[i]!);
    if (lowest ? k < bestKey : k > bestKey) bestKey = k;
  }
  const out: Path[] = [];
  for (const p of paths) if (key(p) === bestKey) out.push(p);
  return out;
}

const DEFAULT_LOCAL_PREF = 100;

export const localPrefOf = (p: Path): number => p.attrs.localPref ?? DEFAULT_LOCAL_PREF;
export const medOf = (p: Path): number => p.attrs.med ?? 0;

/** §9.1.2.2 c: remove a path if another from the same neighbouring AS has a lower MED. */
function selectMed(paths: Path[], opts: DecisionOptions): Path[] {
  if (opts.alwaysCompareMed) return keepBy(paths, medOf, true);
  const minByAs = new Map<number, number>();
  for (const p of paths) {
    const as = p.attrs.neighborAs;
    const m = medOf(p);
    const cur = minByAs.get(as);
    if (cur === undefined || m < cur) minByAs.set(as, m);
  }
  return paths.filter((p) => medOf(p) === minByAs.get(p.attrs.neighborAs));
}

export const DECISION_STEPS: readonly Step[] = [
  { name: 'local', select: (ps) => keepBy(ps, (p) => (p.source.local ? 1 : 0), false) },
  { name: 'local-pref', select: (ps) => keepBy(ps, localPrefOf, false) },
  { name: 'as-path', select: (ps) => keepBy(ps, (p) => p.attrs.asPathLength, true) },
  { name: 'origin', select: (ps) => keepBy(ps, (p) => p.attrs.origin, true) },
  { name: 'med', select: selectMed },
  { name: 'ebgp', select: (ps) => keepBy(ps, (p) => (p.source.ebgp ? 1 : 0), false) },
  {
    name: 'router-id',
    select: (ps) => keepBy(ps, (p) => p.attrs.originatorId ?? p.source.routerId, true),
  },
  { name: 'cluster-list', select: (ps) => keepBy(ps, (p) => p.attrs.clusterListLength, true) },
  { name: 'peer-address', select: (ps) => keepBy(ps, (p) => p.source.addressKey, true) },
];

const EBGP_STEP_INDEX = DECISION_STEPS.findIndex((s) => s.name === 'ebgp');

/** Run the decision process over the candidate paths of one prefix. */
export function decide(paths: readonly Path[], opts: DecisionOptions = {}): Decision {
  if (paths.length === 0) return { best: undefined, reason: 'only-path', multipath: [] };
  if (paths.length === 1) return { best: paths[0], reason: 'only-path', multipath: [paths[0]!] };
  let cands = paths.slice();
  let reason: DecisionReason = 'equal';
  let equalCost: Path[] = cands;
  for (let i = 0; i < DECISION_STEPS.length; i++) {
    const step = DECISION_STEPS[i]!;
    const next = step.select(cands, opts);
    if (next.length < cands.length && next.length === 1 && reason === 'equal') reason = step.name;
    cands = next;
    if (i === EBGP_STEP_INDEX) equalCost = cands;
    if (cands.length === 1) {
      if (i < EBGP_STEP_INDEX) equalCost = cands;
      break;
    }
  }
  const best = cands[0]!;
  if (!opts.multipath) return { best, reason, multipath: [best] };
  const max = opts.maxPaths ?? 16;
  const multipath: Path[] = [best];
  const seen = new Set<string>([best.attrs.nextHop]);
  // Order the equal-cost set by the remaining tie-breakers so the result is deterministic.
  const rest = equalCost.filter((p) => p !== best).sort((a, b) => comparePaths(a, b, opts));
  for (const p of rest) {
    if (multipath.length >= max) break;
    if (seen.has(p.attrs.nextHop)) continue;
    seen.add(p.attrs.nextHop);
    multipath.push(p);
  }
  return { best, reason, multipath };
}

/** Pairwise: negative when a is preferred, positive when b is, 0 when equal. */
export function comparePaths(a: Path, b: Path, opts: DecisionOptions = {}): number {
  const d = decide([a, b], opts);
  if (d.reason === 'equal') return 0;
  return d.best === a ? -1 : 1;
}

/** Why `a` beat `b` (or 'equal'). */
export function whyPreferred(a: Path, b: Path, opts: DecisionOptions = {}): DecisionReason {
  return decide([a, b], opts).reason;
}
