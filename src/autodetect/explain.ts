// `tabbyctl node autodetect --explain`, the pure part: every candidate interface and address in the
// order Calico walks them, which rule of the method kept or skipped it and why, the result (the same
// as matchAddress — the tests hold them together) and warnings about it: a /32 (or /128) node
// address breaks CrossSubnet (calico#4254), a bridge or container interface is rarely the node's
// real uplink, an address another Node already holds is refused at start.
import { cidrContains, formatIp, tryParseIp, type Family } from '../common/ip.js';
import { DEFAULT_INTERFACES_TO_EXCLUDE, compileNamePattern, formatMethod, type AutodetectionMethod, type NamePattern } from './method.js';
import { matchAddress, walkOrder, isGlobalUnicast, type InterfaceAddresses, type MatchFacts, type MatchResult } from './match.js';

export interface Candidate {
  interface: string;
  index: number;
  /** Address with prefix ('' when the interface has none of the family). */
  address: string;
  verdict: 'chosen' | 'skipped' | 'not reached';
  /** The rule that decided. */
  why: string;
}

export interface AutodetectExplanation {
  method: string;
  family: Family;
  candidates: Candidate[];
  result: MatchResult;
  warnings: string[];
}

const DEFAULT_EXCLUDE: readonly NamePattern[] = DEFAULT_INTERFACES_TO_EXCLUDE.map(compileNamePattern);
const firstMatch = (name: string, ps: readonly NamePattern[]): NamePattern | undefined => ps.find((p) => p.regex.test(name));
const BRIDGE_LIKE = /^(docker|br-|virbr|cni|cbr|podman|lxcbr|kube-bridge)/;

export function explainAutodetect(
  interfaces: readonly (InterfaceAddresses & { kind?: string })[],
  method: AutodetectionMethod,
  family: Family,
  facts: MatchFacts = {},
  others: readonly { node: string; address: string }[] = [],
): AutodetectExplanation {
  const result = matchAddress(interfaces, method, family, facts);
  const chosen = result.ok ? result.choice : undefined;
  const candidates: Candidate[] = [];
  let done = false;
  const target =
    method.kind === 'can-reach'
      ? facts.reachSource
      : method.kind === 'kubernetes-internal-ip'
        ? (facts.internalIps ?? []).find((s) => tryParseIp(s)?.family === family)
        : undefined;
  for (const iface of walkOrder(interfaces)) {
    const addrs = iface.addresses.filter((a) => a.family === family);
    const push = (address: string, verdict: Candidate['verdict'], why: string): void => {
      candidates.push({ interface: iface.name, index: iface.index, address, verdict, why });
    };
    if (done) {
      for (const a of addrs.length ? addrs : [undefined])
        push(a ? `${a.address}/${a.prefixLen}` : '', 'not reached', 'an earlier interface was chosen (reverse kernel index order)');
      continue;
    }
    // Name rules of the enumerating methods.
    let nameSkip: string | undefined;
    if (method.kind === 'first-found' || method.kind === 'skip-interface') {
      const d = firstMatch(iface.name, DEFAULT_EXCLUDE);
      if (d) nameSkip = `default exclusion ${d.source}`;
      if (!nameSkip && method.kind === 'skip-interface') {
        const s = firstMatch(iface.name, method.exclude);
        if (s) nameSkip = `skip-interface=${s.source}`;
      }
    } else if (method.kind === 'interface') {
      if (!firstMatch(iface.name, method.include))
        nameSkip = `name matches no interface= regex (${method.include.map((p) => p.source).join(', ')})`;
    }
    if (addrs.length === 0) {
      push('', 'skipped', nameSkip ?? `no IPv${family} address`);
      continue;
    }
    for (const a of addrs) {
      const text = `${a.address}/${a.prefixLen}`;
      if (done) {
        push(text, 'not reached', 'an earlier address was chosen');
        continue;
      }
      if (nameSkip) {
        push(text, 'skipped', nameSkip);
        continue;
      }
      const ip = tryParseIp(a.address);
      const isChosen = chosen && chosen.interface === iface.name && ip && chosen.ip === formatIp(ip);
      if (method.kind === 'can-reach' || method.kind === 'kubernetes-internal-ip') {
        const what = method.kind === 'can-reach' ? `the kernel's source address toward ${method.destination}` : "the Node's InternalIP";
        if (isChosen) {
          push(text, 'chosen', `${what} (${target})`);
          done = true;
        } else push(text, 'skipped', `not ${what}${target ? ` (${target})` : ''}`);
        continue;
      }
      if (!ip || !isGlobalUnicast(ip)) {
        push(text, 'skipped', 'not global unicast (loopback, link-local, multicast or unspecified)');
        continue;
      }
      if (method.kind === 'cidr' && !method.cidrs.some((c) => cidrContains(c, ip))) {
        push(text, 'skipped', `outside cidr=${method.text.join(',')}`);
        continue;
      }
      if (isChosen) {
        push(
          text,
          'chosen',
          method.kind === 'cidr'
            ? `inside cidr=${method.text.join(',')}`
            : method.kind === 'interface'
              ? 'first global-unicast address on a matching interface'
              : 'first global-unicast address on a kept interface',
        );
        done = true;
      } else push(text, 'skipped', 'not chosen');
    }
  }
  const warnings: string[] = [];
  if (chosen) {
    const host = chosen.family === 4 ? 32 : 128;
    if (chosen.prefixLen === host)
      warnings.push(
        `${chosen.address} is a /${host}: the node's subnet is itself, so CrossSubnet treats every peer as another subnet (always encapsulates) and same-subnet routing never applies (calico#4254) — give the interface its real prefix, or set IP=${chosen.ip}/<prefix>`,
      );
    const iface = interfaces.find((i) => i.name === chosen.interface);
    if (chosen.interface && (iface?.kind === 'bridge' || BRIDGE_LIKE.test(chosen.interface)))
      warnings.push(
        `${chosen.interface} looks like a ${iface?.kind === 'bridge' ? 'bridge' : 'bridge or container'} interface: other nodes usually cannot reach this address — pin the uplink with IP_AUTODETECTION_METHOD=interface=^eth0$ (or can-reach=<a peer>)`,
      );
    const dup = others.find((o) => o.address.split('/')[0] === chosen.ip);
    if (dup)
      warnings.push(
        `${chosen.ip} is already Node ${dup.node}'s address: tabby-node refuses to start with it (two nodes cannot share a BGP address)`,
      );
  }
  return { method: formatMethod(method), family, candidates, result, warnings };
}
