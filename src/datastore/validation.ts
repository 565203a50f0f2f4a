// Validation and defaulting of the projectcalico.org/v3 resources tabby understands, with messages
// that name the resource and the field: `IPPool "p1": spec.blockSize 33 is out of range 20..32 for IPv4`.
// Every problem in a document is collected before throwing, so a user fixes a file in one pass.
// Pure: no datastore access (cross-resource checks such as pool overlap live in resources.ts).
import { parseDuration } from '../common/duration.js';
import { parseCidr, cidrsOverlap, formatCidr, formatIp, formatIpWithPrefix, tryParseIp, type Cidr } from '../common/ip.js';
import { parseSelector, type SelectorError } from './selector.js';
import { checkBGPFilter } from './bgpfilter.js';
import { checkIPReservation } from './ipreservation.js';
import { parseCommunity } from '../bgp/filter/engine.js';
import { echo } from '../common/echo.js';
import {
  checkGlobalNetworkPolicy,
  checkNetworkPolicy,
  checkProfile,
  checkWorkloadEndpoint,
  NAMESPACED_KINDS,
} from './policy-validation.js';
import { convertK8sNetworkPolicy, isK8sNetworkPolicy } from './k8s-networkpolicy.js';

export const API_VERSION = 'projectcalico.org/v3';
export const KINDS = [
  'IPPool',
  'BGPConfiguration',
  'BGPPeer',
  'Node',
  'BGPFilter',
  'IPReservation',
  'WorkloadEndpoint',
  'NetworkPolicy',
  'GlobalNetworkPolicy',
  'Profile',
] as const;
export type ResourceKind = (typeof KINDS)[number];

export class ValidationError extends Error {
  readonly code = 'EVALIDATION';
  constructor(
    readonly kind: string,
    readonly resourceName: string,
    readonly problems: string[],
  ) {
    super(`${kind}${resourceName ? ` ${echo(resourceName)}` : ''}: ${problems.join('; ')}`);
    this.name = 'ValidationError';
  }
}

export { parseDuration };

export class InvalidAsn extends Error {
  readonly code = 'EINVALIDASN';
  constructor(
    readonly input: unknown,
    reason: string,
  ) {
    super(`invalid AS number ${echo(input)}: ${reason}`);
    this.name = 'InvalidAsn';
  }
}

/** AS number as plain (64512, "4200000000") or asdot ("64512.100" = 64512*65536+100), RFC 5396. 0 is reserved (RFC 7607). */
export function parseAsn(input: unknown): number {
  let n: number;
  if (typeof input === 'number') {
    n = input;
  } else if (typeof input === 'string') {
    const s = input.trim();
    const dot = /^(\d{1,5})\.(\d{1,5})$/.exec(s);
    if (dot) {
      const hi = Number(dot[1]),
        lo = Number(dot[2]);
      if (hi > 65535 || lo > 65535) throw new InvalidAsn(input, 'each half of the asdot form must be 0..65535');
      n = hi * 65536 + lo;
    } else if (/^\d{1,10}$/.test(s)) {
      n = Number(s);
    } else {
      throw new InvalidAsn(input, 'expected a number 1..4294967295 or the asdot form "64512.100"');
    }
  } else {
    throw new InvalidAsn(input, 'expected a number or a string');
  }
  if (!Number.isInteger(n) || n < 0 || n > 4294967295) throw new InvalidAsn(input, 'out of range 1..4294967295');
  if (n === 0) throw new InvalidAsn(input, 'AS 0 is reserved (RFC 7607)');
  return n;
}

/** asdot+ text of a 4-byte AS ("64512.100") or plain for 2-byte ones. */
export function formatAsnDot(asn: number): string {
  return asn > 65535 ? `${Math.floor(asn / 65536)}.${asn % 65536}` : String(asn);
}

// ------------------------------------------------------------------ a tiny field-checking kit

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A value from the user in a message: quoted, cut, control characters escaped. */
const show = (v: unknown): string => echo(v);

export class Checker {
  readonly problems: string[] = [];
  add(msg: string): void {
    this.problems.push(msg);
  }

