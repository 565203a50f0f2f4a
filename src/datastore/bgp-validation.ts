// Validation and defaulting of the BGP kinds: BGPConfiguration and BGPPeer (with their BFD, password
// and peerIP fields). Part of validateDocument (validation.ts), which checks the metadata and calls in here.
import { parseCommunity } from '../bgp/filter/engine.js';
import { parseDuration } from '../common/duration.js';
import { formatCidr, formatIp, tryParseIp } from '../common/ip.js';
import { type Checker, NAME_RE, checkCidrList, isObj, show, type Obj } from './check-kit.js';
export function checkBGPConfiguration(c: Checker, name: string, spec: Obj): Obj {
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

export function checkBGPPeer(c: Checker, _name: string, spec: Obj): Obj {
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
