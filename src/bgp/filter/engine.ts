// The BGPFilter engine, pure: a peer's ordered filters compiled once into rule tables, then a route
// (prefix + attributes + where it came from) in, a decision (which filter, which rule, Accept/Reject)
// and the modified attributes out.
//
// Semantics (Calico's, as its confd writes them into BIRD functions):
//   - the filters of BGPPeer.filters are tried in order; inside a filter the rules are tried in order
//     and the first rule whose every condition holds decides (Accept or Reject) — no later rule or
//     filter is looked at; a route no rule matches is accepted (the default);
//   - cidr + matchOperator: In = inside the cidr (or equal), Equal = exactly the cidr; prefixLength
//     {min, max} narrows both to those lengths (min defaults to the cidr's length, max to 32/128);
//     NotIn / NotEqual are the negation of the whole In / Equal test (prefixLength included);
//   - source RemotePeers: the route was learned from a BGP peer (always true on import);
//   - interface: shell glob (`*`, `?`) on the route's outgoing interface; a route without one never matches;
//   - peerType eBGP/iBGP: the session the filter runs on; communities: the route carries that value;
//     asPathPrefix: the AS_PATH begins with these AS numbers; priority: the route's priority equals it;
//   - operations (Accept only): addCommunity, prependASPath, setPriority, in the order listed.
// Speed: the speaker interns attribute sets, so `residual()` first keeps only the rules whose
// attribute conditions hold for one set (computed once per set), and `match()` then checks only the
// prefix and interface per prefix, and an IPv4 prefix only against the rules that can match its first
// octet — a 50-rule filter of other ranges costs a table lookup per prefix.
import { parseCidr } from '../../common/ip.js';
import { AS_SEQUENCE, type LargeCommunity } from '../codec/types.js';
import type { RouteAttributes } from '../rib/attrs.js';
import type { FilterAction, FilterDecision, FilterDirection, FilterRule, MatchOperator, NamedFilter } from './types.js';

export type Afi = 1 | 2;

/** A standard community as its 32-bit value, or a large one. */
export type Community = { kind: 'standard'; value: number } | { kind: 'large'; value: LargeCommunity };

/** "65000:100" → standard, "65000:10:20" → large; undefined when malformed or out of range. */
export function parseCommunity(text: string): Community | undefined {
  const m = /^(\d{1,10}):(\d{1,10})(?::(\d{1,10}))?$/.exec(text.trim());
  if (!m) return undefined;
  const a = Number(m[1]),
    b = Number(m[2]);
  if (m[3] === undefined) {
    if (a > 0xffff || b > 0xffff) return undefined;
    return { kind: 'standard', value: ((a << 16) | b) >>> 0 };
  }
  const c = Number(m[3]);
  if (a > 0xffffffff || b > 0xffffffff || c > 0xffffffff) return undefined;
  return { kind: 'large', value: { global: a, local1: b, local2: c } };
}

export function formatCommunity(c: Community): string {
  if (c.kind === 'standard') return `${c.value >>> 16}:${c.value & 0xffff}`;
  return `${c.value.global}:${c.value.local1}:${c.value.local2}`;
}

export class FilterCompileError extends Error {
  readonly code = 'EFILTER';
  constructor(
    readonly filter: string,
    readonly path: string,
    reason: string,
  ) {
    super(`BGPFilter "${filter}": ${path} ${reason}`);
    this.name = 'FilterCompileError';
  }
}

/** One rule, compiled. Prefix conditions (cidr, interface) are checked per prefix; the rest per attribute set. */
export interface CompiledRule {
  readonly filter: string;
  readonly index: number;
  readonly action: FilterAction;
  /** Prefix test: network words (1 for IPv4, 4 for IPv6), cidr length, allowed lengths, operator. */
  readonly net: Uint32Array | undefined;
  readonly cidrLen: number;
  /** IPv4: the cidr's netmask and network as unsigned numbers (the per-prefix hot path). */
  readonly mask4: number;
  readonly net4: number;
  readonly minLen: number;
  readonly maxLen: number;
  readonly op: MatchOperator;
  readonly iface: RegExp | undefined;
  readonly remoteOnly: boolean;
  readonly peerType: 'eBGP' | 'iBGP' | undefined;
  readonly community: Community | undefined;
  readonly asPathPrefix: readonly number[] | undefined;
  readonly priority: number | undefined;
  readonly ops: readonly CompiledOp[];
  /** true when this rule needs the prefix or interface (else it matches every prefix of a set it passed). */
  readonly perPrefix: boolean;
}

export type CompiledOp =
  | { kind: 'community'; community: Community }
  | { kind: 'prepend'; asns: readonly number[] }
  | { kind: 'priority'; value: number };

