// The policy compiler (pure): endpoints + policies + profiles → the ruleset of one node.
//   sets    s4-/s6-<hash>: addresses of the endpoints a rule selector picks (cluster-wide);
//           np4-/np6-<hash>: address . protocol . port of named ports
//   chains  pi-/po-<hash>: one per policy and direction (shared by every endpoint it selects);
//           pri-/pro-<hash>: one per profile and direction; tw-<if>/fw-<if>: per local endpoint,
//           to-workload (its ingress) and from-workload (its egress)
//   maps    to-wl / from-wl: interface name → jump to that endpoint's chain
// Felix's per-endpoint, per-direction order: if any policy selects the endpoint, its policies in order
// (Allow/Deny end it, Pass skips to the profiles), then default deny; otherwise its profiles (a
// missing profile allows nothing). Only chains and sets that a local endpoint reaches are emitted.
import { createHash } from 'node:crypto';
import { parseCidr, formatCidr, cidrContainsCidr } from '../common/ip.js';
import type { PolicyRule, PolicyType } from '../datastore/policy-types.js';
import {
  endpointViews,
  inScope,
  policyIndex,
  policyViews,
  scopeKey,
  sel,
  type EndpointView,
  type PeerScope,
  type PolicyInputs,
  type PolicyView,
} from './model.js';
import { MARK_ACCEPT, MARK_BOTH, MARK_PASS, hex, renderRule, type Family, type SetNamer } from './rules.js';
import type { Profile } from '../datastore/resources.js';

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
  /** non-base chains, in an order where a chain comes after every chain it jumps to */
  chains: Map<string, NftChain>;
  toWl: Map<string, string>;
  fromWl: Map<string, string>;
  endpoints: Map<string, EndpointPlan>;
}

const hashes = new Map<string, string>();
const h = (s: string): string => {
  let v = hashes.get(s);
  if (v === undefined) {
    v = createHash('sha1').update(s).digest('hex').slice(0, 12);
    if (hashes.size > 100_000) hashes.clear();
    hashes.set(s, v);
  }
  return v;
};
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

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

class SetBuilder implements SetNamer {
  readonly sets = new Map<string, NftSet>();
  constructor(private readonly all: readonly EndpointView[]) {}

  private readonly keys = new WeakMap<PeerScope, string>();
  private keyOf(scope: PeerScope): string {
    let k = this.keys.get(scope);
    if (k === undefined) {
      k = scopeKey(scope);
      this.keys.set(scope, k);
    }
    return k;
  }

  addrSet(scope: PeerScope, family: Family): string {
    const key = this.keyOf(scope);
    const name = `s${family}-${h(key)}`;
    if (!this.sets.has(name)) {
      const nets = this.all
        .filter((e) => inScope(scope, e))
        .flatMap((e) => e.ipNetworks)
        .filter((n) => parseCidr(n).family === family);
      this.sets.set(name, { name, family, kind: 'addr', elements: collapse(nets), comment: key.slice(0, 120) });
    }
    return name;
  }

  namedPortSet(scope: PeerScope | undefined, names: readonly string[], family: Family): string {
    const s = scope ?? { selector: sel('all()') };
    const key = `np:${[...names].sort().join(',')}|${scopeKey(s)}`;
    const name = `np${family}-${h(key)}`;
    if (!this.sets.has(name)) {
      const els = new Set<string>();
      for (const e of this.all) {
        if (!inScope(s, e)) continue;
        for (const p of e.ports) {
          if (!names.includes(p.name) || !PROTO_NAME[p.protocol]) continue;
          for (const n of e.ipNetworks) {
            const c = parseCidr(n);
            const full = c.family === 4 ? 32 : 128;
            if (c.family === family && c.prefixLen === full)
              els.add(`${formatCidr(c).split('/')[0]} . ${PROTO_NAME[p.protocol]} . ${p.port}`);
          }
        }
      }
      this.sets.set(name, { name, family, kind: 'named-port', elements: [...els].sort(cmp), comment: key.slice(0, 120) });
    }
    return name;
  }
}

const DIRS: readonly PolicyType[] = ['Ingress', 'Egress'];

type SetRequest =
  | { kind: 'addr'; scope: PeerScope; family: Family }
  | { kind: 'np'; scope: PeerScope | undefined; names: readonly string[]; family: Family };

/** Rendered rule chains kept between compiles (the engine holds one): a policy that did not change is
 *  not rendered again, only the sets it names are refilled. Keyed by chain name, checked by signature. */
export interface CompileCache {
  chains: Map<string, { rules: readonly PolicyRule[]; ns: string | undefined; chain: NftChain; sets: SetRequest[] }>;
}
export const newCompileCache = (): CompileCache => ({ chains: new Map() });

