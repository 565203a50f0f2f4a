// The incremental policy compile (pure: no I/O, no clock): one node's ruleset kept current as resources
// change, at a cost that follows what changed rather than the size of the cluster.
//   put(resource) / remove(resource)  record one change (an endpoint's set memberships are updated at
//                                     once; local endpoints whose policies may change are marked)
//   commit()                          plans the marked local endpoints again (selected policies via a
//                                     label index, their chains rendered once per policy version)
//   takeDelta()                       what changed in `ruleset` since the last call, item by item
// Chains are content-named (compile.ts) and reference-counted from the interface maps down: an endpoint
// chain is kept while a map entry points to it, a policy chain while an endpoint chain jumps to it, a set
// while a chain names it. The state mutates itself and its ruleset (copying 1,000 policies per change
// would cost what this avoids); a fresh state fed the same resources yields the same ruleset (tested).
import type { PolicyType } from '../datastore/policy-types.js';
import { namespaceProfileName } from '../datastore/policy-types.js';
import type { GlobalNetworkPolicy, NetworkPolicy, Profile, WorkloadEndpoint } from '../datastore/resources.js';
import {
  elementsOf,
  endpointChain,
  policyChainWhat,
  profileChainWhat,
  renderRuleChain,
  sameList,
  setOf,
  type EndpointPlan,
  type NftChain,
  type NftSet,
  type Ruleset,
  type RulesetDelta,
  type SetSpec,
} from './compile.js';
import { endpointView, policyOrder, policyView, requiredLabel, selects, type EndpointView, type PolicyView } from './model.js';
import { parseCidr } from '../common/ip.js';
import type { Family } from './rules.js';

export type PolicyResource = WorkloadEndpoint | NetworkPolicy | GlobalNetworkPolicy | Profile;

interface ChainDef {
  chain: NftChain;
  kids: ChainDef[];
  sets: SetSpec[];
}

interface LocalEndpoint {
  ifn: string;
  Ingress: ChainDef;
  Egress: ChainDef;
  /** keys of the policies selecting it, per direction */
  sel: Record<PolicyType, Set<string>>;
}

const DIRS = ['Ingress', 'Egress'] as const;
const epId = (w: WorkloadEndpoint) => `${w.metadata.namespace ?? 'default'}/${w.metadata.name}`;
const policyKey = (p: PolicyView) => `${p.kind}/${p.id}`;
const familiesOf = (v: EndpointView | undefined): Family[] =>
  v ? [...new Set(v.ipNetworks.map((n) => parseCidr(n).family as Family))] : [];

export class PolicyState {
  readonly ruleset: Ruleset = { sets: new Map(), chains: new Map(), toWl: new Map(), fromWl: new Map(), endpoints: new Map() };
  private readonly weps = new Map<string, WorkloadEndpoint>();
  private readonly views = new Map<string, EndpointView>();
  private readonly profiles = new Map<string, Profile>();
  private readonly policies = new Map<string, PolicyView>();
  /** policy keys by a label their selector requires ("k=v"); the rest are tried on every endpoint */
  private readonly byLabel = new Map<string, Set<string>>();
  private readonly unindexed = new Set<string>();
  private readonly famCount = new Map<Family, number>([
    [4, 0],
    [6, 0],
  ]);
  private families: ReadonlySet<Family> = new Set();
  private readonly local = new Map<string, LocalEndpoint>();
  /** endpoint ids to plan again at commit */
  private readonly dirty = new Set<string>();
  /** rendered rule chains by "<policy or profile key>|<dir>", valid while source and families are the same objects */
  private readonly rendered = new Map<string, { src: unknown; fam: ReadonlySet<Family>; def: ChainDef }>();
  private readonly chainRefs = new Map<string, number>();
  private readonly chainDefs = new Map<string, ChainDef>();
  private readonly setRefs = new Map<string, number>();
  /** live sets: the spec and the elements each member endpoint gives */
  private readonly liveSets = new Map<string, { spec: SetSpec; contrib: Map<string, string[]> }>();
  private readonly before = {
    sets: new Map<string, NftSet | undefined>(),
    chains: new Map<string, NftChain | undefined>(),
    toWl: new Map<string, string | undefined>(),
    fromWl: new Map<string, string | undefined>(),
  };