/** What the per-set conditions look at. */
export interface RouteContext {
  attrs: Readonly<RouteAttributes>;
  /** Learned from a BGP peer (false: originated here). */
  fromPeer: boolean;
  /** The session the filter runs on is eBGP. */
  ebgpPeer: boolean;
}

/** A prefix as the engine reads it: the address as 32-bit words (1 for IPv4, 4 for IPv6) + length. */
export interface RoutePrefix {
  afi: Afi;
  words: ArrayLike<number>;
  len: number;
  /** Outgoing interface of the route, when it has one. */
  iface?: string | undefined;
}

const globToRegExp = (glob: string): RegExp =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );

function compileRule(filter: string, list: string, index: number, r: FilterRule, afi: Afi): CompiledRule {
  const path = `spec.${list}[${index}]`;
  const bits = afi === 1 ? 32 : 128;
  let net: Uint32Array | undefined;
  let cidrLen = 0;
  if (r.cidr !== undefined && r.cidr !== '') {
    let c;
    try {
      c = parseCidr(r.cidr);
    } catch {
      throw new FilterCompileError(filter, `${path}.cidr`, `"${r.cidr}" is not a CIDR`);
    }
    if ((c.family === 4 ? 1 : 2) !== afi)
      throw new FilterCompileError(filter, `${path}.cidr`, `"${r.cidr}" is not an IPv${afi === 1 ? 4 : 6} CIDR`);
    cidrLen = c.prefixLen;
    net =
      afi === 1
        ? Uint32Array.of(Number(c.network))
        : Uint32Array.from([3, 2, 1, 0], (i) => Number((c.network >> BigInt(32 * i)) & 0xffffffffn));
  }
  const minLen = r.prefixLength?.min ?? cidrLen;
  const maxLen = r.prefixLength?.max ?? bits;
  let community: Community | undefined;
  if (r.communities?.values.length) {
    community = parseCommunity(r.communities.values[0]!);
    if (!community)
      throw new FilterCompileError(filter, `${path}.communities.values[0]`, `"${r.communities.values[0]}" is not a community`);
  }
  const ops: CompiledOp[] = [];
  for (const [i, o] of (r.operations ?? []).entries()) {
    if (o.addCommunity) {
      const c = parseCommunity(o.addCommunity.value);
      if (!c)
        throw new FilterCompileError(filter, `${path}.operations[${i}].addCommunity.value`, `"${o.addCommunity.value}" is not a community`);
      ops.push({ kind: 'community', community: c });
    } else if (o.prependASPath) ops.push({ kind: 'prepend', asns: o.prependASPath.prefix.slice() });
    else if (o.setPriority) ops.push({ kind: 'priority', value: o.setPriority.value });
  }
  const iface = r.interface ? globToRegExp(r.interface) : undefined;
  return {
    filter,
    index,
    action: r.action,
    net,
    cidrLen,
    minLen,
    maxLen,
    mask4: cidrLen === 0 ? 0 : (0xffffffff << (32 - Math.min(32, cidrLen))) >>> 0,
    net4: afi === 1 && net ? net[0]! : 0,
    op: r.matchOperator ?? 'In',
    iface,
    remoteOnly: r.source === 'RemotePeers',
    peerType: r.peerType,
    community,
    asPathPrefix: r.asPathPrefix?.length ? r.asPathPrefix.slice() : undefined,
    priority: r.priority,
    ops,
    perPrefix: net !== undefined || iface !== undefined,
  };
}

const LISTS = {
  import: { 1: 'importV4', 2: 'importV6' },
  export: { 1: 'exportV4', 2: 'exportV6' },
} as const;

/** A peer's filters (BGPPeer.filters, in order) compiled: one rule table per direction and family. */
export class FilterChain {
  private readonly tables: Record<FilterDirection, Record<Afi, CompiledRule[]>>;
  /** Residuals by the rules they keep (their indices in the table). */
  private readonly residuals: Record<FilterDirection, Record<Afi, Map<string, Residual>>> = {
    import: { 1: new Map(), 2: new Map() },
    export: { 1: new Map(), 2: new Map() },
  };
  /** Filter names in order (for display and change detection). */
  readonly names: readonly string[];

  constructor(filters: readonly NamedFilter[]) {
    this.names = filters.map((f) => f.name);
    const t = {
      import: { 1: [] as CompiledRule[], 2: [] as CompiledRule[] },
      export: { 1: [] as CompiledRule[], 2: [] as CompiledRule[] },
    };
    for (const f of filters) {
      for (const dir of ['import', 'export'] as const) {
        for (const afi of [1, 2] as const) {
          const list = LISTS[dir][afi];
          (f.spec[list] ?? []).forEach((r, i) => t[dir][afi].push(compileRule(f.name, list, i, r, afi)));
        }
      }
    }
    this.tables = t;
  }

  static readonly EMPTY = new FilterChain([]);

