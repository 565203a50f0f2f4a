// The policy compiler (pure): endpoints + policies + profiles → the ruleset of one node.
//   sets    s4-/s6-<hash>: addresses of the endpoints a rule selector picks (cluster-wide);
//           np4-/np6-<hash>: address . protocol . port of named ports
//   chains  pi-/po-<hash>: one per policy and direction (shared by every endpoint it selects);
//           pri-/pro-<hash>: one per profile and direction; tw-/fw-<hash>: to-workload (ingress) and
//           from-workload (egress) chain of an endpoint, shared by endpoints with the same policies
//   maps    to-wl / from-wl: interface name → jump to that endpoint's chain
// Chain names are hashes of their content (comment and rules): a chain of a given name always holds the
// same rules, so a restarting agent can keep the chains the kernel already has (see render.ts).
// Felix's per-endpoint, per-direction order: if any policy selects the endpoint, its policies in order
// (Allow/Deny end it, Pass skips to the profiles), then default deny; otherwise its profiles (a
// missing profile allows nothing). Only chains and sets that a local endpoint reaches are emitted.
// The compile is incremental (state.ts); compile() is a fresh state fed every resource.
import { createHash } from 'node:crypto';
import { parseCidr, formatCidr, cidrContainsCidr } from '../common/ip.js';
import type { PolicyRule, PolicyType } from '../datastore/policy-types.js';
import { inScope, scopeKey, sel, type EndpointView, type PeerScope, type PolicyInputs, type PolicyView } from './model.js';
import { MARK_ACCEPT, MARK_BOTH, MARK_PASS, hex, renderRule, type Family, type SetNamer } from './rules.js';
import { PolicyState } from './state.js';

export interface NftSet {
  name: string;
  family: Family;
  kind: 'addr' | 'named-port';
  /** sorted, canonical element text */
  elements: string[];
  comment: string;
}

export interface NftChain {
  name: string;
  comment: string;
  rules: string[];
}

export interface EndpointPlan {
  id: string;
  interfaceName: string;
  ingress: { policies: string[]; profiles: string[] };
  egress: { policies: string[]; profiles: string[] };
}

/** Everything the node's nft table holds apart from its fixed base chains. */
export interface Ruleset {
  sets: Map<string, NftSet>;
  /** non-base chains (render.ts orders them so that a chain is defined before a rule jumps to it) */
  chains: Map<string, NftChain>;
  toWl: Map<string, string>;
  fromWl: Map<string, string>;
  endpoints: Map<string, EndpointPlan>;
}

/** What changed between two rulesets, item by item (absent before = new, absent after = gone). */
export interface RulesetDelta {
  sets: { name: string; before?: NftSet; after?: NftSet }[];
  chains: { name: string; before?: NftChain; after?: NftChain }[];
  toWl: { key: string; before?: string; after?: string }[];
  fromWl: { key: string; before?: string; after?: string }[];
}

/** The delta between two whole rulesets (a restart's relist, tests); the state tracks its own. */
export function deltaOf(prev: Ruleset, next: Ruleset): RulesetDelta {
  const pairs = <V>(a: Map<string, V>, b: Map<string, V>, same: (x: V, y: V) => boolean) => {
    const out: { name: string; before?: V; after?: V }[] = [];
    for (const [k, v] of b) {
      const o = a.get(k);
      if (o === undefined) out.push({ name: k, after: v });
      else if (!same(o, v)) out.push({ name: k, before: o, after: v });
    }
    for (const [k, v] of a) if (!b.has(k)) out.push({ name: k, before: v });
    return out;
  };
  const keyed = (xs: { name: string; before?: string; after?: string }[]) => xs.map(({ name, ...r }) => ({ key: name, ...r }));
  return {
    sets: pairs(prev.sets, next.sets, (x, y) => x === y || sameList(x.elements, y.elements)),
    chains: pairs(prev.chains, next.chains, (x, y) => x === y || (x.comment === y.comment && sameList(x.rules, y.rules))),
    toWl: keyed(pairs(prev.toWl, next.toWl, (x, y) => x === y)),
    fromWl: keyed(pairs(prev.fromWl, next.fromWl, (x, y) => x === y)),
  };
}

export const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((r, i) => r === b[i]);

const hashes = new Map<string, string>();
/** Short stable hash for names. `v2`: names of this scheme never equal an earlier version's. */
export const h = (s: string): string => {
  let v = hashes.get(s);
  if (v === undefined) {
    v = createHash('sha1').update('v2\n').update(s).digest('hex').slice(0, 10);
    if (hashes.size > 100_000) hashes.clear();
    hashes.set(s, v);
  }
  return v;
};
export const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Address list without duplicates or prefixes inside another (an interval set refuses overlaps). */
export function collapse(cidrs: Iterable<string>): string[] {
  const parsed = [...new Set(cidrs)].map((c) => parseCidr(c)).sort((a, b) => a.prefixLen - b.prefixLen);
  const kept: typeof parsed = [];
  for (const c of parsed) if (!kept.some((k) => cidrContainsCidr(k, c))) kept.push(c);
  return kept
    .map((c) => {
      const t = formatCidr(c);
      return (c.family === 4 && c.prefixLen === 32) || (c.family === 6 && c.prefixLen === 128) ? t.split('/')[0]! : t;
    })
    .sort(cmp);
}

const PROTO_NAME: Record<string, string> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp', UDPLite: 'udplite' };

/** A set a rule names: its name, and how to tell its members and their elements. */
export type SetSpec =
  | { name: string; kind: 'addr'; scope: PeerScope; family: Family; key: string }
  | { name: string; kind: 'np'; scope: PeerScope; names: readonly string[]; family: Family; key: string };

