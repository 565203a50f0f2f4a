// One peer's BGPFilters inside the speaker: the compiled chain plus the caches that make it cheap on
// the RIB's interned attribute sets, and the import-rejected routes (kept so `received` counts and
// `tabbyctl bgp routes --received` can say which rule rejected what).
//   import: per (attribute set, family) the residual rules, then per prefix one match; an Accept with
//           operations yields a second interned set (cached per set and rule);
//   export: per (Loc-RIB attribute set, source, family) the residual rules, then per prefix one match;
//           the attributes after the operations go through the protocol's export rules (policy.ts)
//           once per (set, source, family, rule) — Calico/BIRD order: filter first, then eBGP prepend.
import { AttrSet, type AttrTable } from '../rib/attrs.js';
import type { Path } from '../rib/path.js';
import { PrefixTable, BUCKET_V6, type PrefixKey } from '../rib/prefix-table.js';
import type { RouteAttributes } from '../rib/attrs.js';
import { FilterChain, applyOperations, type Afi, type CompiledRule, type Residual, type RoutePrefix } from './engine.js';
import type { NamedFilter } from './types.js';

export interface RejectedRoute {
  /** The attributes as received (before any filter). */
  attrs: AttrSet;
  rule: CompiledRule;
}

const CACHE_MAX = 65536;

/** The prefix (bucket, key) as the engine reads it. */
export function routePrefixAt(b: number, k: PrefixKey, iface?: string): RoutePrefix {
  if (b !== BUCKET_V6) return { afi: 1, words: [(k as number) >>> 0], len: b, ...(iface ? { iface } : {}) };
  const s = k as string;
  const slash = s.indexOf('/');
  return { afi: 2, words: s.slice(0, slash).split(',').map(Number), len: Number(s.slice(slash + 1)), ...(iface ? { iface } : {}) };
}

export class PeerFilters {
  chain: FilterChain = FilterChain.EMPTY;
  private key = '[]';
  private importRes: [Map<AttrSet, Residual>, Map<AttrSet, Residual>] = [new Map(), new Map()];
  private importOut = new Map<AttrSet, Map<CompiledRule, AttrSet>>();
  private exportRes = new Map<number, Residual>();
  private exportOut = new Map<number, (AttrSet | null)[]>();
  /** Import-rejected prefixes of the current session. */
  readonly rejected = new PrefixTable<RejectedRoute>();
  /** The rule that decided the last importDecide/exportDecide call (undefined: default Accept). */
  lastRule: CompiledRule | undefined;

  constructor(
    private readonly table: AttrTable,
    private ebgp: boolean,
  ) {}

  /** Install a new filter list; says which directions changed (caches of a changed direction are dropped). */
  set(filters: readonly NamedFilter[], ebgp: boolean): { import: boolean; export: boolean } {
    const key = JSON.stringify(filters);
    const typeChanged = ebgp !== this.ebgp;
    this.ebgp = ebgp;
    if (key === this.key && !typeChanged) return { import: false, export: false };
    const before = this.chain;
    this.chain = new FilterChain(filters);
    this.key = key;
    const same = (dir: 'import' | 'export') =>
      !typeChanged &&
      ([1, 2] as const).every(
        (afi) => JSON.stringify(ruleShapes(before.rules(dir, afi))) === JSON.stringify(ruleShapes(this.chain.rules(dir, afi))),
      );
    const changed = { import: !same('import'), export: !same('export') };
    // Cached residuals hold compiled rules of the old chain: always start again.
    this.importRes = [new Map(), new Map()];
    this.importOut.clear();
    this.clearExport();
    return changed;
  }

  hasImport(afi: Afi): boolean {
    return !this.chain.isEmpty('import', afi);
  }
  hasExport(afi: Afi): boolean {
    return !this.chain.isEmpty('export', afi);
  }