  /** Unknown fields are errors (a typo must not silently become a default). */
  known(o: Obj, path: string, fields: readonly string[]): void {
    for (const k of Object.keys(o)) if (!fields.includes(k)) this.add(`unknown field ${path}${k}`);
  }
  string(o: Obj, k: string, path: string): string | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') {
      this.add(`${path}${k} must be a string, got ${show(v)}`);
      return undefined;
    }
    return v;
  }
  bool(o: Obj, k: string, path: string): boolean | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') {
      this.add(`${path}${k} must be true or false, got ${show(v)}`);
      return undefined;
    }
    return v;
  }
  int(o: Obj, k: string, path: string, min: number, max: number): number | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      this.add(`${path}${k} must be an integer, got ${show(v)}`);
      return undefined;
    }
    if (v < min || v > max) {
      this.add(`${path}${k} ${v} is out of range ${min}..${max}`);
      return undefined;
    }
    return v;
  }
  oneOf<T extends string>(o: Obj, k: string, path: string, allowed: readonly T[]): T | undefined {
    const v = this.string(o, k, path);
    if (v === undefined) return undefined;
    const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
    if (!hit) {
      this.add(`${path}${k} ${show(v)} is not one of ${allowed.join(', ')}`);
      return undefined;
    }
    return hit;
  }
  asn(o: Obj, k: string, path: string): number | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    try {
      return parseAsn(v);
    } catch (e) {
      this.add(`${path}${k} ${show(v)} is not a valid AS number: ${(e as InvalidAsn).message.replace(/^invalid AS number [^:]*: /, '')}`);
      return undefined;
    }
  }
  cidr(o: Obj, k: string, path: string, family?: 4 | 6): Cidr | undefined {
    const v = this.string(o, k, path);
    if (v === undefined) return undefined;
    try {
      const c = parseCidr(v, { requirePrefix: true });
      if (family && c.family !== family) {
        this.add(`${path}${k} ${show(v)} is not an IPv${family} CIDR`);
        return undefined;
      }
      return c;
    } catch (e) {
      this.add(`${path}${k} ${show(v)} is not a valid CIDR: ${reason(e)}`);
      return undefined;
    }
  }
  ip(o: Obj, k: string, path: string, family?: 4 | 6): string | undefined {
    const v = this.string(o, k, path);
    if (v === undefined) return undefined;
    const ip = tryParseIp(v);
    if (!ip) {
      this.add(`${path}${k} ${show(v)} is not a valid IP address`);
      return undefined;
    }
    if (family && ip.family !== family) {
      this.add(`${path}${k} ${show(v)} is not an IPv${family} address`);
      return undefined;
    }
    return formatIp(ip);
  }
  selector(o: Obj, k: string, path: string): string | undefined {
    const v = this.string(o, k, path);
    if (v === undefined) return undefined;
    try {
      parseSelector(v);
      return v;
    } catch (e) {
      this.add(`${path}${k} ${show(v)} is not a valid selector: ${(e as SelectorError).message.replace(/^invalid selector "[^"]*" /, '')}`);
      return undefined;
    }
  }
  duration(o: Obj, k: string, path: string): string | undefined {
    const v = this.string(o, k, path);
    if (v === undefined) return undefined;
    if (parseDuration(v) === undefined) {
      this.add(`${path}${k} ${show(v)} is not a duration like "120s" or "2m"`);
      return undefined;
    }
    return v;
  }
  object(o: Obj, k: string, path: string): Obj | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) {
      this.add(`${path}${k} must be a mapping, got ${show(v)}`);
      return undefined;
    }
    return v;
  }
  array(o: Obj, k: string, path: string): unknown[] | undefined {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.add(`${path}${k} must be a list, got ${show(v)}`);
      return undefined;
    }
    return v;
  }
}

function reason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.replace(/^invalid address "[^"]*": /, '');
}

/** Lowercase RFC 1123 subdomain, as Kubernetes and Calico require for names. */
const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_KEY_RE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE_RE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

// ------------------------------------------------------------------ per-kind specs

const POOL_MODES = ['Always', 'CrossSubnet', 'Never'] as const;

