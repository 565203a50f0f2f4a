// The truth table's independent model: what Kubernetes and Calico say a flow's verdict is, evaluated
// directly from the policies as the user wrote them (Kubernetes NetworkPolicies in their own shape,
// not through tabby's converter; no nftables). Shares only the selector parser with the product.
import { parseSelector } from '../../../src/datastore/selector.js';

export interface ModelPod {
  name: string;
  ns: string;
  ip: string;
  labels: Record<string, string>;
  ports?: { name: string; protocol: string; port: number }[];
}
export interface Flow {
  src: ModelPod | { host: true; ip: string };
  dst: ModelPod;
  proto: 'tcp' | 'udp';
  port: number;
}
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const inCidr = (ip: string, cidr: string): boolean => {
  const [net, len] = cidr.split('/') as [string, string];
  const n = (s: string) => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const bits = Number(len);
  const m = bits === 0 ? 0 : Math.floor(n(ip) / 2 ** (32 - bits)) === Math.floor(n(net) / 2 ** (32 - bits));
  return Boolean(m);
};
const k8sMatch = (sel: Obj | undefined, labels: Record<string, string>): boolean => {
  if (!sel) return true;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    if (e.operator === 'In' && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === 'NotIn' && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
};

export class Model {
  constructor(
    private readonly nsLabels: Record<string, Record<string, string>>,
    private readonly docs: readonly Obj[],
  ) {}

  private nsl(ns: string) {
    return { ...this.nsLabels[ns], 'kubernetes.io/metadata.name': ns, 'projectcalico.org/name': ns };
  }
  private calicoLabels(p: ModelPod) {
    return { ...p.labels, 'projectcalico.org/namespace': p.ns, 'projectcalico.org/orchestrator': 'k8s' };
  }

  /** Policies applying to pod for dir, in Calico order; Kubernetes ones are order 1000, name knp.default.<name>. */
  private policies(pod: ModelPod, dir: 'Ingress' | 'Egress'): { order: number; name: string; doc: Obj; k8s: boolean }[] {
    const out: { order: number; name: string; doc: Obj; k8s: boolean }[] = [];
    for (const d of this.docs) {
      if (d.apiVersion === 'networking.k8s.io/v1') {
        if ((d.metadata.namespace ?? 'default') !== pod.ns || !k8sMatch(d.spec.podSelector, pod.labels)) continue;
        const types: string[] = d.spec.policyTypes ?? ['Ingress', ...(d.spec.egress ? ['Egress'] : [])];
        if (types.includes(dir)) out.push({ order: 1000, name: `knp.default.${d.metadata.name}`, doc: d, k8s: true });
        continue;
      }
      const s = d.spec;
      if (d.kind === 'NetworkPolicy' && (d.metadata.namespace ?? 'default') !== pod.ns) continue;
      if (s.namespaceSelector && !parseSelector(s.namespaceSelector).matches(this.nsl(pod.ns))) continue;
      if (!parseSelector(s.selector ?? 'all()').matches(this.calicoLabels(pod))) continue;
      const types: string[] = s.types ?? (s.egress && !s.ingress ? ['Egress'] : s.egress ? ['Ingress', 'Egress'] : ['Ingress']);
      if (types.includes(dir)) out.push({ order: s.order ?? Infinity, name: d.metadata.name, doc: d, k8s: false });
    }
    return out.sort((a, b) => (a.order === b.order ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.order < b.order ? -1 : 1));
  }

  /** May `f` pass? Both ends: the source pod's egress (a pod source) and the destination's ingress
   *  (skipped for the destination node's own host: Calico allows host → local pod). */
  allowed(f: Flow, dstNodeHostIp?: string): boolean {
    const peerIp = 'host' in f.src ? f.src.ip : f.src.ip;
    if (!('host' in f.src) && !this.decide(f.src, 'Egress', { ip: f.dst.ip, pod: f.dst }, f)) return false;
    if ('host' in f.src && f.src.ip === dstNodeHostIp) return true;
    return this.decide(f.dst, 'Ingress', { ip: peerIp, pod: 'host' in f.src ? undefined : f.src }, f);
  }

  private decide(ep: ModelPod, dir: 'Ingress' | 'Egress', peer: { ip: string; pod: ModelPod | undefined }, f: Flow): boolean {
    const pols = this.policies(ep, dir);
    for (const p of pols) {
      const v = p.k8s ? this.k8sVerdict(p.doc, ep, dir, peer, f) : this.calicoVerdict(p.doc, dir, peer, f);
      if (v === 'Allow') return true;
      if (v === 'Deny') return false;
      if (v === 'Pass') return true; // to the profile kns.<ns>, which allows (the test's namespaces keep the default)
    }
    return pols.length === 0; // selected and nothing allowed: default deny; not selected: profile allows
  }

  private k8sVerdict(
    d: Obj,
    ep: ModelPod,
    dir: 'Ingress' | 'Egress',
    peer: { ip: string; pod: ModelPod | undefined },
    f: Flow,
  ): string | undefined {
    const rules: Obj[] = (dir === 'Ingress' ? d.spec.ingress : d.spec.egress) ?? [];
    const dstPod = dir === 'Ingress' ? ep : f.dst;
    for (const r of rules) {
      const peers: Obj[] = (dir === 'Ingress' ? r.from : r.to) ?? [];
      const peerOk =
        peers.length === 0 ||
        peers.some((pp) => {
          if (pp.ipBlock) return inCidr(peer.ip, pp.ipBlock.cidr) && !(pp.ipBlock.except ?? []).some((c: string) => inCidr(peer.ip, c));
          if (!peer.pod) return false;
          if (pp.namespaceSelector) {
            if (!k8sMatch(pp.namespaceSelector, this.nsl(peer.pod.ns))) return false;
          } else if (peer.pod.ns !== ep.ns) return false;
          return k8sMatch(pp.podSelector, peer.pod.labels);
        });
      const ports: Obj[] = r.ports ?? [];
      const portOk =
        ports.length === 0 ||
        ports.some(
          (p) =>
            (p.protocol ?? 'TCP').toLowerCase() === f.proto &&
            (p.port === undefined ||
              p.port === f.port ||
              (typeof p.port === 'string' &&
                (dstPod.ports ?? []).some((np) => np.name === p.port && np.port === f.port && np.protocol.toLowerCase() === f.proto))),
        );
      if (peerOk && portOk) return 'Allow';
    }
    return undefined;
  }

  private calicoVerdict(d: Obj, dir: 'Ingress' | 'Egress', peer: { ip: string; pod: ModelPod | undefined }, f: Flow): string | undefined {
    const rules: Obj[] = (dir === 'Ingress' ? d.spec.ingress : d.spec.egress) ?? [];
    const ns = d.kind === 'NetworkPolicy' ? (d.metadata.namespace ?? 'default') : undefined;
    // which side is which: ingress → source is the peer, destination is the endpoint; egress the reverse
    for (const r of rules) {
      if (r.protocol && r.protocol.toLowerCase() !== f.proto) continue;
      const srcIp = dir === 'Ingress' ? peer.ip : f.src.ip;
      const srcPod = dir === 'Ingress' ? peer.pod : 'host' in f.src ? undefined : f.src;
      if (!this.entityOk(r.source, srcIp, srcPod, ns, undefined, f)) continue;
      if (!this.entityOk(r.destination, f.dst.ip, f.dst, ns, f.port, f)) continue;
      if (r.action === 'Log') continue;
      return r.action;
    }
    return undefined;
  }

  private entityOk(
    e: Obj | undefined,
    ip: string,
    pod: ModelPod | undefined,
    ns: string | undefined,
    port: number | undefined,
    f: Flow,
  ): boolean {
    if (!e) return true;
    if (e.nets && !e.nets.some((c: string) => inCidr(ip, c))) return false;
    if (e.selector || e.namespaceSelector) {
      if (!pod) return false;
      if (e.namespaceSelector) {
        if (!parseSelector(e.namespaceSelector).matches(this.nsl(pod.ns))) return false;
      } else if (ns && pod.ns !== ns) return false;
      if (e.selector && !parseSelector(e.selector).matches(this.calicoLabels(pod))) return false;
    }
    if (e.ports && port !== undefined) {
      const ok = e.ports.some(
        (p: number | string) =>
          p === port ||
          (typeof p === 'string' &&
            (pod?.ports ?? []).some((np) => np.name === p && np.port === port && np.protocol.toLowerCase() === f.proto)),
      );
      if (!ok) return false;
    }
    return true;
  }
}
