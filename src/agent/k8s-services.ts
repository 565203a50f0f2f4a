// Service advertisement from the Kubernetes API, as Calico's route generator (confd routes.go) does it.
// Every node advertises the BGPConfiguration ranges: serviceClusterIPs, serviceExternalIPs, and
// serviceLoadBalancerIPs unless serviceLoadBalancerAggregation is Disabled. On top, per Service, a /32
// (/128) for each cluster IP (when serviceClusterIPs is set), allowed external IP and allowed
// LoadBalancer ingress IP:
//   externalTrafficPolicy Local  → only from nodes with a local endpoint (EndpointSlice endpoint whose
//                                  nodeName is this node);
//   Cluster, LoadBalancer with an ingress IP that is a /32 entry of serviceLoadBalancerIPs, or an
//                                  external IP that is a /32 entry of serviceExternalIPs → every node;
//   otherwise, with aggregation Disabled → every node while the Service has any endpoint.
// Pure core (serviceAdvertisements); the thin shell (K8sServiceWatch: list + watch of Services and
// EndpointSlices through the shared client in src/common/k8s-api.ts) is k8s-service-watch.ts, loaded by
// tabby-node only where there is a Kubernetes API. Tested against a fixture server.
import { cidrContains, tryParseCidr, tryParseIp, type Cidr } from '../common/ip.js';
import type { K8sWatchEvent } from '../common/k8s-api.js';
import type { BGPConfigurationSpec } from '../datastore/resources.js';

export interface K8sService {
  metadata: { name: string; namespace?: string };
  spec?: {
    type?: string;
    clusterIP?: string;
    clusterIPs?: string[];
    externalIPs?: string[];
    externalTrafficPolicy?: string;
    ipFamilies?: string[];
    loadBalancerIP?: string;
  };
  status?: { loadBalancer?: { ingress?: { ip?: string }[] } };
}

export interface EndpointSlice {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  addressType?: string;
  endpoints?: { addresses?: string[]; nodeName?: string; conditions?: { ready?: boolean } }[];
}

/** The label tying an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const RELEVANT_TYPES = new Set(['ClusterIP', 'NodePort', 'LoadBalancer']);

type ServiceConfig = Pick<
  BGPConfigurationSpec,
  'serviceClusterIPs' | 'serviceExternalIPs' | 'serviceLoadBalancerIPs' | 'serviceLoadBalancerAggregation'
>;

const cidrsOf = (l: { cidr: string }[] | undefined): Cidr[] => (l ?? []).map((x) => tryParseCidr(x.cidr)).filter((c) => c !== undefined);
const hostLen = (c: Cidr) => (c.family === 4 ? 32 : 128);

function inAny(ip: string, nets: Cidr[], singleOnly = false): boolean {
  const a = tryParseIp(ip);
  if (!a) return false;
  return nets.some((n) => cidrContains(n, a) && (!singleOnly || n.prefixLen === hostLen(n)));
}

/** Should this node advertise the Service's host routes (Calico's advertiseThisService)? */
export function advertiseService(svc: K8sService, slices: EndpointSlice[], cfg: ServiceConfig, node: string): boolean {
  const spec = svc.spec ?? {};
  if (!RELEVANT_TYPES.has(spec.type ?? 'ClusterIP')) return false;
  if (!spec.clusterIP || spec.clusterIP === 'None') return false;
  const lbNets = cidrsOf(cfg.serviceLoadBalancerIPs);
  const extNets = cidrsOf(cfg.serviceExternalIPs);
  const policy = spec.externalTrafficPolicy ?? '';
  if (policy === 'Cluster') {
    const lbIps = [spec.loadBalancerIP ?? '', ...(svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '')];
    if (spec.type === 'LoadBalancer' && lbIps.some((ip) => inAny(ip, lbNets, true))) return true;
    if ((spec.externalIPs ?? []).some((ip) => inAny(ip, extNets, true))) return true;
  }
  if (policy !== 'Local' && cfg.serviceLoadBalancerAggregation !== 'Disabled') return false;
  // chose: a Service without ipFamilies (an old API server) has its cluster IP's family.
  const families = new Set(spec.ipFamilies ?? [spec.clusterIP.includes(':') ? 'IPv6' : 'IPv4']);
  for (const sl of slices) {
    if (!families.has(sl.addressType ?? '')) continue;
    for (const ep of sl.endpoints ?? []) {
      if (policy !== 'Local') return true;
      // chose: an endpoint that is not ready does not count (kube-proxy drops Local traffic to a node
      // without a ready endpoint; Calico counts it regardless).
      if (ep.nodeName === node && ep.conditions?.ready !== false) return true;
    }
  }
  return false;
}