function checkIPPool(c: Checker, name: string, spec: Obj): Obj {
  c.known(spec, 'spec.', [
    'cidr',
    'blockSize',
    'ipipMode',
    'vxlanMode',
    'natOutgoing',
    'disabled',
    'disableBGPExport',
    'nodeSelector',
    'allowedUses',
    'assignmentMode',
  ]);
  const out: Obj = {};
  if (spec.cidr === undefined) c.add('spec.cidr is required');
  const cidr = c.cidr(spec, 'cidr', 'spec.');
  const family = cidr?.family;
  const blockSize = c.int(spec, 'blockSize', 'spec.', 0, 128);
  const ipipMode = c.oneOf(spec, 'ipipMode', 'spec.', POOL_MODES);
  const vxlanMode = c.oneOf(spec, 'vxlanMode', 'spec.', POOL_MODES);
  const natOutgoing = c.bool(spec, 'natOutgoing', 'spec.');
  const disabled = c.bool(spec, 'disabled', 'spec.');
  const disableBGPExport = c.bool(spec, 'disableBGPExport', 'spec.');
  const nodeSelector = c.selector(spec, 'nodeSelector', 'spec.');
  const assignmentMode = c.oneOf(spec, 'assignmentMode', 'spec.', ['Automatic', 'Manual'] as const);
  const uses = c.array(spec, 'allowedUses', 'spec.');
  let allowedUses: string[] | undefined;
  if (uses) {
    allowedUses = [];
    uses.forEach((u, i) => {
      const hit = ['Workload', 'Tunnel'].find((a) => typeof u === 'string' && a.toLowerCase() === u.toLowerCase());
      if (!hit) c.add(`spec.allowedUses[${i}] ${show(u)} is not one of Workload, Tunnel`);
      else allowedUses!.push(hit);
    });
  }
  if (cidr) {
    out.cidr = formatCidr(cidr);
    const [lo, hi, dflt] = family === 4 ? [20, 32, 26] : [116, 128, 122];
    const bs = blockSize ?? dflt;
    if (blockSize !== undefined && (blockSize < lo || blockSize > hi)) {
      c.add(`spec.blockSize ${blockSize} is out of range ${lo}..${hi} for IPv${family}`);
    } else if (cidr.prefixLen > bs) {
      c.add(
        `spec.cidr ${show(spec.cidr)} is smaller than one block: its prefix length ${cidr.prefixLen} must be at most spec.blockSize ${bs}`,
      );
    }
    out.blockSize = bs;
    const linkLocal = family === 4 ? parseCidr('169.254.0.0/16') : parseCidr('fe80::/10');
    if (cidrsOverlap(cidr, linkLocal)) c.add(`spec.cidr ${show(spec.cidr)} overlaps the link-local range ${formatCidr(linkLocal)}`);
    if (family === 6 && ipipMode && ipipMode !== 'Never')
      c.add(`spec.ipipMode ${ipipMode} is not supported for an IPv6 pool (IPIP carries IPv4 only)`);
  }
  if (ipipMode && ipipMode !== 'Never' && vxlanMode && vxlanMode !== 'Never') {
    c.add(`spec.ipipMode ${ipipMode} and spec.vxlanMode ${vxlanMode} cannot both be enabled`);
  }
  out.ipipMode = ipipMode ?? 'Never';
  out.vxlanMode = vxlanMode ?? 'Never';
  out.natOutgoing = natOutgoing ?? false;
  out.disabled = disabled ?? false;
  if (disableBGPExport !== undefined) out.disableBGPExport = disableBGPExport;
  out.nodeSelector = nodeSelector ?? 'all()';
  out.allowedUses = allowedUses ?? ['Workload', 'Tunnel'];
  if (assignmentMode) out.assignmentMode = assignmentMode;
  void name;
  return out;
}

function checkCidrList(c: Checker, spec: Obj, k: string, out: Obj): void {
  const list = c.array(spec, k, 'spec.');
  if (!list) return;
  out[k] = list.map((item, i) => {
    const p = `spec.${k}[${i}].`;
    if (!isObj(item)) {
      c.add(`spec.${k}[${i}] must be a mapping like {cidr: 10.96.0.0/12}`);
      return item;
    }
    c.known(item, p, ['cidr']);
    const cidr = c.cidr(item, 'cidr', p);
    if (item.cidr === undefined) c.add(`${p}cidr is required`);
    return cidr ? { cidr: formatCidr(cidr) } : item;
  });
}

