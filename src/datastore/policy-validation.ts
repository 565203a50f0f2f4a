// Validation and defaults of the network-policy kinds (NetworkPolicy, GlobalNetworkPolicy, Profile,
// WorkloadEndpoint), registered in validation.ts's per-kind table. Calico's rules where Calico has one:
// ports need protocol TCP/UDP/SCTP/UDPLite, icmp needs ICMP/ICMPv6, a rule's ipVersion must agree with
// its nets and ICMP family, types default from the rules present. What tabby does not enforce is
// refused with a message saying so (doNotTrack, preDNAT, serviceAccount and HTTP matches), never
// accepted and silently ignored — a security rule that cannot be honoured must not look applied.
import { formatCidr, parseCidr } from '../common/ip.js';
import type { Checker } from './check-kit.js';
import type { PolicyPort, ProtocolName } from './policy-types.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => (typeof v === 'string' ? `"${v}"` : JSON.stringify(v));

const PROTOCOLS: readonly ProtocolName[] = ['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', 'UDPLite'];
const PORT_PROTOCOLS = new Set<string>(['TCP', 'UDP', 'SCTP', 'UDPLite', '6', '17', '132', '136']);
const NAMED_PORT_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const NOT_SUPPORTED = 'is not supported by tabby';

function protocol(c: Checker, o: Obj, k: string, path: string): ProtocolName | number | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 1 || v > 255) {
      c.add(`${path}${k} ${v} is out of range 1..255`);
      return undefined;
    }
    return v;
  }
  if (typeof v === 'string') {
    const hit = PROTOCOLS.find((p) => p.toLowerCase() === v.toLowerCase());
    if (hit) return hit;
    if (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= 255) return Number(v);
  }
  c.add(`${path}${k} ${show(v)} is not one of ${PROTOCOLS.join(', ')} or a number 1..255`);
  return undefined;
}

function ports(c: Checker, o: Obj, k: string, path: string): PolicyPort[] | undefined {
  const list = c.array(o, k, path);
  if (!list) return undefined;
  const out: PolicyPort[] = [];
  list.forEach((p, i) => {
    const at = `${path}${k}[${i}]`;
    if (typeof p === 'number') {
      if (!Number.isInteger(p) || p < 0 || p > 65535) c.add(`${at} ${p} is out of range 0..65535`);
      else out.push(p);
      return;
    }
    if (typeof p !== 'string') {
      c.add(`${at} ${show(p)} must be a port number, a range "lo:hi" or a port name`);
      return;
    }
    const range = /^(\d+):(\d+)$/.exec(p);
    if (/^\d+$/.test(p)) {
      const n = Number(p);
      if (n > 65535) c.add(`${at} ${show(p)} is out of range 0..65535`);
      else out.push(n);
    } else if (range) {
      const lo = Number(range[1]),
        hi = Number(range[2]);
      if (lo > 65535 || hi > 65535 || lo > hi) c.add(`${at} ${show(p)} is not a range lo:hi within 0..65535`);
      else out.push(lo === hi ? lo : `${lo}:${hi}`);
    } else if (p.length <= 15 && NAMED_PORT_RE.test(p) && /[a-z]/.test(p)) {
      out.push(p);
    } else c.add(`${at} ${show(p)} must be a port number, a range "lo:hi" or a port name (lowercase, at most 15 characters)`);
  });
  return out;
}

function icmp(c: Checker, o: Obj, k: string, path: string): Obj | undefined {
  const v = c.object(o, k, path);
  if (!v) return undefined;
  const p = `${path}${k}.`;
  c.known(v, p, ['type', 'code']);
  const type = c.int(v, 'type', p, 0, 254);
  const code = c.int(v, 'code', p, 0, 255);
  if (code !== undefined && type === undefined) c.add(`${p}code needs ${p}type`);
  return { ...(type !== undefined ? { type } : {}), ...(code !== undefined ? { code } : {}) };
}