/** The host routes of a Service (Calico's getAllRoutesForService): cluster IPs when serviceClusterIPs is
 *  set, external IPs inside serviceExternalIPs, LoadBalancer ingress IPs inside serviceLoadBalancerIPs. */
export function serviceHostRoutes(svc: K8sService, cfg: ServiceConfig): string[] {
  const spec = svc.spec ?? {};
  const ips: string[] = [];
  if ((cfg.serviceClusterIPs ?? []).length)
    ips.push(...(spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : []));
  const extNets = cidrsOf(cfg.serviceExternalIPs);
  ips.push(...(spec.externalIPs ?? []).filter((ip) => inAny(ip, extNets)));
  const lbNets = cidrsOf(cfg.serviceLoadBalancerIPs);
  ips.push(...(svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? '').filter((ip) => inAny(ip, lbNets)));
  const out: string[] = [];
  for (const ip of ips) {
    const a = tryParseIp(ip);
    if (a) out.push(`${ip}/${a.family === 4 ? 32 : 128}`);
  }
  return out;
}

/** Everything this node advertises for services: the configured ranges and the host routes of the
 *  Services it should advertise. Sorted, without duplicates; invalid CIDRs left out. */
export function serviceAdvertisements(cfg: ServiceConfig | undefined, state: ServiceState | undefined, node: string): string[] {
  if (!cfg) return [];
  const out = new Set<string>();
  const ranges = [
    ...(cfg.serviceClusterIPs ?? []),
    ...(cfg.serviceExternalIPs ?? []),
    ...(cfg.serviceLoadBalancerAggregation === 'Disabled' ? [] : (cfg.serviceLoadBalancerIPs ?? [])),
  ];
  for (const r of ranges) if (tryParseCidr(r.cidr)) out.add(r.cidr);
  if (state)
    for (const [key, svc] of state.services)
      if (advertiseService(svc, state.slicesOf(key), cfg, node)) for (const p of serviceHostRoutes(svc, cfg)) out.add(p);
  return [...out].sort();
}

/** Services and EndpointSlices by `<namespace>/<name>` (slices grouped by their Service). */
export class ServiceState {
  readonly services = new Map<string, K8sService>();
  private readonly slices = new Map<string, EndpointSlice>();

  slicesOf(serviceKey: string): EndpointSlice[] {
    return [...this.slices.values()].filter(
      (s) => `${s.metadata.namespace ?? 'default'}/${s.metadata.labels?.[SERVICE_NAME_LABEL]}` === serviceKey,
    );
  }
  /** A fresh list follows (objects deleted while the watch was down must go). */
  clearServices(): void {
    this.services.clear();
  }
  clearSlices(): void {
    this.slices.clear();
  }
  onService(ev: K8sWatchEvent): void {
    const key = `${ev.object.metadata.namespace ?? 'default'}/${ev.object.metadata.name}`;
    if (ev.type === 'DELETED') this.services.delete(key);
    else this.services.set(key, ev.object as unknown as K8sService);
  }
  onSlice(ev: K8sWatchEvent): void {
    const key = `${ev.object.metadata.namespace ?? 'default'}/${ev.object.metadata.name}`;
    if (ev.type === 'DELETED') this.slices.delete(key);
    else this.slices.set(key, ev.object as unknown as EndpointSlice);
  }
}

/** What the agent reads: the current state and a change signal. */
export interface ServicesPort {
  readonly state: ServiceState;
  onChange(fn: () => void): void;
}