function checkBGPConfiguration(c: Checker, name: string, spec: Obj): Obj {
  c.known(spec, 'spec.', [
    'logSeverityScreen',
    'nodeToNodeMeshEnabled',
    'asNumber',
    'listenPort',
    'serviceClusterIPs',
    'serviceExternalIPs',
    'serviceLoadBalancerIPs',
    'communities',
    'prefixAdvertisements',
    'nodeMeshPassword',
    'nodeMeshMaxRestartTime',
    'nodeMeshBFD',
    'bindMode',
    'ignoredInterfaces',
    'localWorkloadPeeringIPV4',
    'localWorkloadPeeringIPV6',
    'serviceLoadBalancerAggregation',
  ]);
  const isDefault = name === 'default';
  if (!isDefault && !name.startsWith('node.')) c.add(`metadata.name must be "default" or "node.<nodename>" for a BGPConfiguration`);
  const out: Obj = {};
  const sev = c.oneOf(spec, 'logSeverityScreen', 'spec.', ['Debug', 'Info', 'Warning', 'Error', 'Fatal'] as const);
  const mesh = c.bool(spec, 'nodeToNodeMeshEnabled', 'spec.');
  const asn = c.asn(spec, 'asNumber', 'spec.');
  const port = c.int(spec, 'listenPort', 'spec.', 1, 65535);
  if (!isDefault && mesh !== undefined) c.add('spec.nodeToNodeMeshEnabled can only be set on the "default" BGPConfiguration');
  if (!isDefault && asn !== undefined) c.add('spec.asNumber can only be set on the "default" BGPConfiguration');
  if (isDefault) {
    out.logSeverityScreen = sev ?? 'Info';
    out.nodeToNodeMeshEnabled = mesh ?? true;
    out.asNumber = asn ?? 64512;
    out.listenPort = port ?? 179;
  } else {
    if (sev) out.logSeverityScreen = sev;
    if (port !== undefined) out.listenPort = port;
  }
  for (const k of ['serviceClusterIPs', 'serviceExternalIPs', 'serviceLoadBalancerIPs']) checkCidrList(c, spec, k, out);
  const lbAgg = c.oneOf(spec, 'serviceLoadBalancerAggregation', 'spec.', ['Enabled', 'Disabled'] as const);
  if (lbAgg) out.serviceLoadBalancerAggregation = lbAgg;
  const bind = c.oneOf(spec, 'bindMode', 'spec.', ['None', 'NodeIP'] as const);
  if (bind) out.bindMode = bind;
  const mrt = c.duration(spec, 'nodeMeshMaxRestartTime', 'spec.');
  if (mrt) out.nodeMeshMaxRestartTime = mrt;
  const comms = c.array(spec, 'communities', 'spec.');
  if (comms) {
    out.communities = comms.map((item, i) => {
      const p = `spec.communities[${i}].`;
      if (!isObj(item)) {
        c.add(`spec.communities[${i}] must be a mapping {name, value}`);
        return item;
      }
      c.known(item, p, ['name', 'value']);
      const n = c.string(item, 'name', p);
      if (n === undefined || n === '') c.add(`${p}name is required`);
      const v = c.string(item, 'value', p);
      if (v === undefined) c.add(`${p}value is required`);
      else if (!parseCommunity(v))
        c.add(`${p}value ${show(v)} is not a community "aa:nn" (0..65535 each) or large community "aa:nn:mm" (0..4294967295 each)`);
      return item;
    });
  }
  const adv = c.array(spec, 'prefixAdvertisements', 'spec.');
  if (adv) {
    out.prefixAdvertisements = adv.map((item, i) => {
      const p = `spec.prefixAdvertisements[${i}].`;
      if (!isObj(item)) {
        c.add(`spec.prefixAdvertisements[${i}] must be a mapping {cidr, communities}`);
        return item;
      }
      c.known(item, p, ['cidr', 'communities']);
      const cidr = c.cidr(item, 'cidr', p);
      if (item.cidr === undefined) c.add(`${p}cidr is required`);
      const names = new Set((Array.isArray(spec.communities) ? spec.communities : []).map((x) => (isObj(x) ? x.name : undefined)));
      (c.array(item, 'communities', p) ?? []).forEach((x, j) => {
        // Calico: each entry is the name of a spec.communities entry or a literal community value.
        if (typeof x !== 'string' || (!names.has(x) && !parseCommunity(x)))
          c.add(`${p}communities[${j}] ${show(x)} is neither a name from spec.communities nor a community value`);
      });
      return cidr ? { ...item, cidr: formatCidr(cidr) } : item;
    });
  }
  const meshPw = checkPassword(c, spec, 'nodeMeshPassword');
  if (meshPw) out.nodeMeshPassword = meshPw;
  const meshBfd = checkBfd(c, spec, 'nodeMeshBFD');
  if (meshBfd) out.nodeMeshBFD = meshBfd;
  // Calico keeps these interfaces' routes out of BIRD's `protocol direct`; tabby leaves them out of its
  // interface routes the same way (src/agent/interface-routes.ts). Each entry checked as a name/glob.
  const ignored = c.array(spec, 'ignoredInterfaces', 'spec.');
  (ignored ?? []).forEach((v, i) => {
    if (typeof v !== 'string' || v === '' || v.length > 64 || /[\s/]/.test(v))
      c.add(`spec.ignoredInterfaces[${i}] must be an interface name or glob (e.g. "eth1", "ens*")`);
  });
  for (const k of ['localWorkloadPeeringIPV4', 'localWorkloadPeeringIPV6'])
    if (spec[k] !== undefined && spec[k] !== '')
      c.add(`spec.${k} is not supported by tabby: it makes no BGP sessions with local workloads (BGPPeer localWorkloadSelector)`);
  if (spec.ignoredInterfaces !== undefined) out.ignoredInterfaces = spec.ignoredInterfaces;
  return out;
}

