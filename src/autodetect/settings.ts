// The IP / IP6 settings and what they mean for a Node's address (pure), the conflict check against
// other Nodes, and reading all autodetection settings from the environment.
//
//   IP unset        → keep the address already stored on the Node; none stored → autodetect.
//   IP=autodetect   → autodetect on every start (and every AUTODETECT_POLL_INTERVAL).
//   IP=none         → no IPv4 address.
//   IP=10.0.0.5[/24] → that address; without a prefix, the prefix of the interface that holds it
//                      (a /32 with a warning when no interface holds it, as Calico).
//   IP6 likewise, except that IPv6 is detected ONLY when IP6=autodetect (unset keeps a stored one).
// When detection finds nothing: keep a stored address with a warning; otherwise NoAddressError.
import { parseDuration } from '../common/duration.js';
import { formatIp, parseCidr, parseIp, tryParseIp, type Family, InvalidAddress } from '../common/ip.js';
import { AutodetectConfigError, formatMethod, parseAutodetectionMethod, type AutodetectionMethod } from './method.js';
import { findOwner, type AddressChoice, type InterfaceAddresses, type MatchResult } from './match.js';

export type IpSetting =
  | { kind: 'unset' }
  | { kind: 'autodetect' }
  | { kind: 'none' }
  | { kind: 'address'; address: string; prefixLen?: number };

export function parseIpSetting(input: string | undefined, family: Family, variable = family === 4 ? 'IP' : 'IP6'): IpSetting {
  const value = (input ?? '').trim();
  if (value === '') return { kind: 'unset' };
  const lower = value.toLowerCase();
  if (lower === 'autodetect') return { kind: 'autodetect' };
  if (lower === 'none') return { kind: 'none' };
  try {
    if (value.includes('/')) {
      const c = parseCidr(value, { requirePrefix: true });
      if (c.family !== family)
        throw new AutodetectConfigError(variable, value, `is an IPv${c.family} address; ${variable} takes IPv${family}`);
      return { kind: 'address', address: formatIp({ family, value: c.ip }), prefixLen: c.prefixLen };
    }
    const ip = parseIp(value);
    if (ip.family !== family)
      throw new AutodetectConfigError(variable, value, `is an IPv${ip.family} address; ${variable} takes IPv${family}`);
    return { kind: 'address', address: formatIp(ip) };
  } catch (err) {
    if (err instanceof AutodetectConfigError) throw err;
    const why = err instanceof InvalidAddress ? err.message : String(err);
    throw new AutodetectConfigError(variable, value, `not "autodetect", "none" or an IPv${family} address[/prefix]: ${why}`);
  }
}

/** Every autodetection setting of tabby-node, parsed. */
export interface AutodetectConfig {
  ip4: IpSetting;
  ip6: IpSetting;
  method4: AutodetectionMethod;
  method6: AutodetectionMethod;
  /** AUTODETECT_POLL_INTERVAL in milliseconds (default 60 s; 0 disables re-detection). */
  pollIntervalMs: number;
  /** kubernetes-internal-ip outside a cluster: the InternalIP(s) to use (TABBY_NODE_INTERNAL_IP, comma list). */
  internalIps?: string[];
}

/** The environment variables read here (the agent lists them in its AGENT_ENV). */
export const AUTODETECT_ENV = {
  IP: 'IPv4 address of the node: unset (keep stored, else detect), "autodetect", "none" or ADDRESS[/PREFIX]',
  IP6: 'IPv6 address of the node: unset (keep stored), "autodetect", "none" or ADDRESS[/PREFIX]',
  IP_AUTODETECTION_METHOD:
    'first-found (default) | interface=REGEX[,…] | skip-interface=REGEX[,…] | can-reach=DEST | cidr=CIDR[,…] | kubernetes-internal-ip',
  IP6_AUTODETECTION_METHOD: 'as IP_AUTODETECTION_METHOD, for IPv6',
  AUTODETECT_POLL_INTERVAL: 'how often to re-detect the address (Go duration like 60s, 5m, or seconds; default 60s; 0 = never)',
  TABBY_NODE_INTERNAL_IP: 'kubernetes-internal-ip when not running in a cluster: the node InternalIP(s), comma-separated',
} as const;

