// Interface (device) routes, Calico's BIRD `protocol direct` with
// `interface -"cali*", -"kube-ipvs*", <ignoredInterfaces excluded>, "*"`: the connected prefix of every
// address on the node's up interfaces, except workload veths, kube-ipvs*, BGPConfiguration
// ignoredInterfaces and tabby's own devices (tunnels, lo). Pure: addresses in, prefix → interface out.
// The speaker originates them as `direct` routes, which leave only through an export rule's Accept.
import { formatCidr, parseCidr } from '../common/ip.js';
import type { InterfaceAddress } from './ports.js';

/** Always left out: workload veths, kube-proxy's IPVS dummy, tabby's tunnels, loopback. */
export const EXCLUDED_INTERFACES: readonly string[] = [
  'cali*',
  'kube-ipvs*',
  'lo',
  'tunl0',
  'vxlan.calico',
  'vxlan-v6.calico',
  'wireguard.cali',
  'wg-v6.cali',
];

const SCOPE_LINK = 253;

export const globMatcher = (glob: string): RegExp =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );

/** Connected prefixes → the interface they are on (the first by name when several share one). */
export function interfaceRoutes(addrs: readonly InterfaceAddress[], ignored: readonly string[] = [], all = false): Map<string, string> {
  const out = new Map<string, string>();
  // all: every interface (what a learned route's next hop is reached through, for import rules)
  const skip = all ? [] : [...EXCLUDED_INTERFACES, ...ignored].map(globMatcher);
  const sorted = [...addrs].sort((a, b) => (a.iface < b.iface ? -1 : a.iface > b.iface ? 1 : 0));
  for (const a of sorted) {
    // host scope (127/8, ::1) and link scope (fe80::/64) are not routable elsewhere
    if (!a.up || a.scope >= SCOPE_LINK) continue;
    if (skip.some((re) => re.test(a.iface))) continue;
    let prefix: string;
    try {
      prefix = formatCidr(parseCidr(`${a.address}/${a.prefixLen}`));
    } catch {
      continue;
    }
    if (!out.has(prefix)) out.set(prefix, a.iface);
  }
  return out;
}