/** BFD (RFC 5880) of a BGP session — chose MetalLB's BFDProfile field names (Calico open source has no
 *  BFD): {transmitInterval, receiveInterval (durations, 10ms..60s), detectMultiplier (2..255)}; `{}` = 300ms × 3. */
function checkBfd(c: Checker, spec: Obj, k: string): Obj | undefined {
  const b = c.object(spec, k, 'spec.');
  if (!b) return undefined;
  const p = `spec.${k}.`;
  c.known(b, p, ['transmitInterval', 'receiveInterval', 'detectMultiplier']);
  const out: Obj = {};
  for (const f of ['transmitInterval', 'receiveInterval']) {
    const d = c.duration(b, f, p);
    if (d === undefined) continue;
    const ms = parseDuration(d)!;
    if (ms < 10 || ms > 60_000) c.add(`${p}${f} ${show(d)} is out of range 10ms..60s`);
    else out[f] = d;
  }
  const m = c.int(b, 'detectMultiplier', p, 2, 255);
  if (m !== undefined) out.detectMultiplier = m;
  return out;
}

/** A secret name or key is one path component of $TABBY_SECRETS_DIR/<name>/<key>. */
const SECRET_PART = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** `{secretKeyRef: {name, key}}` (Calico's password fields); the value lives in a secret, never here. */
function checkPassword(c: Checker, spec: Obj, k: string): Obj | undefined {
  const pw = c.object(spec, k, 'spec.');
  if (!pw) return undefined;
  const p = `spec.${k}.`;
  c.known(pw, p, ['secretKeyRef']);
  const ref = c.object(pw, 'secretKeyRef', p);
  if (!ref) {
    c.add(`${p}secretKeyRef is required (a password is always a reference to a secret)`);
    return pw;
  }
  c.known(ref, `${p}secretKeyRef.`, ['name', 'key']);
  for (const f of ['name', 'key']) {
    const v = c.string(ref, f, `${p}secretKeyRef.`);
    if (!v) c.add(`${p}secretKeyRef.${f} is required`);
    else if (!SECRET_PART.test(v))
      c.add(`${p}secretKeyRef.${f} ${show(v)} must be letters, digits, ".", "_" or "-" (not starting with ".")`);
  }
  return pw;
}

/** peerIP may carry a port: "10.0.0.1", "10.0.0.1:1179", "[fd00::1]:1179", "fd00::1". */
function checkPeerIP(c: Checker, v: string): string | undefined {
  let host = v,
    port: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(v);
  if (bracket) {
    host = bracket[1]!;
    port = bracket[2];
  } else {
    const v4port = /^([\d.]+):(\d+)$/.exec(v);
    if (v4port) {
      host = v4port[1]!;
      port = v4port[2];
    }
  }
  const ip = tryParseIp(host);
  if (!ip) {
    c.add(`spec.peerIP ${show(v)} is not an IP address (optionally with :port)`);
    return undefined;
  }
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    c.add(`spec.peerIP ${show(v)} has port ${port} out of range 1..65535`);
    return undefined;
  }
  const text = formatIp(ip);
  return port === undefined ? text : ip.family === 6 ? `[${text}]:${port}` : `${text}:${port}`;
}

