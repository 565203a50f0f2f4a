// CNI input: the network configuration on stdin (spec 1.0.0 §"Network configuration", also 0.3.x/0.4.0
// and 1.1.0 configs) and the CNI_* environment (spec §"Parameters"). Pure: parse, validate, throw CniError.
// tabby's own netconf keys follow Calico's: nodename, mtu, log_file_path, log_level, datastore_type,
// datastore_dir, etcd_endpoints, etcd_ca_cert_file, etcd_cert_file, etcd_key_file, and under "ipam":
// type (tabby-ipam), ipv4_pools, ipv6_pools, assign_ipv4 ("true"), assign_ipv6 ("false").

import { echo } from '../common/echo.js';
import { LOG_LEVELS, parseLogLevel } from '../common/log-level.js';

/** Versions this plugin answers (VERSION lists them). */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** CNI spec error codes (§"Error"), plus tabby's own (>= 100). */
export const CNI_ERR = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_NETCONF: 7,
  TRY_AGAIN_LATER: 11,
  PLUGIN_NOT_AVAILABLE: 50,
  LIMITED_CONNECTIVITY: 51,
  /** tabby: no free address in the pools the pod may use. */
  POOL_EXHAUSTED: 100,
  /** tabby: a requested address is held by someone else. */
  ADDRESS_IN_USE: 101,
  /** tabby: the datastore failed (not a transient conflict). */
  DATASTORE_ERROR: 102,
  /** tabby: anything else. */
  INTERNAL: 999,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
  ) {
    super(msg);
    this.name = 'CniError';
  }
  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export interface IpamConf {
  type: string;
  ipv4Pools: string[];
  ipv6Pools: string[];
  assignIpv4: boolean;
  assignIpv6: boolean;
  [k: string]: unknown;
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  ipam: IpamConf;
  nodename?: string;
  mtu?: number;
  logFilePath: string;
  logLevel: string;
  /** Requested addresses from "args" (args.cni.ips) and runtimeConfig.ips (the `ips` capability). */
  requestedIps: string[];
  prevResult?: Record<string, unknown>;
  /** The whole document as given (datastore keys are read from it). */
  raw: Record<string, unknown>;
}

export const DEFAULT_LOG_FILE = '/var/log/tabby/cni.log';
/** Largest network configuration accepted on stdin (chose 1 MiB: a GC's valid-attachments list for
 *  thousands of pods fits many times over; a runaway input is refused before it is parsed). */
export const MAX_NETCONF_BYTES = 1 << 20;
/** CNI spec §"Network configuration": a network name matches this. */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const boolish = (v: unknown, dflt: boolean, field: string): boolean => {
  if (v === undefined || v === null || v === '') return dflt;
  if (typeof v === 'boolean') return v;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new CniError(CNI_ERR.INVALID_NETCONF, `${field} must be "true" or "false"`, `got ${echo(v)}`);
};

const strList = (v: unknown, field: string): string[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new CniError(CNI_ERR.INVALID_NETCONF, `${field} must be a list of strings`, `got ${echo(v)}`);
  }
  return v as string[];
};

/** Parse a network configuration (a string or bytes from stdin, or an already-parsed object).
 *  One config from a conflist as the runtime passes it; a whole conflist is accepted too (the first
 *  plugin whose type is tabby/tabby-ipam is taken, with the list's name and cniVersion). */