  constructor(readonly node: string) {}

  get localEndpoints(): number {
    return this.local.size;
  }
  get policyCount(): number {
    return this.policies.size;
  }

  put(r: PolicyResource): void {
    this.change(r, true);
  }
  remove(r: PolicyResource): void {
    this.change(r, false);
  }

  private change(r: PolicyResource, present: boolean): void {
    switch (r.kind) {
      case 'WorkloadEndpoint': {
        const id = epId(r);
        if (present) this.weps.set(id, r);
        else this.weps.delete(id);
        this.setView(id, present ? endpointView(r, this.profiles) : undefined);
        return;
      }
      case 'Profile':
        return this.putProfile(r.metadata.name, present ? r : undefined);
      default: {
        const v = policyView(r);
        return this.putPolicy(policyKey(v), present ? v : undefined);
      }
    }
  }

  private setView(id: string, v: EndpointView | undefined): void {
    const old = this.views.get(id);
    if (v) this.views.set(id, v);
    else this.views.delete(id);
    for (const f of familiesOf(old)) this.famCount.set(f, this.famCount.get(f)! - 1);
    for (const f of familiesOf(v)) this.famCount.set(f, this.famCount.get(f)! + 1);
    for (const [name, s] of this.liveSets) {
      const c = v ? elementsOf(s.spec, v) : [];
      const prev = s.contrib.get(id) ?? [];
      if (sameList(prev, c)) continue;
      if (c.length) s.contrib.set(id, c);
      else s.contrib.delete(id);
      this.refreshSet(name);
    }
    if (old?.node === this.node || v?.node === this.node) this.dirty.add(id);
  }

  private putPolicy(key: string, p: PolicyView | undefined): void {
    const old = this.policies.get(key);
    if (old) this.indexPolicy(key, old, false);
    if (p) {
      this.policies.set(key, p);
      this.indexPolicy(key, p, true);
    } else {
      this.policies.delete(key);
      for (const d of DIRS) this.rendered.delete(`${key}|${d}`);
    }
    // the local endpoints it selected or selects now (its chain name or their order may change)
    for (const [id, l] of this.local) {
      if (l.sel.Ingress.has(key) || l.sel.Egress.has(key)) this.dirty.add(id);
      else if (p) {
        const v = this.views.get(id); // undefined: removed in this burst (already marked)
        if (v && (selects(p, v, 'Ingress') || selects(p, v, 'Egress'))) this.dirty.add(id);
      }
    }
  }

  private indexPolicy(key: string, p: PolicyView, add: boolean): void {
    const k = requiredLabel(p.selector.ast);
    if (k === undefined) {
      if (add) this.unindexed.add(key);
      else this.unindexed.delete(key);
      return;
    }
    let s = this.byLabel.get(k);
    if (add) {
      if (!s) this.byLabel.set(k, (s = new Set()));
      s.add(key);
    } else if (s) {
      s.delete(key);
      if (!s.size) this.byLabel.delete(k);
    }
  }

  private putProfile(name: string, pr: Profile | undefined): void {
    const old = this.profiles.get(name);
    if (pr) this.profiles.set(name, pr);
    else {
      this.profiles.delete(name);
      for (const d of DIRS) this.rendered.delete(`Profile/${name}|${d}`);
    }
    const labelsChanged = JSON.stringify(old?.spec.labelsToApply ?? {}) !== JSON.stringify(pr?.spec.labelsToApply ?? {});
    for (const [id, w] of this.weps) {
      const uses = w.spec.profiles.includes(name);
      if (labelsChanged && (uses || namespaceProfileName(w.metadata.namespace ?? 'default') === name))
        this.setView(id, endpointView(w, this.profiles));
      else if (uses && this.local.has(id)) this.dirty.add(id);
    }
  }