function checkBGPPeer(c: Checker, _name: string, spec: Obj): Obj {
  c.known(spec, 'spec.', [
    'node',
    'peerIP',
    'asNumber',
    'nodeSelector',
    'peerSelector',
    'keepOriginalNextHop',
    'password',
    'sourceAddress',
    'maxRestartTime',
    'numAllowedLocalASNumbers',
    'ttlSecurity',
    'reachableBy',
    'filters',
    'localWorkloadSelector',
    'nextHopMode',
    'reversePeering',
    'bfd',
    'localASNumber',
  ]);
  const out: Obj = {};
  const node = c.string(spec, 'node', 'spec.');
  const nodeSelector = c.selector(spec, 'nodeSelector', 'spec.');
  const peerSelector = c.selector(spec, 'peerSelector', 'spec.');
  const peerIPText = c.string(spec, 'peerIP', 'spec.');
  const peerIP = peerIPText === undefined ? undefined : checkPeerIP(c, peerIPText);
  const asn = c.asn(spec, 'asNumber', 'spec.');
  if (node !== undefined && spec.nodeSelector !== undefined) c.add('spec.node and spec.nodeSelector cannot both be set');
  if (spec.peerIP !== undefined && spec.peerSelector !== undefined) c.add('spec.peerIP and spec.peerSelector cannot both be set');
  if (spec.peerIP === undefined && spec.peerSelector === undefined) c.add('one of spec.peerIP or spec.peerSelector is required');
  if (spec.peerIP !== undefined && spec.asNumber === undefined) c.add('spec.asNumber is required with spec.peerIP');
  if (spec.peerSelector !== undefined && spec.asNumber !== undefined)
    c.add("spec.asNumber must be empty with spec.peerSelector (the peers' own AS numbers are used)");
  if (node !== undefined) out.node = node;
  if (nodeSelector !== undefined) out.nodeSelector = nodeSelector;
  if (peerIP !== undefined) out.peerIP = peerIP;
  if (peerSelector !== undefined) out.peerSelector = peerSelector;
  if (asn !== undefined) out.asNumber = asn;
  const konh = c.bool(spec, 'keepOriginalNextHop', 'spec.');
  if (konh !== undefined) out.keepOriginalNextHop = konh;
  const pw = checkPassword(c, spec, 'password');
  if (pw) out.password = pw;
  const src = c.oneOf(spec, 'sourceAddress', 'spec.', ['UseNodeIP', 'None'] as const);
  if (src) out.sourceAddress = src;
  const mrt = c.duration(spec, 'maxRestartTime', 'spec.');
  if (mrt) out.maxRestartTime = mrt;
  const bfd = checkBfd(c, spec, 'bfd');
  if (bfd) out.bfd = bfd;
  const nal = c.int(spec, 'numAllowedLocalASNumbers', 'spec.', 0, 10);
  if (nal !== undefined) out.numAllowedLocalASNumbers = nal;
  const ttl = c.int(spec, 'ttlSecurity', 'spec.', 0, 255);
  if (ttl !== undefined) out.ttlSecurity = ttl;
  const rb = c.ip(spec, 'reachableBy', 'spec.');
  if (rb) {
    // The gateway of a static route to the peer's address: needs that address, in the same family.
    const peerFamily = peerIP === undefined ? undefined : peerIP.includes(':') && !/^[\d.]+:\d+$/.test(peerIP) ? 6 : 4;
    if (peerFamily === undefined) c.add('spec.reachableBy needs spec.peerIP (it is the gateway of a route to that address)');
    else if ((rb.includes(':') ? 6 : 4) !== peerFamily)
      c.add(`spec.reachableBy ${rb} is not in the address family of spec.peerIP ${peerIP} (it is the gateway of the route to the peer)`);
    out.reachableBy = rb;
  }
  const filters = c.array(spec, 'filters', 'spec.');
  if (filters) {
    filters.forEach((f, i) => {
      if (typeof f !== 'string' || !NAME_RE.test(f)) c.add(`spec.filters[${i}] ${show(f)} is not a BGPFilter name`);
    });
    out.filters = filters;
  }
  const lws = c.selector(spec, 'localWorkloadSelector', 'spec.');
  if (lws) c.add('spec.localWorkloadSelector (BGP sessions with local workloads) is not supported by tabby: no such session would be made');
  const localAsn = c.asn(spec, 'localASNumber', 'spec.');
  if (localAsn !== undefined) out.localASNumber = localAsn;
  const nhm = c.oneOf(spec, 'nextHopMode', 'spec.', ['Auto', 'Self', 'Keep'] as const);
  if (nhm) out.nextHopMode = nhm;
  const rp = c.oneOf(spec, 'reversePeering', 'spec.', ['Auto', 'Manual'] as const);
  if (rp) out.reversePeering = rp;
  return out;
}

