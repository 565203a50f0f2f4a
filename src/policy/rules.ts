// One Calico rule → nftables rule text (pure), for one address family. Selectors become references to
// named sets (`ip saddr @s4-…`) whose members the compiler keeps current, so a pod appearing changes set
// elements, never a rule. Verdicts follow Felix's mark scheme (the chain that jumped here reads them):
//   Allow → set the accept bit and return;  Pass → set the pass bit and return;  Deny → drop;
//   Log → log and continue.
import { parseCidr } from '../common/ip.js';
import type { EntityRule, PolicyPort, PolicyRule, Protocol } from '../datastore/policy-types.js';
import { peerScope, type PeerScope } from './model.js';

export const MARK_ACCEPT = 0x10000;
export const MARK_PASS = 0x20000;
export const MARK_BOTH = MARK_ACCEPT | MARK_PASS;
export const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

export type Family = 4 | 6;

/** What a rule needs from the compiler: a set name for a peer scope (and for named ports). */
export interface SetNamer {
  addrSet(scope: PeerScope, family: Family): string;
  namedPortSet(scope: PeerScope | undefined, names: readonly string[], family: Family): string;
}

const PROTO_NFT: Record<string, string> = {
  TCP: 'tcp',
  UDP: 'udp',
  ICMP: 'icmp',
  ICMPv6: 'ipv6-icmp',
  SCTP: 'sctp',
  UDPLite: 'udplite',
  '6': 'tcp',
  '17': 'udp',
  '1': 'icmp',
  '58': 'ipv6-icmp',
  '132': 'sctp',
  '136': 'udplite',
};
const nftProto = (p: Protocol): string => PROTO_NFT[String(p)] ?? String(p);

function familiesOf(rule: PolicyRule): Family[] {
  let fams: Family[] = rule.ipVersion ? [rule.ipVersion] : [4, 6];
  const p = rule.protocol === undefined ? undefined : String(rule.protocol);
  if (p === 'ICMP' || p === '1') fams = fams.filter((f) => f === 4);
  if (p === 'ICMPv6' || p === '58') fams = fams.filter((f) => f === 6);
  for (const side of [rule.source, rule.destination]) {
    if (side?.nets?.length) {
      const have = new Set(side.nets.map((n) => parseCidr(n).family));
      fams = fams.filter((f) => have.has(f));
    }
  }
  return fams;
}

function netsOf(nets: readonly string[], family: Family): string[] {
  return nets.filter((n) => parseCidr(n).family === family);
}

const portText = (p: PolicyPort): string => (typeof p === 'number' ? String(p) : p.replace(':', '-'));
const isNamed = (p: PolicyPort): p is string => typeof p === 'string' && !/^\d+(:\d+)?$/.test(p);

/** Conditions for one side; port matches come back as alternatives (numeric ports OR named ports). */
function side(
  e: EntityRule | undefined,
  dir: 'saddr' | 'daddr',
  family: Family,
  rule: PolicyRule,
  ns: string | undefined,
  sets: SetNamer,
): { conds: string[]; alts: string[][] } {
  const conds: string[] = [];
  const alts: string[][] = [];
  if (!e) return { conds, alts: [[]] };
  const ip = family === 4 ? 'ip' : 'ip6';
  if (e.nets?.length) conds.push(`${ip} ${dir} { ${netsOf(e.nets, family).join(', ')} }`);
  const notNets = netsOf(e.notNets ?? [], family);
  if (notNets.length) conds.push(`${ip} ${dir} != { ${notNets.join(', ')} }`);
  const scope = peerScope(e, ns);
  if (scope) conds.push(`${ip} ${dir} @${sets.addrSet(scope, family)}`);
  if (e.notSelector)
    conds.push(`${ip} ${dir} != @${sets.addrSet({ selector: peerScope({ selector: e.notSelector }, undefined)!.selector }, family)}`);
  const port = dir === 'saddr' ? 'sport' : 'dport';
  const proto = rule.protocol === undefined ? 'th' : nftProto(rule.protocol);
  const l4 = proto === 'ipv6-icmp' || proto === 'icmp' || /^\d+$/.test(proto) ? 'th' : proto;
  const numeric = (e.ports ?? []).filter((p) => !isNamed(p));
  const named = (e.ports ?? []).filter(isNamed);
  if (numeric.length) alts.push([`${l4} ${port} { ${numeric.map(portText).join(', ')} }`]);
  if (named.length) alts.push([`${ip} ${dir} . meta l4proto . th ${port} @${sets.namedPortSet(scope, named, family)}`]);
  if (alts.length === 0) alts.push([]);
  const notNumeric = (e.notPorts ?? []).filter((p) => !isNamed(p));
  const notNamed = (e.notPorts ?? []).filter(isNamed);
  if (notNumeric.length) conds.push(`${l4} ${port} != { ${notNumeric.map(portText).join(', ')} }`);
  if (notNamed.length) conds.push(`${ip} ${dir} . meta l4proto . th ${port} != @${sets.namedPortSet(scope, notNamed, family)}`);
  return { conds, alts };
}