  /** The rules left for an attribute set on import ([] = accept unchanged, no per-prefix work). */
  /** Some import rule of this family names an interface (the speaker then looks up the next hop's). */
  importNamesInterface(afi: Afi): boolean {
    return this.chain.rules('import', afi).some((r) => r.iface !== undefined);
  }

  importResidual(set: AttrSet, afi: Afi): Residual {
    const m = this.importRes[afi - 1]!;
    let r = m.get(set);
    if (r === undefined) {
      if (m.size >= CACHE_MAX) m.clear();
      r = this.chain.residual('import', afi, { attrs: set.attrs, fromPeer: true, ebgpPeer: this.ebgp });
      m.set(set, r);
    }
    return r;
  }

  /** Import one prefix: the set to install, or null (rejected; lastRule says by which rule). */
  importDecide(res: Residual, set: AttrSet, b: number, k: PrefixKey, iface?: string): AttrSet | null {
    const i = b !== BUCKET_V6 && iface === undefined ? res.match4((k as number) >>> 0, b) : res.match(routePrefixAt(b, k, iface));
    if (i < 0) {
      this.lastRule = undefined;
      return set;
    }
    const rule = res.rules[i]!;
    this.lastRule = rule;
    if (rule.action === 'Reject') return null;
    if (rule.ops.length === 0) return set;
    let byRule = this.importOut.get(set);
    if (byRule === undefined) {
      if (this.importOut.size >= CACHE_MAX) this.importOut.clear();
      this.importOut.set(set, (byRule = new Map()));
    }
    let out = byRule.get(rule);
    if (out === undefined) byRule.set(rule, (out = this.table.intern(applyOperations(set.attrs, rule))));
    return out;
  }

  noteRejected(b: number, k: PrefixKey, set: AttrSet, rule: CompiledRule): void {
    this.rejected.set(b, k, { attrs: set, rule });
  }

  /**
   * Export one prefix whose protocol checks passed: the set to put in the Adj-RIB-Out, or null.
   * `protocol` applies policy.ts's export rules to the (filtered) attributes and interns them.
   */
  exportDecide(
    best: Path,
    afi: Afi,
    b: number,
    k: PrefixKey,
    iface: string | undefined,
    protocol: (a: Readonly<RouteAttributes>) => AttrSet | null,
  ): AttrSet | null {
    const cacheKey = best.attrs.id * 4096 + best.source.id * 2 + (afi - 1);
    let res = this.exportRes.get(cacheKey);
    if (res === undefined) {
      if (this.exportRes.size >= CACHE_MAX) this.clearExport();
      res = this.chain.residual('export', afi, { attrs: best.attrs.attrs, fromPeer: !best.source.local, ebgpPeer: this.ebgp });
      this.exportRes.set(cacheKey, res);
    }
    const i = b !== BUCKET_V6 && iface === undefined ? res.match4((k as number) >>> 0, b) : res.match(routePrefixAt(b, k, iface));
    const rule = i < 0 ? undefined : res.rules[i];
    this.lastRule = rule;
    if (rule?.action === 'Reject') return null;
    let outs = this.exportOut.get(cacheKey);
    if (outs === undefined) this.exportOut.set(cacheKey, (outs = []));
    const slot = i + 1;
    let out = outs[slot];
    if (out === undefined) outs[slot] = out = protocol(rule ? applyOperations(best.attrs.attrs, rule) : best.attrs.attrs);
    return out;
  }

  /** Forget export results (the peer's protocol settings changed). */
  clearExport(): void {
    this.exportRes.clear();
    this.exportOut.clear();
  }

  /** New session: nothing received yet. */
  resetSession(): void {
    this.rejected.clear();
    this.importRes = [new Map(), new Map()];
    this.importOut.clear();
    this.clearExport();
  }
}

function ruleShapes(rules: readonly CompiledRule[]): unknown[] {
  return rules.map((r) => ({ ...r, net: r.net ? [...r.net] : undefined, iface: r.iface?.source }));
}

export { AttrSet };