/** Node.spec.bgp.ipv4Address is "address/prefix" (a bare address gets /32 or /128). */
function checkAddrWithPrefix(c: Checker, o: Obj, k: string, path: string, family: 4 | 6): string | undefined {
  const v = c.string(o, k, path);
  if (v === undefined) return undefined;
  try {
    const cidr = parseCidr(v);
    if (cidr.family !== family) {
      c.add(`${path}${k} ${show(v)} is not an IPv${family} address`);
      return undefined;
    }
    return formatIpWithPrefix(cidr);
  } catch (e) {
    c.add(`${path}${k} ${show(v)} is not an IPv${family} address with prefix: ${reason(e)}`);
    return undefined;
  }
}

function checkNode(c: Checker, _name: string, spec: Obj): Obj {
  c.known(spec, 'spec.', [
    'bgp',
    'ipv4VXLANTunnelAddr',
    'ipv6VXLANTunnelAddr',
    'vxlanTunnelMACAddr',
    'vxlanTunnelMACAddrV6',
    'addresses',
    'orchRefs',
    'wireguard',
    'interfaceName',
  ]);
  const out: Obj = {};
  const bgp = c.object(spec, 'bgp', 'spec.');
  if (bgp) {
    const p = 'spec.bgp.';
    c.known(bgp, p, ['ipv4Address', 'ipv6Address', 'asNumber', 'routeReflectorClusterID', 'ipv4IPIPTunnelAddr']);
    const b: Obj = {};
    const v4 = checkAddrWithPrefix(c, bgp, 'ipv4Address', p, 4);
    if (v4) b.ipv4Address = v4;
    const v6 = checkAddrWithPrefix(c, bgp, 'ipv6Address', p, 6);
    if (v6) b.ipv6Address = v6;
    const asn = c.asn(bgp, 'asNumber', p);
    if (asn !== undefined) b.asNumber = asn;
    const rr = c.ip(bgp, 'routeReflectorClusterID', p, 4);
    if (rr) b.routeReflectorClusterID = rr;
    const tun = c.ip(bgp, 'ipv4IPIPTunnelAddr', p, 4);
    if (tun) b.ipv4IPIPTunnelAddr = tun;
    out.bgp = b;
  }
  const vx4 = c.ip(spec, 'ipv4VXLANTunnelAddr', 'spec.', 4);
  if (vx4) out.ipv4VXLANTunnelAddr = vx4;
  const vx6 = c.ip(spec, 'ipv6VXLANTunnelAddr', 'spec.', 6);
  if (vx6) out.ipv6VXLANTunnelAddr = vx6;
  for (const k of ['vxlanTunnelMACAddr', 'vxlanTunnelMACAddrV6']) {
    const mac = c.string(spec, k, 'spec.');
    if (mac !== undefined) {
      if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) c.add(`spec.${k} ${show(mac)} is not a MAC address like 66:d0:3b:1a:2c:4e`);
      else out[k] = mac.toLowerCase();
    }
  }
  const addrs = c.array(spec, 'addresses', 'spec.');
  if (addrs) {
    out.addresses = addrs.map((a, i) => {
      const p = `spec.addresses[${i}].`;
      if (!isObj(a)) {
        c.add(`spec.addresses[${i}] must be a mapping {address, type}`);
        return a;
      }
      c.known(a, p, ['address', 'type']);
      const addr = c.string(a, 'address', p);
      if (addr !== undefined && !tryParseIp(addr.split('/')[0]!)) c.add(`${p}address ${show(addr)} is not an IP address`);
      c.oneOf(a, 'type', p, ['CalicoNodeIP', 'InternalIP', 'ExternalIP'] as const);
      return a;
    });
  }
  for (const k of ['orchRefs', 'wireguard', 'interfaceName']) if (spec[k] !== undefined) out[k] = spec[k];
  return out;
}

const SPEC_CHECKERS: Record<ResourceKind, (c: Checker, name: string, spec: Obj) => Obj> = {
  IPPool: checkIPPool,
  BGPConfiguration: checkBGPConfiguration,
  BGPPeer: checkBGPPeer,
  Node: checkNode,
  BGPFilter: checkBGPFilter,
  IPReservation: checkIPReservation,
  WorkloadEndpoint: checkWorkloadEndpoint,
  NetworkPolicy: checkNetworkPolicy,
  GlobalNetworkPolicy: checkGlobalNetworkPolicy,
  Profile: checkProfile,
};

export interface ResourceMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  creationTimestamp?: string;
  uid?: string;
}