  /** Plan every marked local endpoint again. */
  commit(): void {
    const fam = new Set(([4, 6] as const).filter((f) => this.famCount.get(f)! > 0));
    if (fam.size !== this.families.size || [...fam].some((f) => !this.families.has(f))) {
      // a first endpoint of a family (or the last one gone): rules of that family render differently
      this.families = fam;
      for (const id of this.local.keys()) this.dirty.add(id);
    }
    for (const id of this.dirty) this.plan(id);
    this.dirty.clear();
  }

  /** The policies selecting v, per direction, in enforcement order. */
  private select(v: EndpointView): Record<PolicyType, PolicyView[]> {
    const keys = new Set(this.unindexed);
    for (const [k, val] of Object.entries(v.labels)) for (const p of this.byLabel.get(`${k}=${val}`) ?? []) keys.add(p);
    const out: Record<PolicyType, PolicyView[]> = { Ingress: [], Egress: [] };
    for (const k of keys) {
      const p = this.policies.get(k)!;
      for (const dir of DIRS) if (selects(p, v, dir)) out[dir].push(p);
    }
    out.Ingress.sort(policyOrder);
    out.Egress.sort(policyOrder);
    return out;
  }

  private ruleChain(memo: string, src: unknown, render: () => ReturnType<typeof renderRuleChain>): ChainDef {
    const m = this.rendered.get(memo);
    if (m && m.src === src && m.fam === this.families) return m.def;
    const r = render();
    const def = this.chainDefs.get(r.chain.name) ?? { chain: r.chain, kids: [], sets: r.sets };
    this.rendered.set(memo, { src, fam: this.families, def });
    return def;
  }

  private plan(id: string): void {
    const v = this.views.get(id);
    const cur = this.local.get(id);
    const isLocal = v !== undefined && v.node === this.node;
    if (cur && (!isLocal || cur.ifn !== v.interfaceName)) {
      this.setMap('toWl', cur.ifn, undefined);
      this.setMap('fromWl', cur.ifn, undefined);
      this.ruleset.endpoints.delete(cur.ifn);
    }
    if (!isLocal) {
      if (cur) {
        for (const d of DIRS) this.unref(cur[d].chain.name);
        this.local.delete(id);
      }
      return;
    }
    const plan: EndpointPlan = {
      id: v.id,
      interfaceName: v.interfaceName,
      ingress: { policies: [], profiles: [] },
      egress: { policies: [], profiles: [] },
    };
    const sel = { Ingress: new Set<string>(), Egress: new Set<string>() };
    const defs = {} as Record<PolicyType, ChainDef>;
    const selected = this.select(v);
    for (const dir of DIRS) {
      const dplan = dir === 'Ingress' ? plan.ingress : plan.egress;
      const kids: ChainDef[] = [];
      for (const p of selected[dir]) {
        const key = policyKey(p);
        sel[dir].add(key);
        dplan.policies.push(key);
        const what = policyChainWhat(p, dir);
        kids.push(
          this.ruleChain(`${key}|${dir}`, p, () =>
            renderRuleChain(dir === 'Ingress' ? 'pi' : 'po', what, dir === 'Ingress' ? p.ingress : p.egress, p.namespace, this.families),
          ),
        );
      }
      const nPolicies = kids.length;
      for (const pn of v.profiles) {
        const pro = this.profiles.get(pn);
        dplan.profiles.push(pro ? pn : `${pn} (missing)`);
        if (!pro) continue;
        const what = profileChainWhat(pn, dir);
        kids.push(
          this.ruleChain(`Profile/${pn}|${dir}`, pro, () =>
            renderRuleChain(
              dir === 'Ingress' ? 'pri' : 'pro',
              what,
              (dir === 'Ingress' ? pro.spec.ingress : pro.spec.egress) ?? [],
              undefined,
              this.families,
            ),
          ),
        );
      }
      const names = kids.map((k) => k.chain.name);
      const chain = endpointChain(dir, names.slice(0, nPolicies), names.slice(nPolicies));
      defs[dir] = this.chainDefs.get(chain.name) ?? { chain, kids, sets: [] };
      this.ref(defs[dir]); // before the old one goes: chains both use stay in place
    }
    if (cur) for (const d of DIRS) this.unref(cur[d].chain.name);
    this.setMap('toWl', v.interfaceName, defs.Ingress.chain.name);
    this.setMap('fromWl', v.interfaceName, defs.Egress.chain.name);
    this.ruleset.endpoints.set(v.interfaceName, plan);
    this.local.set(id, { ifn: v.interfaceName, Ingress: defs.Ingress, Egress: defs.Egress, sel });
  }