function ruleChain(
  name: string,
  comment: string,
  rules: readonly PolicyRule[],
  ns: string | undefined,
  sets: SetBuilder,
  what: string,
  cache: CompileCache | undefined,
): NftChain {
  // Unchanged resources keep their objects between compiles (the engine's maps), so identity is the check.
  const hit = cache?.chains.get(name);
  if (hit && hit.rules === rules && hit.ns === ns && hit.chain.comment === comment) {
    for (const r of hit.sets)
      if (r.kind === 'addr') sets.addrSet(r.scope, r.family);
      else sets.namedPortSet(r.scope, r.names, r.family);
    return hit.chain;
  }
  const requests: SetRequest[] = [];
  const recorder: SetNamer = {
    addrSet: (scope, family) => {
      requests.push({ kind: 'addr', scope, family });
      return sets.addrSet(scope, family);
    },
    namedPortSet: (scope, names, family) => {
      requests.push({ kind: 'np', scope, names, family });
      return sets.namedPortSet(scope, names, family);
    },
  };
  const out: string[] = [];
  // the chain's comment names the policy; a rule's says which rule it is (short: 17k rules at scale)
  rules.forEach((r, i) => out.push(...renderRule(r, ns, recorder, `rule ${i}`, `${what} rule ${i}`)));
  const chain = { name, comment, rules: out };
  cache?.chains.set(name, { rules, ns, chain, sets: requests });
  return chain;
}

/** Compile the ruleset of node `node`. Endpoints of other nodes only feed the selector sets. */
export function compile(inp: PolicyInputs, node: string, cache?: CompileCache): Ruleset {
  const all = endpointViews(inp);
  const local = all.filter((e) => e.node === node).sort((a, b) => cmp(a.interfaceName, b.interfaceName));
  const policies = policyViews(inp);
  const policiesFor = policyIndex(policies);
  const profiles = new Map<string, Profile>(inp.profiles.map((p) => [p.metadata.name, p]));
  const sets = new SetBuilder(all);
  const ruleChains = new Map<string, NftChain>();
  const epChains: NftChain[] = [];
  const toWl = new Map<string, string>();
  const fromWl = new Map<string, string>();
  const endpoints = new Map<string, EndpointPlan>();

  const names = new Map<PolicyView, string>();
  const policyChain = (p: PolicyView, dir: PolicyType): string => {
    const memo = names.get(p);
    if (memo && dir === 'Ingress') return memo;
    const name = `${dir === 'Ingress' ? 'pi' : 'po'}-${h(`${p.kind}/${p.id}`)}`;
    if (dir === 'Ingress') names.set(p, name);
    if (!ruleChains.has(name)) {
      const what = `${p.kind} ${p.id} ${dir.toLowerCase()}`;
      ruleChains.set(name, ruleChain(name, what, dir === 'Ingress' ? p.ingress : p.egress, p.namespace, sets, what, cache));
    }
    return name;
  };
  const profileChain = (pn: string, dir: PolicyType): string | undefined => {
    const pro = profiles.get(pn);
    if (!pro) return undefined;
    const name = `${dir === 'Ingress' ? 'pri' : 'pro'}-${h(`Profile/${pn}`)}`;
    if (!ruleChains.has(name)) {
      const what = `Profile ${pn} ${dir.toLowerCase()}`;
      ruleChains.set(
        name,
        ruleChain(name, what, (dir === 'Ingress' ? pro.spec.ingress : pro.spec.egress) ?? [], undefined, sets, what, cache),
      );
    }
    return name;
  };

  for (const e of local) {
    const plan: EndpointPlan = {
      id: e.id,
      interfaceName: e.interfaceName,
      ingress: { policies: [], profiles: [] },
      egress: { policies: [], profiles: [] },
    };
    for (const dir of DIRS) {
      const name = `${dir === 'Ingress' ? 'tw' : 'fw'}-${e.interfaceName}`;
      const rules: string[] = [`meta mark set meta mark & ${hex(~MARK_BOTH >>> 0)}`];
      const applied = policiesFor(e, dir);
      const dplan = dir === 'Ingress' ? plan.ingress : plan.egress;
      for (const p of applied) {
        rules.push(`meta mark & ${hex(MARK_BOTH)} == 0 jump ${policyChain(p, dir)}`);
        dplan.policies.push(`${p.kind}/${p.id}`);
      }
      if (applied.length) {
        rules.push(`meta mark & ${hex(MARK_ACCEPT)} != 0 return`);
        rules.push(`meta mark & ${hex(MARK_PASS)} == 0 drop comment "default deny: policies select ${e.id}"`);
      }
      for (const pn of e.profiles) {
        const c = profileChain(pn, dir);
        dplan.profiles.push(c ? pn : `${pn} (missing)`);
        if (c) rules.push(`meta mark & ${hex(MARK_ACCEPT)} == 0 jump ${c}`);
      }
      rules.push(`meta mark & ${hex(MARK_ACCEPT)} != 0 return`);
      rules.push(`drop comment "no profile allowed it: ${e.id}"`);
      epChains.push({ name, comment: `${dir === 'Ingress' ? 'to' : 'from'} endpoint ${e.id}`, rules });
      (dir === 'Ingress' ? toWl : fromWl).set(e.interfaceName, name);
    }
    endpoints.set(e.interfaceName, plan);
  }
  if (cache) for (const k of cache.chains.keys()) if (!ruleChains.has(k)) cache.chains.delete(k);
  const chains = new Map<string, NftChain>();
  for (const c of [...ruleChains.values()].sort((a, b) => cmp(a.name, b.name))) chains.set(c.name, c);
  for (const c of epChains) chains.set(c.name, c);
  return { sets: sets.sets, chains, toWl, fromWl, endpoints };
}
