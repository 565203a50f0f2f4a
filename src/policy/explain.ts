// `tabbyctl policy explain`: which policies select an endpoint, per direction and in enforcement order,
// and the verdict for one flow, with the rule that decided it (pure; evaluates the same model the
// compiler renders: Felix's order, Pass to profiles, default deny, profiles otherwise).
import { cidrContains, parseCidr, parseIp } from '../common/ip.js';
import type { EntityRule, PolicyRule, PolicyType } from '../datastore/policy-types.js';
import { endpointViews, inScope, peerScope, policiesFor, policyViews, sel, type EndpointView, type PolicyInputs } from './model.js';

export interface Flow {
  direction: PolicyType;
  /** the other end: its address, and its endpoint when it is one */
  peer: { ip: string; endpoint?: EndpointView };
  protocol?: string;
  port?: number;
}

export interface Decision {
  allowed: boolean;
  by: string;
  trail: string[];
}

const PROTO_NUM: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, sctp: 132, udplite: 136 };
const protoNum = (p: string | number | undefined): number | undefined =>
  p === undefined ? undefined : typeof p === 'number' ? p : (PROTO_NUM[p.toLowerCase()] ?? (/^\d+$/.test(p) ? Number(p) : undefined));

function portMatches(
  list: readonly (number | string)[],
  port: number | undefined,
  proto: number | undefined,
  ep: EndpointView | undefined,
): boolean {
  if (port === undefined) return false;
  return list.some((p) => {
    if (typeof p === 'number') return p === port;
    const r = /^(\d+):(\d+)$/.exec(p);
    if (r) return port >= Number(r[1]) && port <= Number(r[2]);
    if (/^\d+$/.test(p)) return Number(p) === port;
    return (ep?.ports ?? []).some((np) => np.name === p && np.port === port && protoNum(np.protocol) === proto);
  });
}

function entityMatches(
  e: EntityRule | undefined,
  ip: string,
  ep: EndpointView | undefined,
  port: number | undefined,
  proto: number | undefined,
  ns: string | undefined,
): boolean {
  if (!e) return true;
  const addr = parseIp(ip);
  const inNets = (nets: readonly string[]) =>
    nets.some((n) => {
      const c = parseCidr(n);
      return c.family === addr.family && cidrContains(c, addr);
    });
  if (e.nets?.length && !inNets(e.nets)) return false;
  if (e.notNets?.length && inNets(e.notNets)) return false;
  const scope = peerScope(e, ns);
  if (scope && !(ep && inScope(scope, ep))) return false;
  if (e.notSelector && ep && sel(e.notSelector).matches(ep.labels)) return false;
  if (e.ports?.length && !portMatches(e.ports, port, proto, ep)) return false;
  if (e.notPorts?.length && portMatches(e.notPorts, port, proto, ep)) return false;
  return true;
}

function ruleMatches(r: PolicyRule, self: EndpointView, f: Flow, ns: string | undefined): boolean {
  const proto = protoNum(f.protocol);
  const fam = parseIp(f.peer.ip).family;
  if (r.ipVersion && r.ipVersion !== fam) return false;
  if (r.protocol !== undefined && protoNum(r.protocol) !== proto) return false;
  if (r.notProtocol !== undefined && protoNum(r.notProtocol) === proto) return false;
  if (r.icmp?.type !== undefined) return false; // a flow given by port has no ICMP type
  const selfIp = self.ipNetworks.map((n) => n.split('/')[0]!).find((a) => parseIp(a).family === fam) ?? f.peer.ip;
  const [src, dst] =
    f.direction === 'Ingress'
      ? [
          { ip: f.peer.ip, ep: f.peer.endpoint },
          { ip: selfIp, ep: self },
        ]
      : [
          { ip: selfIp, ep: self },
          { ip: f.peer.ip, ep: f.peer.endpoint },
        ];
  return entityMatches(r.source, src.ip, src.ep, undefined, proto, ns) && entityMatches(r.destination, dst.ip, dst.ep, f.port, proto, ns);
}

/** The verdict for one direction at `self` (the other end's own direction is a separate question). */
export function decide(inp: PolicyInputs, self: EndpointView, f: Flow): Decision {
  const trail: string[] = [];
  const pols = policiesFor(policyViews(inp), self, f.direction);
  let passed = false;
  for (const p of pols) {
    const rules = f.direction === 'Ingress' ? p.ingress : p.egress;
    const i = rules.findIndex((r) => r.action !== 'Log' && ruleMatches(r, self, f, p.namespace));
    const what = `${p.kind} ${p.id}`;
    if (i < 0) {
      trail.push(`${what}: no rule matched`);
      continue;
    }
    const r = rules[i]!;
    trail.push(`${what} rule ${i}: ${r.action}`);
    if (r.action === 'Allow') return { allowed: true, by: `${what} rule ${i} (Allow)`, trail };
    if (r.action === 'Deny') return { allowed: false, by: `${what} rule ${i} (Deny)`, trail };
    passed = true; // Pass
    break;
  }
  if (pols.length && !passed) return { allowed: false, by: 'default deny (policies select it and none allowed the flow)', trail };
  const profiles = new Map(inp.profiles.map((p) => [p.metadata.name, p]));
  for (const pn of self.profiles) {
    const pro = profiles.get(pn);
    if (!pro) {
      trail.push(`Profile ${pn}: missing`);
      continue;
    }
    const rules = (f.direction === 'Ingress' ? pro.spec.ingress : pro.spec.egress) ?? [];
    const i = rules.findIndex((r) => r.action !== 'Log' && ruleMatches(r, self, f, undefined));
    if (i < 0) {
      trail.push(`Profile ${pn}: no rule matched`);
      continue;
    }
    const r = rules[i]!;
    trail.push(`Profile ${pn} rule ${i}: ${r.action}`);
    return { allowed: r.action === 'Allow', by: `Profile ${pn} rule ${i} (${r.action})`, trail };
  }
  return { allowed: false, by: 'no profile allowed the flow', trail };
}