/** nets/notNets: canonical CIDRs; returns the families seen. */
function nets(c: Checker, o: Obj, k: string, path: string, out: Obj, fams: Set<4 | 6>): void {
  const list = c.array(o, k, path);
  if (!list) return;
  const res: string[] = [];
  list.forEach((n, i) => {
    if (typeof n !== 'string') {
      c.add(`${path}${k}[${i}] ${show(n)} must be a CIDR string`);
      return;
    }
    try {
      const cidr = parseCidr(n);
      fams.add(cidr.family);
      res.push(formatCidr(cidr));
    } catch (e) {
      c.add(`${path}${k}[${i}] ${show(n)} is not a valid CIDR: ${(e as Error).message.replace(/^invalid address "[^"]*": /, '')}`);
    }
  });
  out[k] = res;
}

function entity(c: Checker, o: Obj, k: string, path: string, proto: ProtocolName | number | undefined, fams: Set<4 | 6>): Obj | undefined {
  const e = c.object(o, k, path);
  if (!e) return undefined;
  const p = `${path}${k}.`;
  c.known(e, p, ['nets', 'notNets', 'selector', 'notSelector', 'namespaceSelector', 'ports', 'notPorts', 'serviceAccounts', 'services']);
  const out: Obj = {};
  nets(c, e, 'nets', p, out, fams);
  nets(c, e, 'notNets', p, out, new Set());
  for (const s of ['selector', 'notSelector', 'namespaceSelector']) {
    const v = c.selector(e, s, p);
    if (v !== undefined && v.trim() !== '') out[s] = v;
  }
  for (const s of ['ports', 'notPorts']) {
    const v = ports(c, e, s, p);
    if (v === undefined) continue;
    if (v.length && (proto === undefined || !PORT_PROTOCOLS.has(String(proto)))) {
      c.add(`${p}${s} needs protocol TCP, UDP, SCTP or UDPLite on the rule${proto === undefined ? '' : ` (it is ${proto})`}`);
    }
    if (v.length) out[s] = v;
  }
  if (e.serviceAccounts !== undefined) c.add(`${p}serviceAccounts ${NOT_SUPPORTED} (select the pods by label instead)`);
  if (e.services !== undefined) c.add(`${p}services ${NOT_SUPPORTED} (match the service's pods by selector, or its addresses by nets)`);
  return out;
}

export function checkRules(c: Checker, spec: Obj, k: 'ingress' | 'egress', opts: { pass: boolean }): Obj[] | undefined {
  const list = c.array(spec, k, 'spec.');
  if (!list) return undefined;
  return list.map((r, i) => {
    const p = `spec.${k}[${i}].`;
    if (!isObj(r)) {
      c.add(`spec.${k}[${i}] must be a mapping with at least an action`);
      return {};
    }
    c.known(r, p, ['action', 'ipVersion', 'protocol', 'notProtocol', 'icmp', 'notICMP', 'source', 'destination', 'http', 'metadata']);
    const out: Obj = {};
    if (r.action === undefined) c.add(`${p}action is required (Allow, Deny, Log or Pass)`);
    const action = c.oneOf(r, 'action', p, ['Allow', 'Deny', 'Log', 'Pass'] as const);
    if (action === 'Pass' && !opts.pass) c.add(`${p}action Pass is only meaningful in a policy, not in a Profile`);
    if (action) out.action = action;
    const ipVersion = r.ipVersion === 4 || r.ipVersion === 6 ? r.ipVersion : undefined;
    if (r.ipVersion !== undefined && r.ipVersion !== null && ipVersion === undefined)
      c.add(`${p}ipVersion ${show(r.ipVersion)} must be 4 or 6`);
    if (ipVersion) out.ipVersion = ipVersion;
    const proto = protocol(c, r, 'protocol', p);
    if (proto !== undefined) out.protocol = proto;
    const notProto = protocol(c, r, 'notProtocol', p);
    if (notProto !== undefined) out.notProtocol = notProto;
    const fams = new Set<4 | 6>();
    for (const s of ['icmp', 'notICMP']) {
      const v = icmp(c, r, s, p);
      if (!v) continue;
      if (proto !== 'ICMP' && proto !== 'ICMPv6' && proto !== 1 && proto !== 58) c.add(`${p}${s} needs protocol ICMP or ICMPv6`);
      out[s] = v;
    }
    if (proto === 'ICMP' || proto === 1) fams.add(4);
    if (proto === 'ICMPv6' || proto === 58) fams.add(6);
    for (const s of ['source', 'destination'] as const) {
      const v = entity(c, r, s, p, proto, fams);
      if (v) out[s] = v;
    }
    if (ipVersion && [...fams].some((f) => f !== ipVersion))
      c.add(`${p}ipVersion ${ipVersion} contradicts the rule's IPv${[...fams].find((f) => f !== ipVersion)} nets or ICMP protocol`);
    if (r.http !== undefined) c.add(`${p}http ${NOT_SUPPORTED} (HTTP matches need an application-layer proxy)`);
    if (isObj(r.metadata)) out.metadata = r.metadata;
    return out;
  });
}