/** Go-style duration ("90s", "1m30s", "500ms") or plain seconds → milliseconds. */
export function parseDurationSetting(variable: string, value: string): number {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const ms = parseDuration(v);
  if (ms === undefined) throw new AutodetectConfigError(variable, value, 'not a duration (e.g. 60s, 5m, 1h30m, or a number of seconds)');
  return Math.round(ms);
}

/** Read a variable, accepting the lower-case spelling too (ip_autodetection_method), upper case winning. */
function envValue(env: Record<string, string | undefined>, name: string): [string, string | undefined] {
  if (env[name] !== undefined) return [name, env[name]];
  const lower = name.toLowerCase();
  if (env[lower] !== undefined) return [lower, env[lower]];
  return [name, undefined];
}

/** All autodetection settings from the environment; throws AutodetectConfigError naming the variable. */
export function autodetectConfigFromEnv(env: Record<string, string | undefined> = process.env): AutodetectConfig {
  const [ipVar, ip] = envValue(env, 'IP');
  const [ip6Var, ip6] = envValue(env, 'IP6');
  const [m4Var, m4] = envValue(env, 'IP_AUTODETECTION_METHOD');
  const [m6Var, m6] = envValue(env, 'IP6_AUTODETECTION_METHOD');
  const [pollVar, poll] = envValue(env, 'AUTODETECT_POLL_INTERVAL');
  const [kVar, k] = envValue(env, 'TABBY_NODE_INTERNAL_IP');
  const internalIps =
    k === undefined || k.trim() === ''
      ? undefined
      : k.split(/\s*,\s*/).map((s) => {
          if (!tryParseIp(s)) throw new AutodetectConfigError(kVar, k, `${JSON.stringify(s)} is not an IP address`);
          return s;
        });
  return {
    ip4: parseIpSetting(ip, 4, ipVar),
    ip6: parseIpSetting(ip6, 6, ip6Var),
    method4: parseAutodetectionMethod(m4, 4, m4Var),
    method6: parseAutodetectionMethod(m6, 6, m6Var),
    pollIntervalMs: poll === undefined || poll.trim() === '' ? 60_000 : parseDurationSetting(pollVar, poll),
    ...(internalIps ? { internalIps } : {}),
  };
}

/** Nothing qualified and nothing stored: the agent must refuse to start. */
export class NoAddressError extends Error {
  readonly code = 'ENOADDRESS';
  constructor(
    readonly family: Family,
    readonly method: string,
    readonly reason: string,
  ) {
    super(
      `failed to autodetect an IPv${family} address with ${family === 4 ? 'IP' : 'IP6'}_AUTODETECTION_METHOD=${method}: ${reason}. ` +
        `Choose another autodetection method or set ${family === 4 ? 'IP' : 'IP6'} explicitly.`,
    );
    this.name = 'NoAddressError';
  }
}

/** Does this setting need the detector to run (given what the Node already stores)? */
export function needsDetection(setting: IpSetting, family: Family, stored: string | undefined): boolean {
  if (setting.kind === 'autodetect') return true;
  return setting.kind === 'unset' && family === 4 && !stored;
}

export interface AddressDecision {
  /** undefined: the node has no address of this family. */
  choice?: AddressChoice;
  source: 'detected' | 'stored' | 'explicit' | 'none';
  warnings: string[];
}

function storedChoice(family: Family, stored: string, interfaces: readonly InterfaceAddresses[]): AddressChoice {
  const c = parseCidr(stored);
  const ip = formatIp({ family: c.family, value: c.ip });
  const owner = findOwner(interfaces, ip);
  return {
    family,
    address: `${ip}/${c.prefixLen}`,
    ip,
    prefixLen: c.prefixLen,
    ...(owner?.interface ? { interface: owner.interface } : {}),
  };
}

/**
 * Decide one family's address (pure). `detected` is the matcher's answer, required when
 * needsDetection() said so. Throws NoAddressError when the node must not start.
 */