/** Find an endpoint by pod name, workload endpoint name, or address. */
export function findEndpoint(inp: PolicyInputs, key: string, namespace?: string): EndpointView | undefined {
  const all = endpointViews(inp);
  const inNs = (e: EndpointView) => !namespace || e.namespace === namespace;
  return (
    all.find((e) => inNs(e) && (e.name === key || e.id === key)) ??
    all.find((e) => inNs(e) && inp.endpoints.some((w) => w.metadata.name === e.name && (w.spec.pod === key || w.spec.workload === key))) ??
    all.find((e) => inNs(e) && e.ipNetworks.some((n) => n.split('/')[0] === key))
  );
}

export function selectingPolicies(inp: PolicyInputs, ep: EndpointView, dir: PolicyType): { kind: string; id: string; order: number }[] {
  return policiesFor(policyViews(inp), ep, dir).map((p) => ({ kind: p.kind, id: p.id, order: p.order }));
}

/** `policy explain` as text (also the lab's policy demo): the selecting policies, the verdict for one flow. */
export function explainText(
  inp: PolicyInputs,
  a: { pod: string; namespace?: string; from?: string; to?: string; protocol?: string; port?: number },
): { text: string } | { error: string } {
  const ep = findEndpoint(inp, a.pod, a.namespace);
  if (!ep)
    return {
      error: `no workloadendpoint for "${a.pod}"${a.namespace ? ` in namespace ${a.namespace}` : ''} (tabbyctl get workloadendpoint lists them)`,
    };
  const out: string[] = [
    `WorkloadEndpoint ${ep.id}  node ${ep.node}  interface ${ep.interfaceName}  ${ep.ipNetworks.join(', ')}`,
    `  labels: ${Object.entries(ep.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
  ];
  for (const dir of ['Ingress', 'Egress'] as const) {
    const pols = selectingPolicies(inp, ep, dir);
    out.push(`${dir}:`);
    if (!pols.length) out.push(`  no policy selects it: profiles ${ep.profiles.join(', ') || '(none: everything denied)'}`);
    pols.forEach((p, i) => out.push(`  ${i + 1}. ${p.kind} ${p.id} (order ${p.order === Infinity ? 'none' : p.order})`));
    if (pols.length) out.push(`  then default deny (Pass goes to profiles ${ep.profiles.join(', ') || '(none)'})`);
  }
  const peerArg = a.from ?? a.to;
  if (peerArg) {
    const [pns, pname] = peerArg.includes('/') ? (peerArg.split('/', 2) as [string, string]) : [undefined, peerArg];
    const peerEp = findEndpoint(inp, pname, pns);
    const ip = peerEp ? peerEp.ipNetworks[0]!.split('/')[0]! : peerArg;
    if (!peerEp && !/^[\d.]+$|:/.test(ip)) return { error: `"${peerArg}" is neither an address nor a known pod` };
    const f: Flow = {
      direction: a.from ? 'Ingress' : 'Egress',
      peer: { ip, ...(peerEp ? { endpoint: peerEp } : {}) },
      protocol: a.protocol ?? 'tcp',
      ...(a.port !== undefined ? { port: a.port } : {}),
    };
    const d = decide(inp, ep, f);
    out.push(
      `Verdict: ${f.direction.toLowerCase()} ${a.from ? 'from' : 'to'} ${ip}${peerEp ? ` (${peerEp.id})` : ''} ${f.protocol}${f.port !== undefined ? `/${f.port}` : ''}: ${d.allowed ? 'ALLOW' : 'DENY'} by ${d.by}`,
    );
    for (const s of d.trail) out.push(`  ${s}`);
    if (peerEp) {
      const back = decide(inp, peerEp, {
        ...f,
        direction: a.from ? 'Egress' : 'Ingress',
        peer: { ip: ep.ipNetworks[0]!.split('/')[0]!, endpoint: ep },
      });
      out.push(`  (the other end, ${peerEp.id} ${a.from ? 'egress' : 'ingress'}: ${back.allowed ? 'ALLOW' : 'DENY'} by ${back.by})`);
    }
  }
  return { text: out.join('\n') };
}
