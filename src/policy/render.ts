// Ruleset → nft script (pure). Two forms, each ONE transaction for `nft -f -`:
//   fullScript   create-if-missing, delete, define the whole table — what a (re)starting agent runs, so
//                the previous run's rules stay enforced until the new ones replace them atomically;
//   diffScript   only what changed between two rulesets: new sets/chains first, set elements, changed
//                chains flushed and refilled, map entries, then removals (nothing is deleted while a
//                rule still jumps to it, so the kernel accepts the whole transaction or none of it).
// The table is `inet tabby-policy` (its own: the NAT table is replaced wholesale by its owner).
// Base chains: forward (pod↔pod, pod↔remote), input (pod→host: the pod's egress policy). Host→pod
// traffic (kubelet probes) leaves through output, which tabby does not filter: Calico's default.
import type { NftChain, NftSet, Ruleset } from './compile.js';
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

/** The whole table, replacing whatever is there, in one transaction. null = no table at all. */
export function fullScript(rs: Ruleset | null): string {
  const out = [`table ${T}`, `delete table ${T}`];
  if (rs && (rs.toWl.size || rs.fromWl.size)) {
    out.push(`table ${T} {`);
    for (const s of rs.sets.values()) out.push(...setBlock(s));
    for (const c of rs.chains.values())
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

const sameRules = (a: NftChain, b: NftChain) => a.rules.length === b.rules.length && a.rules.every((r, i) => r === b.rules[i]);

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
  const out: string[] = [];
  const stats: DiffStats = { sets: 0, elementsAdded: 0, elementsRemoved: 0, chains: 0, mapEntries: 0, deleted: 0 };
  // 1. new sets (with elements), changed set membership
  for (const s of next.sets.values()) {
    const old = prev.sets.get(s.name);
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
  for (const c of next.chains.values()) if (!prev.chains.has(c.name)) out.push(`add chain ${T} ${c.name} { comment "${q(c.comment)}"; }`);
  for (const c of next.chains.values()) {
    const old = prev.chains.get(c.name);
    if (old && sameRules(old, c)) continue;
    if (old) out.push(`flush chain ${T} ${c.name}`);
    for (const r of c.rules) out.push(`add rule ${T} ${c.name} ${r}`);
    stats.chains++;
  }
  // 3. map entries: new endpoints in, gone endpoints out
  for (const [mapName, nm, pm] of [
    ['to-wl', next.toWl, prev.toWl],
    ['from-wl', next.fromWl, prev.fromWl],
  ] as const) {
    const gone = [...pm.keys()].filter((k) => !nm.has(k));
    if (gone.length) {
      out.push(`delete element ${T} ${mapName} { ${gone.map((k) => `"${k}"`).join(', ')} }`);
      stats.mapEntries += gone.length;
    }
    const added = new Map([...nm].filter(([k, v]) => pm.get(k) !== v));
    if (added.size) {
      out.push(`add element ${T} ${mapName} { ${mapElements(added)} }`);
      stats.mapEntries += added.size;
    }
  }
  // 4. removals: endpoint chains (reverse order: they jump to rule chains), then rule chains, then sets
  const goneChains = [...prev.chains.values()].filter((c) => !next.chains.has(c.name)).reverse();
  for (const c of goneChains) out.push(`flush chain ${T} ${c.name}`);
  for (const c of goneChains) {
    out.push(`delete chain ${T} ${c.name}`);
    stats.deleted++;
  }
  for (const s of prev.sets.values())
    if (!next.sets.has(s.name)) {
      out.push(`delete set ${T} ${s.name}`);
      stats.deleted++;
    }
  return { script: out.length ? `${out.join('\n')}\n` : '', stats };
}