export function decideAddress(opts: {
  family: Family;
  setting: IpSetting;
  method: AutodetectionMethod;
  stored?: string | undefined;
  interfaces: readonly InterfaceAddresses[];
  detected?: MatchResult | undefined;
}): AddressDecision {
  const { family, setting, stored, interfaces } = opts;
  const warnings: string[] = [];
  switch (setting.kind) {
    case 'none':
      return { source: 'none', warnings };
    case 'address': {
      if (setting.prefixLen !== undefined) {
        const owner = findOwner(interfaces, setting.address);
        if (!owner) warnings.push(`IPv${family} address ${setting.address} is not assigned to any interface of this host`);
        return {
          choice: {
            family,
            address: `${setting.address}/${setting.prefixLen}`,
            ip: setting.address,
            prefixLen: setting.prefixLen,
            ...(owner?.interface ? { interface: owner.interface } : {}),
          },
          source: 'explicit',
          warnings,
        };
      }
      const owner = findOwner(interfaces, setting.address);
      if (owner) return { choice: owner, source: 'explicit', warnings };
      const full = family === 4 ? 32 : 128;
      warnings.push(`IPv${family} address ${setting.address} is not assigned to any interface of this host; using /${full}`);
      return {
        choice: { family, address: `${setting.address}/${full}`, ip: setting.address, prefixLen: full },
        source: 'explicit',
        warnings,
      };
    }
    case 'unset':
      if (stored) return { choice: storedChoice(family, stored, interfaces), source: 'stored', warnings };
      if (family === 6) return { source: 'none', warnings };
      break;
    case 'autodetect':
      break;
  }
  const detected = opts.detected;
  if (!detected) throw new Error('decideAddress: detection result required (call needsDetection first)');
  if (detected.ok) return { choice: detected.choice, source: 'detected', warnings };
  if (stored) {
    warnings.push(`autodetection of the IPv${family} address failed (${detected.reason}); keeping the stored address ${stored}`);
    return { choice: storedChoice(family, stored, interfaces), source: 'stored', warnings };
  }
  throw new NoAddressError(family, formatMethod(opts.method), detected.reason);
}

/** The shape of a Node the conflict check reads (structural: resources.ts's Node fits). */
export interface NodeAddressesLike {
  metadata: { name: string };
  spec?: { bgp?: { ipv4Address?: string | undefined; ipv6Address?: string | undefined } | undefined } | undefined;
}

export interface AddressConflict {
  node: string;
  address: string;
  family: Family;
}

/** Another Node already using one of our addresses (compared without prefix), or undefined. */
export function findAddressConflict(
  nodeName: string,
  mine: { ipv4?: string | undefined; ipv6?: string | undefined },
  nodes: readonly NodeAddressesLike[],
): AddressConflict | undefined {
  const ipOf = (s: string | undefined): string | undefined => {
    if (!s) return undefined;
    const ip = tryParseIp(s.split('/')[0]!);
    return ip ? formatIp(ip) : undefined;
  };
  const want4 = ipOf(mine.ipv4);
  const want6 = ipOf(mine.ipv6);
  for (const n of nodes) {
    if (n.metadata.name === nodeName) continue;
    const b = n.spec?.bgp;
    if (want4 && ipOf(b?.ipv4Address) === want4) return { node: n.metadata.name, address: want4, family: 4 };
    if (want6 && ipOf(b?.ipv6Address) === want6) return { node: n.metadata.name, address: want6, family: 6 };
  }
  return undefined;
}

export class AddressConflictError extends Error {
  readonly code = 'EADDRCONFLICT';
  constructor(
    readonly conflict: AddressConflict,
    readonly nodeName: string,
  ) {
    super(
      `IPv${conflict.family} address ${conflict.address} chosen for node ${nodeName} is already used by node ${conflict.node}; ` +
        `refusing to start (a wrongly detected address — e.g. a docker bridge — would break routing). ` +
        `Set ${conflict.family === 4 ? 'IP' : 'IP6'} or ${conflict.family === 4 ? 'IP' : 'IP6'}_AUTODETECTION_METHOD, or fix node ${conflict.node}.`,
    );
    this.name = 'AddressConflictError';
  }
}