/** Calico's default: Ingress unless there are only egress rules; both when both are present. */
export function defaultTypes(ingress: unknown[] | undefined, egress: unknown[] | undefined): string[] {
  const hasE = (egress?.length ?? 0) > 0;
  const hasI = (ingress?.length ?? 0) > 0;
  if (hasE && hasI) return ['Ingress', 'Egress'];
  return hasE ? ['Egress'] : ['Ingress'];
}

function checkPolicy(c: Checker, spec: Obj, global: boolean): Obj {
  const common = ['order', 'tier', 'selector', 'types', 'ingress', 'egress', 'serviceAccountSelector', 'performanceHints'];
  c.known(spec, 'spec.', global ? [...common, 'namespaceSelector', 'doNotTrack', 'preDNAT', 'applyOnForward'] : common);
  const out: Obj = {};
  const order = spec.order;
  if (order !== undefined && order !== null) {
    if (typeof order !== 'number' || !Number.isFinite(order)) c.add(`spec.order must be a number, got ${show(order)}`);
    else out.order = order;
  }
  const tier = c.string(spec, 'tier', 'spec.');
  if (tier !== undefined && tier !== 'default') c.add(`spec.tier ${show(tier)}: only the "default" tier exists in tabby`);
  out.selector = c.selector(spec, 'selector', 'spec.') ?? 'all()';
  if ((out.selector as string).trim() === '') out.selector = 'all()';
  if (global) {
    const ns = c.selector(spec, 'namespaceSelector', 'spec.');
    if (ns !== undefined && ns.trim() !== '') out.namespaceSelector = ns;
    if (spec.doNotTrack === true)
      c.add(`spec.doNotTrack ${NOT_SUPPORTED}: tabby enforces policy after connection tracking only (remove the field or set it false)`);
    if (spec.preDNAT === true)
      c.add(`spec.preDNAT ${NOT_SUPPORTED}: tabby enforces policy after DNAT only (remove the field or set it false)`);
    const aof = c.bool(spec, 'applyOnForward', 'spec.');
    if (aof !== undefined) out.applyOnForward = aof;
  }
  const sas = c.string(spec, 'serviceAccountSelector', 'spec.');
  if (sas !== undefined && sas.trim() !== '') c.add(`spec.serviceAccountSelector ${NOT_SUPPORTED} (select the pods by label instead)`);
  const ingress = checkRules(c, spec, 'ingress', { pass: true });
  const egress = checkRules(c, spec, 'egress', { pass: true });
  const typesIn = c.array(spec, 'types', 'spec.');
  let types: string[];
  if (typesIn?.length) {
    types = [];
    typesIn.forEach((t, i) => {
      const hit = ['Ingress', 'Egress'].find((a) => typeof t === 'string' && a.toLowerCase() === t.toLowerCase());
      if (!hit) c.add(`spec.types[${i}] ${show(t)} is not one of Ingress, Egress`);
      else if (types.includes(hit)) c.add(`spec.types[${i}] ${hit} is listed twice`);
      else types.push(hit);
    });
  } else types = defaultTypes(ingress, egress);
  if (ingress?.length && !types.includes('Ingress')) c.add('spec.ingress rules are given but spec.types does not include Ingress');
  if (egress?.length && !types.includes('Egress')) c.add('spec.egress rules are given but spec.types does not include Egress');
  if (out.order === undefined) delete out.order;
  out.types = types;
  if (ingress) out.ingress = ingress;
  if (egress) out.egress = egress;
  return out;
}

