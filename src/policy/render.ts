// Ruleset → nft script (pure). Three forms, each ONE transaction for `nft -f -`:
//   fullScript   create-if-missing, delete, define the whole table — a starting agent with no table to
//                adopt, so a previous run's rules stay enforced until the new ones replace them atomically;
//   deltaScript  only what changed (a delta from the incremental state): new sets/chains first, set elements, changed
//                chains flushed and refilled, map entries, then removals (nothing is deleted while a
//                rule still jumps to it, so the kernel accepts the whole transaction or none of it).
//   adoptScript  a restarting agent's first program when the table is there: keeps its chains.
// The table is `inet tabby-policy` (its own: the NAT table is replaced wholesale by its owner).
// Base chains: forward (pod↔pod, pod↔remote), input (pod→host: the pod's egress policy). Host→pod
// traffic (kubelet probes) leaves through output, which tabby does not filter: Calico's default.
import { deltaOf, type NftChain, type NftSet, type Ruleset, type RulesetDelta } from './compile.js';
import { MARK_ACCEPT, MARK_BOTH, hex } from './rules.js';

export const POLICY_TABLE = 'tabby-policy';
const T = `inet ${POLICY_TABLE}`;
const CLEAR = `meta mark set meta mark & ${hex(~MARK_BOTH >>> 0)}`;

/** Fixed base chains (they only reference the two maps). */
export const BASE_CHAINS: readonly NftChain[] = [
  {
    // An endpoint chain either drops or returns with the accept bit set: a cali packet without the bit
    // after the map lookup came from (or goes to) an interface with no endpoint — dropped, fail closed.
    name: 'forward',
    comment: 'workload traffic through this node',
    rules: [
      'iifname != "cali*" oifname != "cali*" accept',
      'ct state established,related accept',
      'ct state invalid drop',
      CLEAR,
      'iifname vmap @from-wl',
      `iifname "cali*" meta mark & ${hex(MARK_ACCEPT)} == 0 drop comment "from a cali interface with no endpoint"`,
      CLEAR,
      'oifname vmap @to-wl',
      `oifname "cali*" meta mark & ${hex(MARK_ACCEPT)} == 0 drop comment "to a cali interface with no endpoint"`,
      CLEAR,
    ],
  },
  {
    name: 'input',
    comment: 'workload traffic to this host',
    rules: [
      'iifname != "cali*" accept',
      'ct state established,related accept',
      'ct state invalid drop',
      'meta l4proto ipv6-icmp icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept',
      CLEAR,
      'iifname vmap @from-wl',
      `meta mark & ${hex(MARK_ACCEPT)} == 0 drop comment "from a cali interface with no endpoint"`,
      CLEAR,
    ],
  },
];
const HOOKS: Record<string, string> = {
  forward: 'type filter hook forward priority filter; policy accept;',
  input: 'type filter hook input priority filter; policy accept;',
};

const setType = (s: NftSet): string =>
  s.kind === 'addr'
    ? `type ${s.family === 4 ? 'ipv4_addr' : 'ipv6_addr'}; flags interval;`
    : `type ${s.family === 4 ? 'ipv4_addr' : 'ipv6_addr'} . inet_proto . inet_service;`;
