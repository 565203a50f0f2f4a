// Validation and defaulting of the projectcalico.org/v3 resources tabby understands, with messages
// that name the resource and the field: `IPPool "p1": spec.blockSize 33 is out of range 20..32 for IPv4`.
// Every problem in a document is collected before throwing, so a user fixes a file in one pass.
// Pure: no datastore access (cross-resource checks such as pool overlap live in resources.ts).
import { parseDuration } from '../common/duration.js';
import { parseCidr, cidrsOverlap, formatCidr, formatIpWithPrefix, tryParseIp } from '../common/ip.js';
import { checkBGPFilter } from './bgpfilter.js';
import { Checker, LABEL_KEY_RE, LABEL_VALUE_RE, NAME_RE, isObj, reason, show, type Obj } from './check-kit.js';
import { checkBGPConfiguration, checkBGPPeer } from './bgp-validation.js';
import { checkIPReservation } from './ipreservation.js';
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

export { InvalidAsn, parseAsn, formatAsnDot } from './check-kit.js';