export function addrSetSpec(scope: PeerScope, family: Family): SetSpec {
  const key = scopeKey(scope);
  return { name: `s${family}-${h(key)}`, kind: 'addr', scope, family, key };
}

export function namedPortSetSpec(scope: PeerScope | undefined, names: readonly string[], family: Family): SetSpec {
  const s = scope ?? { selector: sel('all()') };
  const sorted = [...names].sort();
  const key = `np:${sorted.join(',')}|${scopeKey(s)}`;
  return { name: `np${family}-${h(key)}`, kind: 'np', scope: s, names: sorted, family, key };
}

/** The elements endpoint e gives set `spec` (none when e is not in its scope). */
export function elementsOf(spec: SetSpec, e: EndpointView): string[] {
  if (!inScope(spec.scope, e)) return [];
  const out: string[] = [];
  for (const n of e.ipNetworks) {
    const c = parseCidr(n);
    if (c.family !== spec.family) continue;
    if (spec.kind === 'addr') {
      out.push(n);
      continue;
    }
    if (c.prefixLen !== (c.family === 4 ? 32 : 128)) continue;
    for (const p of e.ports)
      if (spec.names.includes(p.name) && PROTO_NAME[p.protocol])
        out.push(`${formatCidr(c).split('/')[0]} . ${PROTO_NAME[p.protocol]} . ${p.port}`);
  }
  return out;
}

/** The set's canonical element list from the elements of its members. */
export function setOf(spec: SetSpec, contributions: Iterable<string>): NftSet {
  const elements = spec.kind === 'addr' ? collapse(contributions) : [...new Set(contributions)].sort(cmp);
  return {
    name: spec.name,
    family: spec.family,
    kind: spec.kind === 'addr' ? 'addr' : 'named-port',
    elements,
    comment: spec.key.slice(0, 120),
  };
}

/** A rendered rule chain and the sets its rules name. */
export interface RenderedChain {
  chain: NftChain;
  sets: SetSpec[];
}

/** One policy's (or profile's) rules for one direction → a content-named chain. Rules for a family no
 *  endpoint has that need one of that family's (necessarily empty) sets are left out: they cannot match. */
export function renderRuleChain(
  prefix: string,
  what: string,
  rules: readonly PolicyRule[],
  ns: string | undefined,
  families: ReadonlySet<Family>,
): RenderedChain {
  const sets = new Map<string, SetSpec>();
  const namer: SetNamer = {
    addrSet: (scope, family) => {
      const s = addrSetSpec(scope, family);
      sets.set(s.name, s);
      return s.name;
    },
    namedPortSet: (scope, names, family) => {
      const s = namedPortSetSpec(scope, names, family);
      sets.set(s.name, s);
      return s.name;
    },
  };
  const out: string[] = [];
  // the chain's comment names the policy; a rule's says which rule it is (short: thousands of rules at scale)
  rules.forEach((r, i) => out.push(...renderRule(r, ns, namer, `rule ${i}`, `${what} rule ${i}`, families)));
  const used = [...sets.values()].filter((s) => out.some((r) => r.includes(`@${s.name} `) || r.endsWith(`@${s.name}`)));
  return { chain: { name: `${prefix}-${h(`${what}\n${out.join('\n')}`)}`, comment: what, rules: out }, sets: used };
}

export const policyChainWhat = (p: PolicyView, dir: PolicyType) => `${p.kind} ${p.id} ${dir.toLowerCase()}`;
export const profileChainWhat = (pn: string, dir: PolicyType) => `Profile ${pn} ${dir.toLowerCase()}`;

const CLEAR_MARKS = `meta mark set meta mark & ${hex(~MARK_BOTH >>> 0)}`;
const JUMP_POLICY = `meta mark & ${hex(MARK_BOTH)} == 0 jump `;
const JUMP_PROFILE = `meta mark & ${hex(MARK_ACCEPT)} == 0 jump `;
const RETURN_ACCEPTED = `meta mark & ${hex(MARK_ACCEPT)} != 0 return`;
const DEFAULT_DENY = `meta mark & ${hex(MARK_PASS)} == 0 drop comment "default deny: policies select this endpoint"`;

/** An endpoint's chain for one direction, from the chains of its policies (in order) and profiles. */
export function endpointChain(dir: PolicyType, policyChains: readonly string[], profileChains: readonly string[]): NftChain {
  const rules: string[] = [CLEAR_MARKS];
  for (const c of policyChains) rules.push(JUMP_POLICY + c);
  if (policyChains.length) rules.push(RETURN_ACCEPTED, DEFAULT_DENY);
  for (const c of profileChains) rules.push(JUMP_PROFILE + c);
  rules.push(RETURN_ACCEPTED, 'drop comment "no profile allowed it"');
  const comment = `${dir === 'Ingress' ? 'to' : 'from'} endpoints with ${policyChains.length} policies, ${profileChains.length} profiles`;
  return { name: `${dir === 'Ingress' ? 'tw' : 'fw'}-${h(`${comment}\n${rules.join('\n')}`)}`, comment, rules };
}

/** Compile the ruleset of node `node`. Endpoints of other nodes only feed the selector sets. */
export function compile(inp: PolicyInputs, node: string): Ruleset {
  const st = new PolicyState(node);
  for (const r of inp.profiles) st.put(r);
  for (const r of inp.endpoints) st.put(r);
  for (const r of inp.policies) st.put(r);
  for (const r of inp.globalPolicies) st.put(r);
  st.commit();
  return st.ruleset;
}