export function parseNetConf(input: string | Buffer | Record<string, unknown>): NetConf {
  let doc: unknown = input;
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    if (input.length > MAX_NETCONF_BYTES) {
      throw new CniError(
        CNI_ERR.INVALID_NETCONF,
        `the network configuration is larger than ${MAX_NETCONF_BYTES >> 20} MiB: refused without reading it`,
      );
    }
    const text = input.toString();
    if (text.trim() === '') throw new CniError(CNI_ERR.DECODE_FAILURE, 'no network configuration on stdin');
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new CniError(CNI_ERR.DECODE_FAILURE, 'network configuration is not valid JSON', echo((e as Error).message, 200).slice(1, -1));
    }
  }
  if (!isObj(doc)) throw new CniError(CNI_ERR.DECODE_FAILURE, 'network configuration must be a JSON object');
  if (Array.isArray(doc.plugins)) {
    const plugin = doc.plugins.find((p) => isObj(p) && (p.type === 'tabby' || p.type === 'tabby-ipam'));
    if (!isObj(plugin)) throw new CniError(CNI_ERR.INVALID_NETCONF, 'the conflist has no plugin of type "tabby"');
    const versions = Array.isArray(doc.cniVersions) ? doc.cniVersions.filter((v): v is string => typeof v === 'string') : [];
    const best = [...SUPPORTED_VERSIONS].reverse().find((v) => versions.includes(v));
    doc = { ...plugin, name: doc.name, cniVersion: best ?? doc.cniVersion };
  }
  const d = doc as Record<string, unknown>;
  const version = d.cniVersion;
  if (typeof version !== 'string' || version === '') throw new CniError(CNI_ERR.INVALID_NETCONF, 'cniVersion is missing');
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(
      CNI_ERR.INCOMPATIBLE_VERSION,
      `CNI version ${echo(version)} is not supported`,
      `supported: ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  if (typeof d.name !== 'string' || d.name === '') throw new CniError(CNI_ERR.INVALID_NETCONF, 'network name ("name") is missing');
  if (d.name.length > 253 || !NETWORK_NAME.test(d.name)) {
    throw new CniError(
      CNI_ERR.INVALID_NETCONF,
      `network name ${echo(d.name)} is not letters, digits, "_", "." and "-" (at most 253, starting with a letter or digit)`,
    );
  }
  if (typeof d.type !== 'string' || d.type === '') throw new CniError(CNI_ERR.INVALID_NETCONF, 'plugin type ("type") is missing');
  if (d.type !== 'tabby' && d.type !== 'tabby-ipam') {
    throw new CniError(
      CNI_ERR.INVALID_NETCONF,
      `plugin type ${echo(d.type)} is not handled by this plugin (expected "tabby" or "tabby-ipam")`,
    );
  }
  const ipamRaw = d.ipam === undefined ? { type: 'tabby-ipam' } : d.ipam;
  if (!isObj(ipamRaw)) throw new CniError(CNI_ERR.INVALID_NETCONF, '"ipam" must be an object');
  const ipamType = ipamRaw.type ?? 'tabby-ipam';
  if (d.type === 'tabby' && ipamType !== 'tabby-ipam') {
    throw new CniError(
      CNI_ERR.UNSUPPORTED_FIELD,
      `ipam type ${echo(ipamType)} is not supported`,
      'the tabby plugin allocates through "tabby-ipam"',
    );
  }
  const ipam: IpamConf = {
    ...ipamRaw,
    type: String(ipamType),
    ipv4Pools: strList(ipamRaw.ipv4_pools, 'ipam.ipv4_pools'),
    ipv6Pools: strList(ipamRaw.ipv6_pools, 'ipam.ipv6_pools'),
    assignIpv4: boolish(ipamRaw.assign_ipv4, true, 'ipam.assign_ipv4'),
    assignIpv6: boolish(ipamRaw.assign_ipv6, false, 'ipam.assign_ipv6'),
  };
  let mtu: number | undefined;
  if (d.mtu !== undefined && d.mtu !== null && d.mtu !== '') {
    mtu = typeof d.mtu === 'string' ? Number(d.mtu) : (d.mtu as number);
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535)
      throw new CniError(CNI_ERR.INVALID_NETCONF, `mtu ${echo(d.mtu)} is not a number in 576..65535`);
  }
  if (d.nodename !== undefined && (typeof d.nodename !== 'string' || d.nodename.length > 253))
    throw new CniError(CNI_ERR.INVALID_NETCONF, '"nodename" must be a string (a node name, at most 253 characters)');
  if (d.log_level !== undefined && typeof d.log_level !== 'string')
    throw new CniError(CNI_ERR.INVALID_NETCONF, `log_level must be one of ${LOG_LEVELS.join(', ')}`);
  let logLevel: string;
  try {
    logLevel = parseLogLevel(d.log_level as string | undefined, 'log_level');
  } catch (e) {
    throw new CniError(CNI_ERR.INVALID_NETCONF, (e as Error).message);
  }
  const requested: string[] = [];
  const args = d.args;
  if (isObj(args) && isObj(args.cni)) requested.push(...strList(args.cni.ips, 'args.cni.ips'));
  const rc = d.runtimeConfig;
  if (isObj(rc) && rc.ips !== undefined) requested.push(...strList(rc.ips, 'runtimeConfig.ips'));
  if (d.prevResult !== undefined && !isObj(d.prevResult)) throw new CniError(CNI_ERR.INVALID_NETCONF, '"prevResult" must be an object');
  return {
    cniVersion: version as CniVersion,
    name: d.name,
    type: d.type,
    ipam,
    ...(typeof d.nodename === 'string' && d.nodename !== '' ? { nodename: d.nodename } : {}),
    ...(mtu !== undefined ? { mtu } : {}),
    logFilePath: typeof d.log_file_path === 'string' && d.log_file_path !== '' ? d.log_file_path : DEFAULT_LOG_FILE,
    logLevel,
    requestedIps: requested.map((s) => s.split('/')[0]!),
    ...(isObj(d.prevResult) ? { prevResult: d.prevResult } : {}),
    raw: d,
  };
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifName: string;
  args: Record<string, string>;
  path: string[];
}

/** CNI_ARGS: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;IgnoreUnknown=1". */
export function parseCniArgs(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const part of s.split(';')) {
    if (part === '') continue;
    const i = part.indexOf('=');
    if (i <= 0) throw new CniError(CNI_ERR.INVALID_ENV, `CNI_ARGS entry ${echo(part)} is not KEY=VALUE`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

/** The CNI_* variables a command needs (spec §"Parameters"); missing ones are error 4. */
export function parseCniEnv(env: NodeJS.ProcessEnv): CniEnv {
  const cmd = env.CNI_COMMAND;
  if (!cmd)
    throw new CniError(
      CNI_ERR.INVALID_ENV,
      'CNI_COMMAND is not set',
      'run by a container runtime: CNI_COMMAND=ADD|DEL|CHECK|VERSION|STATUS|GC',
    );
  if (!['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'].includes(cmd))
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_COMMAND ${echo(cmd)} is not one of ADD, DEL, CHECK, VERSION, STATUS, GC`);
  const command = cmd as CniCommand;
  const need = (name: string): string => {
    const v = env[name];
    if (v === undefined || v === '') throw new CniError(CNI_ERR.INVALID_ENV, `${name} is not set (required for ${command})`);
    return v;
  };
  const perCommand = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  const containerId = perCommand ? need('CNI_CONTAINERID') : (env.CNI_CONTAINERID ?? '');
  const ifName = perCommand ? need('CNI_IFNAME') : (env.CNI_IFNAME ?? '');
  const netns = command === 'ADD' || command === 'CHECK' ? need('CNI_NETNS') : (env.CNI_NETNS ?? '');
  if (perCommand && (containerId.length > 1024 || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId))) {
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_CONTAINERID ${echo(containerId)} must be alphanumeric (with _ . -)`);
  }
  if (perCommand && (ifName.length > 15 || /[\s/:]/.test(ifName) || ifName === '.' || ifName === '..')) {
    throw new CniError(CNI_ERR.INVALID_ENV, `CNI_IFNAME ${echo(ifName)} is not a valid interface name`);
  }
  try {
    parseLogLevel(env.TABBY_LOG_LEVEL, 'TABBY_LOG_LEVEL');
  } catch (e) {
    throw new CniError(CNI_ERR.INVALID_ENV, (e as Error).message);
  }
  return {
    command,
    containerId,
    netns,
    ifName,
    args: parseCniArgs(env.CNI_ARGS),
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
  };
}

/** CNI 1.1 GC: the `cni.dev/valid-attachments` list, which must be there and well-formed — GC without
 *  it would release the addresses of live pods. Returns the container IDs to keep; throws code 7. */
export function parseValidAttachments(raw: Record<string, unknown>): Set<string> {
  const key = 'cni.dev/valid-attachments';
  const list = raw[key];
  if (!Array.isArray(list)) {
    throw new CniError(
      CNI_ERR.INVALID_NETCONF,
      `GC needs "${key}" as a list of {containerID, ifname}: refused, nothing released`,
      list === undefined ? 'it is missing' : `got ${echo(list)}`,
    );
  }
  const keep = new Set<string>();
  list.forEach((a: unknown, i) => {
    if (!isObj(a) || typeof a.containerID !== 'string' || a.containerID === '' || typeof a.ifname !== 'string') {
      throw new CniError(
        CNI_ERR.INVALID_NETCONF,
        `GC: "${key}"[${i}] must be {containerID: string, ifname: string}: refused, nothing released`,
        `got ${echo(a)}`,
      );
    }
    keep.add(a.containerID);
  });
  return keep;
}

/** CHECK: the addresses of prevResult.ips (each an object with a string "address"); throws code 7. */
export function prevResultAddresses(prev: Record<string, unknown>): string[] {
  const ips = prev.ips ?? [];
  if (!Array.isArray(ips)) throw new CniError(CNI_ERR.INVALID_NETCONF, 'prevResult.ips must be a list', `got ${echo(ips)}`);
  return ips.map((ip: unknown, i) => {
    if (!isObj(ip) || typeof ip.address !== 'string')
      throw new CniError(CNI_ERR.INVALID_NETCONF, `prevResult.ips[${i}] must be an object with a string "address"`, `got ${echo(ip)}`);
    return ip.address;
  });
}
