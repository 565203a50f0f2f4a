// Kubernetes networking.k8s.io/v1 NetworkPolicy → Calico v3 NetworkPolicy, converted the way Calico's
// own converter does it: name `knp.default.<name>`, same namespace, order 1000, the pod selector scoped
// to Kubernetes endpoints, one Allow rule per (peer × protocol) with the ports of that protocol, an
// ipBlock as nets/notNets, an empty namespaceSelector as all(). Pure; called by validation before the
// Calico checks, so `tabbyctl apply` accepts either shape and stores only the Calico one.
import { K8S_POLICY_ORDER, K8S_POLICY_PREFIX, ORCHESTRATOR_LABEL } from './policy-types.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export const K8S_NETPOL_API = 'networking.k8s.io/v1';

export class K8sConversionError extends Error {
  readonly code = 'EK8SCONVERT';
  constructor(
    readonly policy: string,
    readonly problems: string[],
  ) {
    super(`Kubernetes NetworkPolicy "${policy}": ${problems.join('; ')}`);
    this.name = 'K8sConversionError';
  }
}

export function isK8sNetworkPolicy(doc: unknown): doc is Obj {
  return isObj(doc) && doc.apiVersion === K8S_NETPOL_API && doc.kind === 'NetworkPolicy';
}

const q = (s: string) => `'${s.replace(/'/g, '')}'`;

/** A Kubernetes LabelSelector (matchLabels + matchExpressions) as a Calico selector; {} → all(). */
export function labelSelectorToCalico(sel: unknown, problems: string[], where: string): string {
  if (sel === undefined || sel === null) return 'all()';
  if (!isObj(sel)) {
    problems.push(`${where} must be a label selector mapping`);
    return 'all()';
  }
  const parts: string[] = [];
  const ml = sel.matchLabels;
  if (isObj(ml)) for (const k of Object.keys(ml).sort()) parts.push(`${k} == ${q(String(ml[k]))}`);
  const me = Array.isArray(sel.matchExpressions) ? sel.matchExpressions : [];
  me.forEach((e: unknown, i) => {
    const ex = isObj(e) ? e : {};
    const key = String(ex.key ?? '');
    const values = Array.isArray(ex.values) ? ex.values.map(String) : [];
    const set = `{${values.map(q).join(', ')}}`;
    switch (ex.operator) {
      case 'In':
        parts.push(`${key} in ${set}`);
        break;
      case 'NotIn':
        parts.push(`${key} not in ${set}`);
        break;
      case 'Exists':
        parts.push(`has(${key})`);
        break;
      case 'DoesNotExist':
        parts.push(`!has(${key})`);
        break;
      default:
        problems.push(`${where}.matchExpressions[${i}].operator ${JSON.stringify(ex.operator)} is not In, NotIn, Exists or DoesNotExist`);
    }
  });
  return parts.length ? parts.join(' && ') : 'all()';
}

interface K8sPort {
  protocol: string;
  port?: number | string;
  endPort?: number;
}

function convertPorts(ports: unknown, problems: string[], where: string): Map<string, (number | string)[]> {
  // Grouped by protocol: Calico's ports need one protocol per rule.
  const by = new Map<string, (number | string)[]>();
  if (!Array.isArray(ports)) return by;
  ports.forEach((p: unknown, i) => {
    const pp = (isObj(p) ? p : {}) as Partial<K8sPort>;
    const proto = String(pp.protocol ?? 'TCP').toUpperCase();
    const name = proto === 'UDPLITE' ? 'UDPLite' : proto;
    if (!['TCP', 'UDP', 'SCTP'].includes(name))
      problems.push(`${where}[${i}].protocol ${JSON.stringify(pp.protocol)} is not TCP, UDP or SCTP`);
    const list = by.get(name) ?? [];
    if (pp.port === undefined) {
      by.set(name, list);
      return;
    } // all ports of this protocol
    if (pp.endPort !== undefined && typeof pp.port === 'number') list.push(`${pp.port}:${pp.endPort}`);
    else list.push(pp.port);
    by.set(name, list);
  });
  return by;
}