const q = (s: string) => s.replace(/"/g, "'");

function setBlock(s: NftSet): string[] {
  return [
    `  set ${s.name} {`,
    `    ${setType(s)} comment "${q(s.comment)}";`,
    ...(s.elements.length ? [`    elements = { ${s.elements.join(', ')} }`] : []),
    '  }',
  ];
}

function mapElements(m: Map<string, string>): string {
  return [...m].map(([ifn, chain]) => `"${ifn}" : jump ${chain}`).join(', ');
}

/** Rule chains first, endpoint chains (which jump to them) after. */
function ordered(chains: Map<string, NftChain>): NftChain[] {
  const isEp = (c: NftChain) => c.name.startsWith('tw-') || c.name.startsWith('fw-');
  const all = [...chains.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return [...all.filter((c) => !isEp(c)), ...all.filter(isEp)];
}

/** The whole table, replacing whatever is there, in one transaction. null = no table at all. */
export function fullScript(rs: Ruleset | null): string {
  const out = [`table ${T}`, `delete table ${T}`];
  if (rs && (rs.toWl.size || rs.fromWl.size)) {
    out.push(`table ${T} {`);
    for (const s of rs.sets.values()) out.push(...setBlock(s));
    for (const c of ordered(rs.chains))
      out.push(`  chain ${c.name} {`, `    comment "${q(c.comment)}"`, ...c.rules.map((r) => `    ${r}`), '  }');
    out.push('  map to-wl {', '    type ifname : verdict;', ...(rs.toWl.size ? [`    elements = { ${mapElements(rs.toWl)} }`] : []), '  }');
    out.push(
      '  map from-wl {',
      '    type ifname : verdict;',
      ...(rs.fromWl.size ? [`    elements = { ${mapElements(rs.fromWl)} }`] : []),
      '  }',
    );
    for (const c of BASE_CHAINS) out.push(`  chain ${c.name} {`, `    ${HOOKS[c.name]}`, ...c.rules.map((r) => `    ${r}`), '  }');
    out.push('}');
  }
  return `${out.join('\n')}\n`;
}

export interface DiffStats {
  sets: number;
  elementsAdded: number;
  elementsRemoved: number;
  chains: number;
  mapEntries: number;
  deleted: number;
}

/** Commands that turn `prev` into `next` (both non-empty rulesets); '' when nothing changed. */
export function diffScript(prev: Ruleset, next: Ruleset): { script: string; stats: DiffStats } {
  return deltaScript(deltaOf(prev, next));
}

/** Commands that apply a delta (from the incremental state or deltaOf), in an order the kernel accepts
 *  as one transaction; '' when the delta is empty. */
export function deltaScript(d: RulesetDelta): { script: string; stats: DiffStats } {
  const out: string[] = [];
  const stats: DiffStats = { sets: 0, elementsAdded: 0, elementsRemoved: 0, chains: 0, mapEntries: 0, deleted: 0 };
  // 1. new sets (with elements), changed set membership
  for (const { after: s, before: old } of d.sets) {
    if (!s) continue;
    if (!old) {
      out.push(`add set ${T} ${s.name} { ${setType(s)} comment "${q(s.comment)}"; }`);
      stats.sets++;
      if (s.elements.length) {
        out.push(`add element ${T} ${s.name} { ${s.elements.join(', ')} }`);
        stats.elementsAdded += s.elements.length;
      }
      continue;
    }
    const had = new Set(old.elements);
    const has = new Set(s.elements);
    const gone = old.elements.filter((e) => !has.has(e));
    const added = s.elements.filter((e) => !had.has(e));
    if (gone.length) {
      out.push(`delete element ${T} ${s.name} { ${gone.join(', ')} }`);
      stats.elementsRemoved += gone.length;
    }
    if (added.length) {
      out.push(`add element ${T} ${s.name} { ${added.join(', ')} }`);
      stats.elementsAdded += added.length;
    }
  }
  // 2. new chains declared (empty) so that any rule may jump to them, then changed/new chains filled
  for (const { after: c, before } of d.chains) if (c && !before) out.push(`add chain ${T} ${c.name} { comment "${q(c.comment)}"; }`);
  for (const { after: c, before } of d.chains) {
    if (!c) continue;
    if (before) out.push(`flush chain ${T} ${c.name}`);
    for (const r of c.rules) out.push(`add rule ${T} ${c.name} ${r}`);
    stats.chains++;
  }
  // 3. map entries: changed and gone ones out, new and changed ones in
  for (const [mapName, entries] of [
    ['to-wl', d.toWl],
    ['from-wl', d.fromWl],
  ] as const) {
    const gone = entries.filter((e) => e.before !== undefined);
    if (gone.length) out.push(`delete element ${T} ${mapName} { ${gone.map((e) => `"${e.key}"`).join(', ')} }`);
    const added = new Map(entries.filter((e) => e.after !== undefined).map((e) => [e.key, e.after!]));
    if (added.size) out.push(`add element ${T} ${mapName} { ${mapElements(added)} }`);
    stats.mapEntries += new Set(entries.map((e) => e.key)).size;
  }
  // 4. removals: chains (flushed first: one may jump to another), then sets
  const goneChains = d.chains.filter((c) => !c.after);
  for (const c of goneChains) out.push(`flush chain ${T} ${c.name}`);
  for (const c of goneChains) {
    out.push(`delete chain ${T} ${c.name}`);
    stats.deleted++;
  }
  for (const s of d.sets)
    if (!s.after) {
      out.push(`delete set ${T} ${s.name}`);
      stats.deleted++;
    }
  return { script: out.length ? `${out.join('\n')}\n` : '', stats };
}

/** What a table left by an earlier run holds (from `nft -t list chains|sets|maps`). */
export interface ExistingTable {
  chains: Set<string>;
  /** set name → its type line(s), e.g. "type ipv4_addr|flags interval" */
  sets: Map<string, string>;
  maps: Set<string>;
}

/** Parse the terse listing of chains, sets and maps; the part inside `table inet tabby-policy` only.
 *  null when that table is not there. */
export function parseListing(text: string): ExistingTable | null {
  const out: ExistingTable = { chains: new Set(), sets: new Map(), maps: new Set() };
  let inTable = false;
  let found = false;
  let set: { name: string; lines: string[] } | undefined;
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (raw.startsWith('table ')) {
      inTable = l === `table ${T} {`;
      found ||= inTable;
      continue;
    }
    if (!inTable) continue;
    let m: RegExpExecArray | null;
    if ((m = /^chain (\S+) \{$/.exec(l))) out.chains.add(m[1]!);
    else if ((m = /^map (\S+) \{$/.exec(l))) out.maps.add(m[1]!);
    else if ((m = /^set (\S+) \{$/.exec(l))) set = { name: m[1]!, lines: [] };
    else if (set && l === '}') {
      out.sets.set(set.name, set.lines.join('|'));
      set = undefined;
    } else if (set && (l.startsWith('type ') || l.startsWith('flags '))) set.lines.push(l);
  }
  return found ? out : null;
}

/** Adopt the table an earlier run left: keep the chains it has (a chain's name is a hash of its
 *  content, so the same name holds the same rules), add the missing ones, refill every set, both maps
 *  and the base chains, delete what is no longer wanted — one transaction, no window. null when the
 *  table cannot be adopted (a set of another type, a map or base chain missing, or so little in
 *  common that replacing the whole table is cheaper). */
export function adoptScript(ex: ExistingTable, rs: Ruleset): { script: string; kept: number } | null {
  if (!ex.maps.has('to-wl') || !ex.maps.has('from-wl') || BASE_CHAINS.some((c) => !ex.chains.has(c.name))) return null;
  const out: string[] = [];
  for (const s of rs.sets.values()) {
    const have = ex.sets.get(s.name);
    if (have !== undefined && have !== setType(s).replace(/; ?/g, '|').replace(/\|$/, '')) return null;
    out.push(have === undefined ? `add set ${T} ${s.name} { ${setType(s)} comment "${q(s.comment)}"; }` : `flush set ${T} ${s.name}`);
    if (s.elements.length) out.push(`add element ${T} ${s.name} { ${s.elements.join(', ')} }`);
  }
  const fresh = [...rs.chains.values()].filter((c) => !ex.chains.has(c.name));
  const kept = rs.chains.size - fresh.length;
  if (kept < fresh.length) return null;
  for (const c of fresh) out.push(`add chain ${T} ${c.name} { comment "${q(c.comment)}"; }`);
  for (const c of fresh) for (const r of c.rules) out.push(`add rule ${T} ${c.name} ${r}`);
  for (const [name, m] of [
    ['to-wl', rs.toWl],
    ['from-wl', rs.fromWl],
  ] as const) {
    out.push(`flush map ${T} ${name}`);
    if (m.size) out.push(`add element ${T} ${name} { ${mapElements(m)} }`);
  }
  for (const c of BASE_CHAINS) out.push(`flush chain ${T} ${c.name}`, ...c.rules.map((r) => `add rule ${T} ${c.name} ${r}`));
  const base = new Set(BASE_CHAINS.map((c) => c.name));
  const gone = [...ex.chains].filter((c) => !rs.chains.has(c) && !base.has(c));
  for (const c of gone) out.push(`flush chain ${T} ${c}`);
  for (const c of gone) out.push(`delete chain ${T} ${c}`);
  for (const s of ex.sets.keys()) if (!rs.sets.has(s)) out.push(`delete set ${T} ${s}`);
  return { script: `${out.join('\n')}\n`, kept };
}