  rules(dir: FilterDirection, afi: Afi): readonly CompiledRule[] {
    return this.tables[dir][afi];
  }

  /** No rule at all in this direction and family: every route is accepted unchanged. */
  isEmpty(dir: FilterDirection, afi: Afi): boolean {
    return this.tables[dir][afi].length === 0;
  }

  /** The rules that can still match a route with these attributes, in order (see Residual). */
  residual(dir: FilterDirection, afi: Afi, ctx: RouteContext): Residual {
    const table = this.tables[dir][afi];
    const out: CompiledRule[] = [];
    let key = '';
    for (let i = 0; i < table.length; i++) {
      const r = table[i]!;
      if (!attrConditionsHold(r, ctx)) continue;
      out.push(r);
      key += `${i},`;
      if (!r.perPrefix) break; // matches every prefix: nothing after it can be reached
    }
    // Attribute sets that leave the same rules share one Residual (and its octet index): a feed has a
    // set per few UPDATEs, the rules left differ only by their attribute conditions.
    const shared = this.residuals[dir][afi];
    let res = shared.get(key);
    if (res === undefined) {
      if (shared.size >= SHARED_RESIDUALS_MAX) shared.clear();
      shared.set(key, (res = new Residual(out)));
    }
    return res;
  }

  /** Decide one route outright (tests, `tabbyctl bgp routes`, the export path for single prefixes). */
  evaluate(dir: FilterDirection, prefix: RoutePrefix, ctx: RouteContext): { decision: FilterDecision; attrs: RouteAttributes | null } {
    const res = this.residual(dir, prefix.afi, ctx);
    const i = res.match(prefix);
    if (i < 0) return { decision: { action: 'Accept' }, attrs: ctx.attrs as RouteAttributes };
    const r = res.rules[i]!;
    const decision: FilterDecision = { action: r.action, filter: r.filter, rule: r.index };
    return { decision, attrs: r.action === 'Accept' ? applyOperations(ctx.attrs, r) : null };
  }
}

/** Distinct residuals a chain keeps per direction and family (as many rule subsets are rare). */
const SHARED_RESIDUALS_MAX = 1024;

/** Rules of a residual from which match4 indexes by first octet (below it a plain walk is as fast). */
export const INDEX_MIN_RULES = 8;

/** The rules of a chain left for one attribute set; `match()` walks them per prefix. */
export class Residual {
  /** IPv4: per first octet of the address, the indices of the rules that can match there, in order. */
  private byOctet: (Uint16Array | undefined)[] | undefined;

  constructor(readonly rules: readonly CompiledRule[]) {}

  /** Index of the deciding rule in `rules`, or -1 (no rule matched: the default, Accept). */
  match(p: RoutePrefix): number {
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!r.perPrefix || prefixConditionsHold(r, p)) return i;
    }
    return -1;
  }

  /** IPv4 fast path: the address as an unsigned 32-bit number (no interface). With many rules only those
   *  that can match the address's first octet are tested (a prefix list of other ranges costs nothing),
   *  as BIRD tests a prefix set through a trie rather than entry by entry. */
  match4(addr: number, len: number): number {
    const rules = this.rules;
    if (rules.length < INDEX_MIN_RULES) {
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!;
        if (!r.perPrefix) return i;
        if (r.iface !== undefined) continue;
        if (prefixTest4(r, addr, len)) return i;
      }
      return -1;
    }
    const octet = addr >>> 24;
    const byOctet = (this.byOctet ??= new Array<Uint16Array | undefined>(256));
    const list = byOctet[octet] ?? (byOctet[octet] = candidates4(rules, octet));
    for (let j = 0; j < list.length; j++) {
      const i = list[j]!;
      const r = rules[i]!;
      if (!r.perPrefix || prefixTest4(r, addr, len)) return i;
    }
    return -1;
  }
}

/** The rules (indices, in order) an IPv4 address with this first octet can match without an interface:
 *  an In/Equal rule of a /8 or longer only inside its own octet; NotIn, NotEqual, shorter cidrs and
 *  rules without a cidr anywhere; interface rules never (the fast path has no interface). */
function candidates4(rules: readonly CompiledRule[], octet: number): Uint16Array {
  const out: number[] = [];
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (!r.perPrefix) {
      out.push(i);
      break;
    }
    if (r.iface !== undefined) continue;
    const positive = r.op === 'In' || r.op === 'Equal';
    if (positive && r.net !== undefined && r.cidrLen >= 8 && r.net4 >>> 24 !== octet) continue;
    out.push(i);
  }
  return Uint16Array.from(out);
}