export interface AnyResource {
  apiVersion: typeof API_VERSION;
  kind: ResourceKind;
  metadata: ResourceMeta;
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** Validate one document and return it normalized (canonical CIDRs/IPs, numeric AS numbers) with
 *  every default filled in. Throws ValidationError listing every problem found. */
export function validateDocument(doc: unknown, where = ''): AnyResource {
  const c = new Checker();
  const prefix = where ? `${where}: ` : '';
  if (isK8sNetworkPolicy(doc)) doc = convertK8sNetworkPolicy(doc);
  if (!isObj(doc))
    throw new ValidationError(`${prefix}document`, '', [`expected a mapping with apiVersion, kind, metadata and spec, got ${show(doc)}`]);
  const kindText = typeof doc.kind === 'string' ? doc.kind : '';
  const kind = KINDS.find((k) => k === kindText);
  const meta = isObj(doc.metadata) ? doc.metadata : undefined;
  const name = meta && typeof meta.name === 'string' ? meta.name : '';
  if (!kind) {
    throw new ValidationError(`${prefix}${kindText || 'document'}`, name, [
      kindText ? `unknown kind "${kindText}" (tabby knows ${KINDS.join(', ')})` : 'kind is missing',
    ]);
  }
  c.known(doc, '', ['apiVersion', 'kind', 'metadata', 'spec', ...(kind === 'Node' ? ['status'] : [])]);
  if (doc.apiVersion !== API_VERSION) c.add(`apiVersion ${show(doc.apiVersion)} must be "${API_VERSION}"`);
  const metaOut: ResourceMeta = { name };
  if (!meta) c.add('metadata is required (with metadata.name)');
  else {
    c.known(meta, 'metadata.', [
      'name',
      'namespace',
      'labels',
      'annotations',
      'resourceVersion',
      'creationTimestamp',
      'uid',
      'generation',
      'managedFields',
    ]);
    if (!name) c.add('metadata.name is required');
    else if (name.length > 253 || !NAME_RE.test(name))
      c.add(`metadata.name ${show(name)} must be lowercase letters, digits, "-" and "." (at most 253 characters)`);
    const labels = c.object(meta, 'labels', 'metadata.');
    if (labels) {
      metaOut.labels = {};
      for (const [k, v] of Object.entries(labels)) {
        if (!LABEL_KEY_RE.test(k) || k.length > 316) c.add(`metadata.labels key ${show(k)} is not a valid label name`);
        else if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE_RE.test(v))
          c.add(`metadata.labels.${k} value ${show(v)} is not a valid label value`);
        else metaOut.labels[k] = v;
      }
    }
    const ann = c.object(meta, 'annotations', 'metadata.');
    if (ann) metaOut.annotations = Object.fromEntries(Object.entries(ann).map(([k, v]) => [k, String(v)]));
    if (meta.resourceVersion !== undefined && meta.resourceVersion !== null && meta.resourceVersion !== '') {
      const rv = String(meta.resourceVersion);
      if (!/^\d+$/.test(rv)) c.add(`metadata.resourceVersion ${show(meta.resourceVersion)} must be a number`);
      else metaOut.resourceVersion = rv;
    }
    const ts = c.string(meta, 'creationTimestamp', 'metadata.');
    if (ts) metaOut.creationTimestamp = ts;
    const uid = c.string(meta, 'uid', 'metadata.');
    if (uid) metaOut.uid = uid;
    const ns = c.string(meta, 'namespace', 'metadata.');
    if (NAMESPACED_KINDS.has(kind)) {
      if (ns !== undefined && ns !== '' && !NAME_RE.test(ns)) c.add(`metadata.namespace ${show(ns)} is not a valid namespace name`);
      metaOut.namespace = ns || 'default';
    } else if (ns) c.add(`metadata.namespace: a ${kind} is not namespaced`);
  }
  let spec: Obj = {};
  if (doc.spec === undefined || doc.spec === null) {
    if (kind === 'IPPool' || kind === 'BGPPeer') c.add('spec is required');
  } else if (!isObj(doc.spec)) c.add(`spec must be a mapping, got ${show(doc.spec)}`);
  else spec = doc.spec;
  const specOut = SPEC_CHECKERS[kind](c, name, spec);
  if (c.problems.length) throw new ValidationError(`${prefix}${kind}`, name, c.problems);
  const out: AnyResource = { apiVersion: API_VERSION, kind, metadata: metaOut, spec: specOut };
  if (kind === 'Node' && isObj(doc.status)) out.status = doc.status;
  return out;
}

export { isObj };
