// The policy model every part of src/policy shares (pure): an endpoint's effective labels (profile
// labelsToApply under its own labels), its namespace's labels (the kns.<ns> profile's pcns.* labels),
// which policies select it for a direction and in what order (Calico: order ascending, unordered last,
// then by name), and which endpoints a rule's selector / namespaceSelector picks out.
import { parseSelector, type Labels, type Selector, type SelectorNode } from '../datastore/selector.js';
import {
  NAMESPACE_LABEL,
  NAMESPACE_LABEL_PREFIX,
  ORCHESTRATOR_LABEL,
  namespaceProfileName,
  type EntityRule,
  type PolicyRule,
  type PolicyType,
} from '../datastore/policy-types.js';
import type { GlobalNetworkPolicy, NetworkPolicy, Profile, WorkloadEndpoint } from '../datastore/resources.js';

export interface PolicyInputs {
  endpoints: readonly WorkloadEndpoint[];
  policies: readonly NetworkPolicy[];
  globalPolicies: readonly GlobalNetworkPolicy[];
  profiles: readonly Profile[];
}

/** One policy, kind-agnostic, as the compiler orders and renders it. */
export interface PolicyView {
  kind: 'NetworkPolicy' | 'GlobalNetworkPolicy';
  /** "ns/name" for a NetworkPolicy, "name" for a GlobalNetworkPolicy */
  id: string;
  namespace?: string;
  order: number;
  selector: Selector;
  namespaceSelector?: Selector;
  types: readonly PolicyType[];
  ingress: readonly PolicyRule[];
  egress: readonly PolicyRule[];
}

export interface EndpointView {
  /** store name: "ns/name" */
  id: string;
  name: string;
  namespace: string;
  node: string;
  interfaceName: string;
  labels: Labels;
  nsLabels: Labels;
  ipNetworks: readonly string[];
  profiles: readonly string[];
  ports: readonly { name: string; protocol: string; port: number }[];
}

const selectorCache = new Map<string, Selector>();
/** Parsed once per distinct text (selectors repeat across policies). Validation already accepted them. */
export function sel(text: string): Selector {
  let s = selectorCache.get(text);
  if (!s) {
    s = parseSelector(text);
    if (selectorCache.size > 50_000) selectorCache.clear();
    selectorCache.set(text, s);
  }
  return s;
}

const NONE: readonly PolicyRule[] = Object.freeze([]);

/** One NetworkPolicy or GlobalNetworkPolicy as the compiler sees it. */
export function policyView(p: NetworkPolicy | GlobalNetworkPolicy): PolicyView {
  if (p.kind === 'NetworkPolicy') {
    const ns = p.metadata.namespace ?? 'default';
    return {
      kind: 'NetworkPolicy',
      id: `${ns}/${p.metadata.name}`,
      namespace: ns,
      order: p.spec.order ?? Infinity,
      selector: sel(p.spec.selector || 'all()'),
      types: p.spec.types,
      ingress: p.spec.ingress ?? NONE,
      egress: p.spec.egress ?? NONE,
    };
  }
  return {
    kind: 'GlobalNetworkPolicy',
    id: p.metadata.name,
    order: p.spec.order ?? Infinity,
    selector: sel(p.spec.selector || 'all()'),
    ...(p.spec.namespaceSelector ? { namespaceSelector: sel(p.spec.namespaceSelector) } : {}),
    types: p.spec.types,
    ingress: p.spec.ingress ?? NONE,
    egress: p.spec.egress ?? NONE,
  };
}

/** Calico's enforcement order: by order (unordered last), then by name (a NetworkPolicy's name without
 *  its namespace), then by id to keep the sort total. */
export const policyOrder = (a: PolicyView, b: PolicyView): number =>
  (a.order === b.order ? 0 : a.order < b.order ? -1 : 1) || cmp(nameOf(a), nameOf(b)) || cmp(a.id, b.id);

export function policyViews(inp: Pick<PolicyInputs, 'policies' | 'globalPolicies'>): PolicyView[] {
  return [...inp.policies, ...inp.globalPolicies].map(policyView).sort(policyOrder);
}

const nameOf = (p: PolicyView) => (p.namespace ? p.id.slice(p.namespace.length + 1) : p.id);
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function endpointViews(inp: Pick<PolicyInputs, 'endpoints' | 'profiles'>): EndpointView[] {
  const profiles = new Map(inp.profiles.map((p) => [p.metadata.name, p]));
  return inp.endpoints.map((w) => endpointView(w, profiles));
}