function convertPeer(peer: unknown, problems: string[], where: string): Obj {
  if (!isObj(peer)) {
    problems.push(`${where} must be a mapping`);
    return {};
  }
  const out: Obj = {};
  if (isObj(peer.ipBlock)) {
    out.nets = [String(peer.ipBlock.cidr ?? '')];
    if (Array.isArray(peer.ipBlock.except) && peer.ipBlock.except.length) out.notNets = peer.ipBlock.except.map(String);
    return out;
  }
  if (peer.podSelector !== undefined) out.selector = labelSelectorToCalico(peer.podSelector, problems, `${where}.podSelector`);
  if (peer.namespaceSelector !== undefined)
    out.namespaceSelector = labelSelectorToCalico(peer.namespaceSelector, problems, `${where}.namespaceSelector`);
  return out;
}

function convertRules(rules: unknown, dir: 'ingress' | 'egress', problems: string[]): Obj[] {
  if (!Array.isArray(rules)) return [];
  const peerKey = dir === 'ingress' ? 'from' : 'to';
  const side = dir === 'ingress' ? 'source' : 'destination';
  const out: Obj[] = [];
  rules.forEach((r: unknown, i) => {
    const rule = isObj(r) ? r : {};
    const where = `spec.${dir}[${i}]`;
    const peers =
      Array.isArray(rule[peerKey]) && (rule[peerKey] as unknown[]).length
        ? (rule[peerKey] as unknown[]).map((p, j) => convertPeer(p, problems, `${where}.${peerKey}[${j}]`))
        : [{}];
    const ports = convertPorts(rule.ports, problems, `${where}.ports`);
    for (const peer of peers) {
      if (ports.size === 0) {
        out.push({ action: 'Allow', ...(Object.keys(peer).length ? { [side]: peer } : {}) });
        continue;
      }
      for (const [proto, list] of ports) {
        const dst: Obj = dir === 'egress' ? { ...peer } : {};
        if (list.length) dst.ports = list;
        const r2: Obj = { action: 'Allow', protocol: proto };
        if (dir === 'ingress' && Object.keys(peer).length) r2.source = peer;
        if (Object.keys(dst).length) r2.destination = dst;
        out.push(r2);
      }
    }
  });
  return out;
}

/** Convert; throws K8sConversionError listing every problem. The result still goes through validation. */
export function convertK8sNetworkPolicy(doc: Obj): Obj {
  const meta = isObj(doc.metadata) ? doc.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  const problems: string[] = [];
  if (!name) problems.push('metadata.name is required');
  const spec = isObj(doc.spec) ? doc.spec : {};
  const sel = labelSelectorToCalico(spec.podSelector ?? {}, problems, 'spec.podSelector');
  const selector = sel === 'all()' ? `${ORCHESTRATOR_LABEL} == 'k8s'` : `${ORCHESTRATOR_LABEL} == 'k8s' && ${sel}`;
  const ptypes =
    Array.isArray(spec.policyTypes) && spec.policyTypes.length
      ? spec.policyTypes.map(String)
      : ['Ingress', ...(Array.isArray(spec.egress) && spec.egress.length ? ['Egress'] : [])];
  const ingress = convertRules(spec.ingress, 'ingress', problems);
  const egress = convertRules(spec.egress, 'egress', problems);
  if (problems.length) throw new K8sConversionError(name, problems);
  const labels = isObj(meta.labels) ? { labels: meta.labels } : {};
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'NetworkPolicy',
    metadata: {
      name: `${K8S_POLICY_PREFIX}${name}`,
      namespace: typeof meta.namespace === 'string' && meta.namespace ? meta.namespace : 'default',
      ...labels,
    },
    spec: {
      order: K8S_POLICY_ORDER,
      selector,
      types: ptypes,
      ...(ptypes.includes('Ingress') ? { ingress } : {}),
      ...(ptypes.includes('Egress') ? { egress } : {}),
    },
  };
}