export const checkNetworkPolicy = (c: Checker, _name: string, spec: Obj): Obj => checkPolicy(c, spec, false);
export const checkGlobalNetworkPolicy = (c: Checker, _name: string, spec: Obj): Obj => checkPolicy(c, spec, true);

export function checkProfile(c: Checker, _name: string, spec: Obj): Obj {
  c.known(spec, 'spec.', ['ingress', 'egress', 'labelsToApply']);
  const out: Obj = {};
  const ingress = checkRules(c, spec, 'ingress', { pass: false });
  const egress = checkRules(c, spec, 'egress', { pass: false });
  if (ingress) out.ingress = ingress;
  if (egress) out.egress = egress;
  const lta = c.object(spec, 'labelsToApply', 'spec.');
  if (lta) {
    for (const [k, v] of Object.entries(lta)) if (typeof v !== 'string') c.add(`spec.labelsToApply.${k} must be a string, got ${show(v)}`);
    out.labelsToApply = lta;
  }
  return out;
}

export function checkWorkloadEndpoint(c: Checker, _name: string, spec: Obj): Obj {
  c.known(spec, 'spec.', [
    'orchestrator',
    'workload',
    'node',
    'containerID',
    'pod',
    'endpoint',
    'serviceAccountName',
    'ipNetworks',
    'ipNATs',
    'ipv4Gateway',
    'ipv6Gateway',
    'profiles',
    'interfaceName',
    'mac',
    'ports',
    'allowSpoofedSourcePrefixes',
  ]);
  const out: Obj = {};
  for (const k of [
    'orchestrator',
    'workload',
    'node',
    'containerID',
    'pod',
    'endpoint',
    'serviceAccountName',
    'interfaceName',
    'mac',
    'ipv4Gateway',
    'ipv6Gateway',
  ]) {
    const v = c.string(spec, k, 'spec.');
    if (v !== undefined && v !== '') out[k] = v;
  }
  if (!out.node) c.add('spec.node is required');
  if (!out.interfaceName) c.add("spec.interfaceName is required (the host side of the pod's veth, e.g. cali1234567890a)");
  else if ((out.interfaceName as string).length > 15 || !/^[A-Za-z0-9_.-]+$/.test(out.interfaceName as string))
    c.add(`spec.interfaceName ${show(out.interfaceName)} is not a Linux interface name`);
  out.orchestrator ??= 'k8s';
  out.endpoint ??= 'eth0';
  const ipn: Obj = {};
  nets(c, spec, 'ipNetworks', 'spec.', ipn, new Set());
  out.ipNetworks = ipn.ipNetworks ?? [];
  const profiles = c.array(spec, 'profiles', 'spec.');
  out.profiles = (profiles ?? []).filter((p, i) => {
    if (typeof p === 'string' && p !== '') return true;
    c.add(`spec.profiles[${i}] must be a profile name`);
    return false;
  });
  const pl = c.array(spec, 'ports', 'spec.');
  if (pl) {
    out.ports = pl.map((p, i) => {
      const at = `spec.ports[${i}].`;
      if (!isObj(p)) {
        c.add(`spec.ports[${i}] must be a mapping {name, protocol, port}`);
        return p;
      }
      c.known(p, at, ['name', 'protocol', 'port', 'hostPort', 'hostIP']);
      const name = c.string(p, 'name', at);
      if (!name || !NAMED_PORT_RE.test(name)) c.add(`${at}name ${show(p.name)} must be a port name like "http"`);
      const proto = protocol(c, p, 'protocol', at) ?? 'TCP';
      const port = c.int(p, 'port', at, 1, 65535);
      if (port === undefined && p.port === undefined) c.add(`${at}port is required`);
      return { name, protocol: proto, port };
    });
  }
  for (const k of ['ipNATs', 'allowSpoofedSourcePrefixes']) if (spec[k] !== undefined) out[k] = spec[k];
  return out;
}

/** Kinds whose resources live in a namespace (metadata.namespace, default "default"). */
export const NAMESPACED_KINDS: ReadonlySet<string> = new Set(['NetworkPolicy', 'WorkloadEndpoint']);