/** One endpoint's view: labels from its profiles' labelsToApply under its own, its namespace's labels. */
export function endpointView(w: WorkloadEndpoint, profiles: ReadonlyMap<string, Profile>): EndpointView {
  const ns = w.metadata.namespace ?? 'default';
  const inherited: Record<string, string> = {};
  for (const pn of w.spec.profiles) Object.assign(inherited, profiles.get(pn)?.spec.labelsToApply ?? {});
  const labels: Record<string, string> = {
    ...inherited,
    ...(w.metadata.labels ?? {}),
    [NAMESPACE_LABEL]: ns,
    [ORCHESTRATOR_LABEL]: w.spec.orchestrator,
  };
  const nsProfile = profiles.get(namespaceProfileName(ns));
  return {
    id: `${ns}/${w.metadata.name}`,
    name: w.metadata.name,
    namespace: ns,
    node: w.spec.node,
    interfaceName: w.spec.interfaceName,
    labels,
    nsLabels: namespaceLabels(ns, nsProfile?.spec.labelsToApply),
    ipNetworks: w.spec.ipNetworks,
    profiles: w.spec.profiles,
    ports: (w.spec.ports ?? []).map((p) => ({ name: p.name, protocol: String(p.protocol), port: p.port })),
  };
}

/** A namespace's labels: the pcns.* labels of its kns profile, plus the two names every namespace has. */
export function namespaceLabels(ns: string, labelsToApply: Record<string, string> | undefined): Labels {
  const out: Record<string, string> = { 'projectcalico.org/name': ns, 'kubernetes.io/metadata.name': ns };
  for (const [k, v] of Object.entries(labelsToApply ?? {}))
    if (k.startsWith(NAMESPACE_LABEL_PREFIX)) out[k.slice(NAMESPACE_LABEL_PREFIX.length)] = v;
  return out;
}

/** Does policy p apply to endpoint e in direction dir? */
export function selects(p: PolicyView, e: EndpointView, dir: PolicyType): boolean {
  if (!p.types.includes(dir)) return false;
  if (p.namespace !== undefined && p.namespace !== e.namespace) return false;
  if (p.namespaceSelector && !p.namespaceSelector.matches(e.nsLabels)) return false;
  return p.selector.matches(e.labels);
}

/** The policies applying to e for dir, in enforcement order. */
export function policiesFor(all: readonly PolicyView[], e: EndpointView, dir: PolicyType): PolicyView[] {
  return all.filter((p) => selects(p, e, dir));
}

/** A label a selector requires (`k == "v"`, or one inside a top-level &&), for indexing; undefined if none. */
export function requiredLabel(n: SelectorNode): string | undefined {
  if (n.op === '==') return `${n.key}=${n.value}`;
  if (n.op === '&&')
    for (const x of n.exprs) {
      const r = requiredLabel(x);
      if (r) return r;
    }
  return undefined;
}

/** policiesFor over an index: a policy whose selector requires k == v is only tried on endpoints with
 *  that label (1,000 policies × 200 endpoints is 200k evaluations without it). Same result, same order. */
export function policyIndex(all: readonly PolicyView[]): (e: EndpointView, dir: PolicyType) => PolicyView[] {
  const byLabel = new Map<string, number[]>();
  const rest: number[] = [];
  all.forEach((p, i) => {
    const k = requiredLabel(p.selector.ast);
    if (k === undefined) rest.push(i);
    else {
      const l = byLabel.get(k);
      if (l) l.push(i);
      else byLabel.set(k, [i]);
    }
  });
  return (e, dir) => {
    const idx = [...rest];
    for (const [k, v] of Object.entries(e.labels)) {
      const l = byLabel.get(`${k}=${v}`);
      if (l) idx.push(...l);
    }
    idx.sort((a, b) => a - b);
    const out: PolicyView[] = [];
    for (const i of idx) {
      const p = all[i]!;
      if (selects(p, e, dir)) out.push(p);
    }
    return out;
  };
}

/** The peer set a rule side names: selector / namespaceSelector, scoped to the policy's namespace. */
export interface PeerScope {
  selector: Selector;
  namespaceSelector?: Selector;
  /** only endpoints of this namespace (a NetworkPolicy's rule without namespaceSelector) */
  namespace?: string;
}

/** The scope of a rule side's positive selector, or undefined when the side names no endpoints. */
export function peerScope(side: EntityRule | undefined, policyNamespace: string | undefined): PeerScope | undefined {
  if (!side || (side.selector === undefined && side.namespaceSelector === undefined)) return undefined;
  const s: PeerScope = { selector: sel(side.selector ?? 'all()') };
  if (side.namespaceSelector !== undefined) s.namespaceSelector = sel(side.namespaceSelector);
  else if (policyNamespace !== undefined) s.namespace = policyNamespace;
  return s;
}

const selectorTexts = new WeakMap<Selector, string>();
/** A selector's canonical text, formatted once per parsed selector (sel() shares them). */
const textOf = (x: Selector): string => {
  let t = selectorTexts.get(x);
  if (t === undefined) selectorTexts.set(x, (t = x.toString()));
  return t;
};

export function scopeKey(s: PeerScope): string {
  return `sel:${textOf(s.selector)}|ns:${s.namespace ?? '*'}|nss:${s.namespaceSelector ? textOf(s.namespaceSelector) : '-'}`;
}

export function inScope(s: PeerScope, e: EndpointView): boolean {
  if (s.namespace !== undefined && e.namespace !== s.namespace) return false;
  if (s.namespaceSelector && !s.namespaceSelector.matches(e.nsLabels)) return false;
  return s.selector.matches(e.labels);
}