function attrConditionsHold(r: CompiledRule, ctx: RouteContext): boolean {
  if (r.remoteOnly && !ctx.fromPeer) return false;
  if (r.peerType !== undefined && (r.peerType === 'eBGP') !== ctx.ebgpPeer) return false;
  const a = ctx.attrs;
  if (r.community) {
    const c = r.community;
    if (c.kind === 'standard') {
      if (!a.communities?.includes(c.value)) return false;
    } else if (!a.largeCommunities?.some((x) => x.global === c.value.global && x.local1 === c.value.local1 && x.local2 === c.value.local2))
      return false;
  }
  if (r.asPathPrefix && !asPathStartsWith(a, r.asPathPrefix)) return false;
  if (r.priority !== undefined && a.priority !== r.priority) return false;
  return true;
}

/** The AS_PATH, read as its sequence of AS numbers, begins with `prefix` (BIRD's `[= a b * =]`). */
function asPathStartsWith(a: Readonly<RouteAttributes>, prefix: readonly number[]): boolean {
  let i = 0;
  for (const seg of a.asPath ?? []) {
    if (seg.type !== AS_SEQUENCE) return false;
    for (const asn of seg.asns) {
      if (asn !== prefix[i]) return false;
      if (++i === prefix.length) return true;
    }
  }
  return false;
}

function prefixTest4(r: CompiledRule, addr: number, len: number): boolean {
  if (r.net === undefined) return true;
  const inLen = len >= r.minLen && len <= r.maxLen;
  let hit: boolean;
  if (r.op === 'Equal' || r.op === 'NotEqual') hit = len === r.cidrLen && addr >>> 0 === r.net4 && inLen;
  else hit = len >= r.cidrLen && (addr & r.mask4) >>> 0 === r.net4 && inLen;
  return r.op === 'NotIn' || r.op === 'NotEqual' ? !hit : hit;
}

function prefixConditionsHold(r: CompiledRule, p: RoutePrefix): boolean {
  if (r.iface !== undefined && (p.iface === undefined || !r.iface.test(p.iface))) return false;
  if (r.net === undefined) return true;
  if (p.afi === 1) return prefixTest4(r, p.words[0]!, p.len);
  const inLen = p.len >= r.minLen && p.len <= r.maxLen;
  let same = true;
  const exact = r.op === 'Equal' || r.op === 'NotEqual';
  if (exact ? p.len !== r.cidrLen : p.len < r.cidrLen) same = false;
  for (let w = 0; same && w < 4; w++) {
    const bits = Math.max(0, Math.min(32, r.cidrLen - 32 * w));
    if (bits === 0) break;
    const mask = bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    if ((p.words[w]! & mask) >>> 0 !== r.net[w]) same = false;
  }
  const hit = same && inLen;
  return r.op === 'NotIn' || r.op === 'NotEqual' ? !hit : hit;
}

/** The attributes after an Accept rule's operations (the same object when it has none). */
export function applyOperations(attrs: Readonly<RouteAttributes>, r: CompiledRule): RouteAttributes {
  if (r.ops.length === 0) return attrs as RouteAttributes;
  const out: RouteAttributes = { ...attrs };
  for (const op of r.ops) {
    if (op.kind === 'community') {
      const c = op.community;
      if (c.kind === 'standard') {
        const cur = out.communities ?? [];
        if (!cur.includes(c.value)) out.communities = [...cur, c.value];
      } else {
        const cur = out.largeCommunities ?? [];
        const v = c.value;
        if (!cur.some((x) => x.global === v.global && x.local1 === v.local1 && x.local2 === v.local2))
          out.largeCommunities = [...cur, { ...v }];
      }
    } else if (op.kind === 'prepend') {
      const segs = (out.asPath ?? []).map((s) => ({ type: s.type, asns: s.asns.slice() }));
      const first = segs[0];
      if (first && first.type === AS_SEQUENCE && first.asns.length + op.asns.length <= 255) first.asns.unshift(...op.asns);
      else segs.unshift({ type: AS_SEQUENCE, asns: op.asns.slice() });
      out.asPath = segs;
    } else {
      out.priority = op.value;
    }
  }
  return out;
}

/** "10.0.0.0/24" as a RoutePrefix. */
export function routePrefixOf(cidr: string, iface?: string): RoutePrefix {
  const c = parseCidr(cidr);
  const words = c.family === 4 ? [Number(c.network)] : [3, 2, 1, 0].map((i) => Number((c.network >> BigInt(32 * i)) & 0xffffffffn));
  return { afi: c.family === 4 ? 1 : 2, words, len: c.prefixLen, ...(iface ? { iface } : {}) };
}

/** Text of a decision: `my-filter importV4[2] Reject`, or `default Accept`. */
export function describeDecision(d: FilterDecision, dir: FilterDirection, afi: Afi): string {
  if (d.filter === undefined) return `default ${d.action}`;
  return `${d.filter} ${LISTS[dir][afi]}[${d.rule}] ${d.action}`;
}