function icmpConds(m: { type?: number; code?: number } | undefined, family: Family, negate: boolean): string[] {
  if (!m || m.type === undefined) return [];
  const kw = family === 4 ? 'icmp' : 'icmpv6';
  const op = negate ? '!= ' : '';
  return [`${kw} type ${op}${m.type}`, ...(m.code !== undefined ? [`${kw} code ${op}${m.code}`] : [])];
}

const SET_ACCEPT = `meta mark set meta mark | ${hex(MARK_ACCEPT)}`;
const SET_PASS = `meta mark set meta mark | ${hex(MARK_PASS)}`;

function verdict(rule: PolicyRule, comment: string, logPrefix: string): string {
  switch (rule.action) {
    case 'Allow':
      return `${SET_ACCEPT} return comment "${comment}"`;
    case 'Pass':
      return `${SET_PASS} return comment "${comment}"`;
    case 'Deny':
      return `drop comment "${comment}"`;
    case 'Log':
      return `log prefix "tabby ${logPrefix.slice(0, 100)}: " comment "${comment}"`;
  }
}

/** nft rule bodies (no "add rule" prefix) for one Calico rule; [] when it cannot match in any family.
 *  `families`: the families any endpoint has; a family's variant that needs a match in one of that
 *  family's sets (all empty when no endpoint has the family) is left out — it could never match. */
export function renderRule(
  rule: PolicyRule,
  ns: string | undefined,
  sets: SetNamer,
  comment: string,
  logPrefix = comment,
  families: ReadonlySet<Family> = BOTH,
): string[] {
  const out = renderPerFamily(rule, ns, sets, comment, logPrefix).filter(
    (r) => families.has(r.startsWith('meta nfproto ipv4 ') ? 4 : 6) || !/ @[\w-]+/.test(r.replace(/!= @[\w-]+/g, '')),
  );
  // A rule with nothing family-specific is one rule for both families.
  if (out.length === 2 && out[0]!.replace('meta nfproto ipv4 ', '') === out[1]!.replace('meta nfproto ipv6 ', ''))
    return [out[0]!.replace('meta nfproto ipv4 ', '')];
  return out;
}
const BOTH: ReadonlySet<Family> = new Set([4, 6]);

function renderPerFamily(rule: PolicyRule, ns: string | undefined, sets: SetNamer, comment: string, logPrefix: string): string[] {
  const out: string[] = [];
  for (const family of familiesOf(rule)) {
    const base: string[] = [`meta nfproto ${family === 4 ? 'ipv4' : 'ipv6'}`];
    if (rule.protocol !== undefined) base.push(`meta l4proto ${nftProto(rule.protocol)}`);
    if (rule.notProtocol !== undefined) base.push(`meta l4proto != ${nftProto(rule.notProtocol)}`);
    base.push(...icmpConds(rule.icmp, family, false));
    if (rule.notICMP) base.push(...icmpConds(rule.notICMP, family, true));
    const src = side(rule.source, 'saddr', family, rule, ns, sets);
    const dst = side(rule.destination, 'daddr', family, rule, ns, sets);
    for (const a of src.alts)
      for (const b of dst.alts) {
        out.push([...base, ...src.conds, ...dst.conds, ...a, ...b, verdict(rule, comment, logPrefix)].join(' '));
      }
  }
  return out;
}