  private setMap(map: 'toWl' | 'fromWl', key: string, value: string | undefined): void {
    const m = this.ruleset[map];
    if (m.get(key) === value) return;
    if (!this.before[map].has(key)) this.before[map].set(key, m.get(key));
    if (value === undefined) m.delete(key);
    else m.set(key, value);
  }

  private ref(def: ChainDef): void {
    const name = def.chain.name;
    const n = this.chainRefs.get(name) ?? 0;
    this.chainRefs.set(name, n + 1);
    if (n > 0) return;
    this.chainDefs.set(name, def);
    this.touchChain(name);
    this.ruleset.chains.set(name, def.chain);
    for (const k of def.kids) this.ref(k);
    for (const s of def.sets) this.refSet(s);
  }

  private unref(name: string): void {
    const n = this.chainRefs.get(name)!;
    if (n > 1) {
      this.chainRefs.set(name, n - 1);
      return;
    }
    const def = this.chainDefs.get(name)!;
    this.chainRefs.delete(name);
    this.chainDefs.delete(name);
    this.touchChain(name);
    this.ruleset.chains.delete(name);
    for (const k of def.kids) this.unref(k.chain.name);
    for (const s of def.sets) this.unrefSet(s.name);
  }

  private refSet(spec: SetSpec): void {
    const n = this.setRefs.get(spec.name) ?? 0;
    this.setRefs.set(spec.name, n + 1);
    if (n > 0) return;
    const contrib = new Map<string, string[]>();
    for (const [id, v] of this.views) {
      const c = elementsOf(spec, v);
      if (c.length) contrib.set(id, c);
    }
    this.liveSets.set(spec.name, { spec, contrib });
    this.refreshSet(spec.name);
  }

  private unrefSet(name: string): void {
    const n = this.setRefs.get(name)!;
    if (n > 1) {
      this.setRefs.set(name, n - 1);
      return;
    }
    this.setRefs.delete(name);
    this.liveSets.delete(name);
    if (!this.before.sets.has(name)) this.before.sets.set(name, this.ruleset.sets.get(name));
    this.ruleset.sets.delete(name);
  }

  private refreshSet(name: string): void {
    const s = this.liveSets.get(name)!;
    const next = setOf(s.spec, [...s.contrib.values()].flat());
    const cur = this.ruleset.sets.get(name);
    if (cur && sameList(cur.elements, next.elements)) return;
    if (!this.before.sets.has(name)) this.before.sets.set(name, cur);
    this.ruleset.sets.set(name, next);
  }

  private touchChain(name: string): void {
    if (!this.before.chains.has(name)) this.before.chains.set(name, this.ruleset.chains.get(name));
  }

  /** What changed in `ruleset` since the last call (commit first). */
  takeDelta(): RulesetDelta {
    const rs = this.ruleset;
    const d: RulesetDelta = { sets: [], chains: [], toWl: [], fromWl: [] };
    for (const [name, before] of this.before.sets) {
      const after = rs.sets.get(name);
      if (before === after || (before && after && sameList(before.elements, after.elements))) continue;
      d.sets.push({ name, ...(before ? { before } : {}), ...(after ? { after } : {}) });
    }
    for (const [name, before] of this.before.chains) {
      const after = rs.chains.get(name);
      if (before === after || (before && after && before.comment === after.comment && sameList(before.rules, after.rules))) continue;
      d.chains.push({ name, ...(before ? { before } : {}), ...(after ? { after } : {}) });
    }
    for (const map of ['toWl', 'fromWl'] as const)
      for (const [key, before] of this.before[map]) {
        const after = rs[map].get(key);
        if (before !== after) d[map].push({ key, ...(before ? { before } : {}), ...(after ? { after } : {}) });
      }
    for (const m of Object.values(this.before)) m.clear();
    return d;
  }
}
