// IP_AUTODETECTION_METHOD / IP6_AUTODETECTION_METHOD parsing: the string a Calico user writes in a
// DaemonSet becomes a typed method, or an AutodetectConfigError naming the variable and the fault.
// Grammar (Calico's, node/pkg/lifecycle/startup/autodetection): `first-found` (default, also the
// empty string), `interface=R[,R…]`, `skip-interface=R[,R…]`, `can-reach=DEST`, `cidr=C[,C…]`,
// `kubernetes-internal-ip`. Lists split on commas with optional spaces around them.
//
// Regexes are UNANCHORED, exactly as in Calico: `interface=eth0` also matches `veth0` and `eth0.100`;
// write `interface=^eth0$` to mean one interface. One departure, on purpose: an empty list element
// (`interface=eth0,`) is rejected — in Calico it becomes an empty alternative that matches every
// interface, which is never what the user meant.
import { parseCidr, type Cidr, type Family, InvalidAddress, tryParseIp } from '../common/ip.js';

/** Calico's default exclusion list for first-found and skip-interface (name regexes). */
export const DEFAULT_INTERFACES_TO_EXCLUDE: readonly string[] = [
  '^docker.*',
  '^cbr.*',
  '^dummy.*',
  '^podman.*',
  '^virbr.*',
  '^lxcbr.*',
  '^veth.*',
  '^lo',
  '^br-.*',
  '^cali.*',
  '^tunl.*',
  '^flannel.*',
  '^kube-ipvs.*',
  '^cni.*',
  '^vxlan\\.calico.*',
  '^vxlan-v6\\.calico.*',
  '^wireguard\\.cali.*',
  '^wg-v6\\.cali.*',
  '^nodelocaldns.*',
];

/** One interface-name pattern: the source text (for messages) and the compiled, unanchored regex. */
export interface NamePattern {
  source: string;
  regex: RegExp;
}

export type AutodetectionMethod =
  | { kind: 'first-found' }
  | { kind: 'interface'; include: NamePattern[] }
  | { kind: 'skip-interface'; exclude: NamePattern[] }
  | { kind: 'can-reach'; destination: string /* IP literal or hostname */ }
  | { kind: 'cidr'; cidrs: Cidr[]; text: string[] }
  | { kind: 'kubernetes-internal-ip' };

/** Bad configuration: which variable, what value, what is wrong. The agent refuses to start on it. */
export class AutodetectConfigError extends Error {
  readonly code = 'EAUTODETECTCONFIG';
  constructor(
    readonly variable: string,
    readonly value: string,
    readonly problem: string,
  ) {
    super(`${variable}=${JSON.stringify(value)}: ${problem}`);
    this.name = 'AutodetectConfigError';
  }
}

const LIST_SPLIT = /\s*,\s*/;

/** Compile one interface regex with JavaScript semantics; a leading RE2 `(?i)` becomes the `i` flag. */
export function compileNamePattern(source: string): NamePattern {
  let body = source;
  let flags = '';
  if (body.startsWith('(?i)')) {
    body = body.slice(4);
    flags = 'i';
  }
  return { source, regex: new RegExp(body, flags) };
}

function parsePatternList(variable: string, value: string, list: string, what: string): NamePattern[] {
  const items = list.trim().split(LIST_SPLIT);
  if (items.length === 1 && items[0] === '')
    throw new AutodetectConfigError(variable, value, `${what}= needs at least one interface-name regex`);
  return items.map((item, i) => {
    if (item === '')
      throw new AutodetectConfigError(
        variable,
        value,
        `empty regex at position ${i + 1} of the ${what}= list (an empty pattern would match every interface)`,
      );
    try {
      return compileNamePattern(item);
    } catch (err) {
      throw new AutodetectConfigError(variable, value, `invalid interface regex ${JSON.stringify(item)}: ${(err as Error).message}`);
    }
  });
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

/**
 * Parse one method string for one address family. `variable` names the setting in errors
 * (IP_AUTODETECTION_METHOD or IP6_AUTODETECTION_METHOD). Empty/undefined means first-found.
 */
export function parseAutodetectionMethod(
  input: string | undefined,
  family: Family,
  variable = family === 4 ? 'IP_AUTODETECTION_METHOD' : 'IP6_AUTODETECTION_METHOD',
): AutodetectionMethod {
  const value = (input ?? '').trim();
  if (value === '' || value === 'first-found') return { kind: 'first-found' };
  if (value === 'kubernetes-internal-ip') return { kind: 'kubernetes-internal-ip' };
  const eq = value.indexOf('=');
  const key = eq < 0 ? value : value.slice(0, eq);
  const arg = eq < 0 ? '' : value.slice(eq + 1);
  switch (eq < 0 ? '' : key) {
    case 'interface':
      return { kind: 'interface', include: parsePatternList(variable, value, arg, 'interface') };
    case 'skip-interface':
      return { kind: 'skip-interface', exclude: parsePatternList(variable, value, arg, 'skip-interface') };
    case 'can-reach': {
      let dest = arg.trim();
      if (dest.startsWith('[') && dest.endsWith(']')) dest = dest.slice(1, -1);
      if (dest === '') throw new AutodetectConfigError(variable, value, 'can-reach= needs a destination IP address or hostname');
      const ip = tryParseIp(dest);
      if (ip && ip.family !== family) {
        throw new AutodetectConfigError(
          variable,
          value,
          `can-reach destination ${dest} is IPv${ip.family} but this setting detects the IPv${family} address`,
        );
      }
      if (!ip && !HOSTNAME.test(dest))
        throw new AutodetectConfigError(
          variable,
          value,
          `can-reach destination ${JSON.stringify(dest)} is neither an IP address nor a hostname`,
        );
      return { kind: 'can-reach', destination: dest };
    }
    case 'cidr': {
      const items = arg.trim().split(LIST_SPLIT);
      if (items.length === 1 && items[0] === '') throw new AutodetectConfigError(variable, value, 'cidr= needs at least one CIDR');
      const cidrs = items.map((item) => {
        if (item === '') throw new AutodetectConfigError(variable, value, 'empty element in the cidr= list');
        try {
          return parseCidr(item, { requirePrefix: true });
        } catch (err) {
          const why = err instanceof InvalidAddress ? err.message : String(err);
          throw new AutodetectConfigError(variable, value, `invalid CIDR ${JSON.stringify(item)}: ${why}`);
        }
      });
      return { kind: 'cidr', cidrs, text: items };
    }
    default:
      throw new AutodetectConfigError(
        variable,
        value,
        'unknown autodetection method; use first-found, interface=REGEX[,REGEX…], skip-interface=REGEX[,REGEX…], can-reach=DEST, cidr=CIDR[,CIDR…] or kubernetes-internal-ip',
      );
  }
}

/** The method back as text (for logs and error messages). */
export function formatMethod(m: AutodetectionMethod): string {
  switch (m.kind) {
    case 'first-found':
      return 'first-found';
    case 'kubernetes-internal-ip':
      return 'kubernetes-internal-ip';
    case 'interface':
      return `interface=${m.include.map((p) => p.source).join(',')}`;
    case 'skip-interface':
      return `skip-interface=${m.exclude.map((p) => p.source).join(',')}`;
    case 'can-reach':
      return `can-reach=${m.destination}`;
    case 'cidr':
      return `cidr=${m.text.join(',')}`;
  }
}
