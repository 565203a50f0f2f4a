// Pod and namespace labels from the Kubernetes API (what Calico's controllers do): tabby-node lists
// and watches namespaces and the pods of its own node, and keeps
//   Profile kns.<ns>       labelsToApply pcns.<label> for every namespace label (namespaceSelector)
//   WorkloadEndpoint       labels = the pod's labels (+ projectcalico.org/namespace, orchestrator,
//                          serviceaccount), ports = the containers' named ports (named-port rules)
// The CNI plugin creates the endpoint at ADD; this only keeps its labels and ports current.
// Mapping is pure (namespaceProfile, endpointFromPod); K8sApi is the thin HTTP shell (list + watch,
// the API server's JSON and its newline-delimited watch stream, in src/common/k8s-api.ts). Tested
// against a fixture server.
import type { Logger } from '../common/log.js';
import { K8sApi, k8sConfigured, listWatch, type K8sObject, type K8sWatchEvent } from '../common/k8s-api.js';
export { K8sApi, K8sApiError, type K8sObject, type K8sList, type K8sWatchEvent, type K8sApiOptions } from '../common/k8s-api.js';
import {
  type ResourceStore,
  ResourceConflict,
  ResourceExists,
  workloadEndpointName,
  namespaceProfileName,
  NAMESPACE_LABEL,
  ORCHESTRATOR_LABEL,
  NAMESPACE_LABEL_PREFIX,
  type Profile,
  type WorkloadEndpoint,
  type EndpointPort,
} from '../datastore/resources.js';

// ------------------------------------------------------------------ pure mapping

export function namespaceProfile(ns: K8sObject): Profile {
  const labelsToApply: Record<string, string> = { [`${NAMESPACE_LABEL_PREFIX}projectcalico.org/name`]: ns.metadata.name };
  for (const [k, v] of Object.entries(ns.metadata.labels ?? {})) labelsToApply[`${NAMESPACE_LABEL_PREFIX}${k}`] = v;
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Profile',
    metadata: { name: namespaceProfileName(ns.metadata.name) },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }], labelsToApply },
  };
}

interface PodSpec {
  serviceAccountName?: string;
  containers?: { ports?: { name?: string; containerPort?: number; protocol?: string }[] }[];
}

/** The labels and ports a pod gives its endpoint (pure). */
export function endpointFromPod(pod: K8sObject): { labels: Record<string, string>; ports: EndpointPort[] } {
  const ns = pod.metadata.namespace ?? 'default';
  const spec = (pod.spec ?? {}) as PodSpec;
  const labels: Record<string, string> = { ...(pod.metadata.labels ?? {}), [NAMESPACE_LABEL]: ns, [ORCHESTRATOR_LABEL]: 'k8s' };
  if (spec.serviceAccountName) labels['projectcalico.org/serviceaccount'] = spec.serviceAccountName;
  const ports: EndpointPort[] = [];
  for (const c of spec.containers ?? [])
    for (const p of c.ports ?? []) {
      if (!p.name || !p.containerPort) continue;
      const proto = (p.protocol ?? 'TCP').toUpperCase();
      ports.push({ name: p.name, protocol: proto === 'UDP' ? 'UDP' : proto === 'SCTP' ? 'SCTP' : 'TCP', port: p.containerPort });
    }
  return { labels, ports };
}

// ------------------------------------------------------------------ the sync loop

export interface K8sSyncOptions {
  api: K8sApi;
  store: ResourceStore;
  node: string;
  logger: Logger;
}

export class K8sLabelSync {
  private readonly abort = new AbortController();
  constructor(private readonly o: K8sSyncOptions) {}

  start(): void {
    const { api, logger } = this.o;
    void listWatch(api, '/api/v1/namespaces', (ev) => this.onNamespace(ev), this.abort.signal, logger);
    const pods = `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${this.o.node}`)}`;
    void listWatch(api, pods, (ev) => this.onPod(ev), this.abort.signal, logger);
  }

  stop(): void {
    this.abort.abort();
  }

  private async onNamespace(ev: K8sWatchEvent): Promise<void> {
    const name = namespaceProfileName(ev.object.metadata.name);
    if (ev.type === 'DELETED') {
      await this.o.store.delete('Profile', name).catch(() => undefined);
      return;
    }
    const want = namespaceProfile(ev.object);
    const cur = await this.o.store.get('Profile', name);
    if (cur && JSON.stringify(cur.spec.labelsToApply) === JSON.stringify(want.spec.labelsToApply)) return;
    try {
      await (cur
        ? this.o.store.update({ ...cur, spec: { ...cur.spec, labelsToApply: want.spec.labelsToApply } })
        : this.o.store.create(want));
    } catch (e) {
      if (!(e instanceof ResourceExists || e instanceof ResourceConflict)) throw e;
    }
  }

  private async onPod(ev: K8sWatchEvent): Promise<void> {
    if (ev.type === 'DELETED') return; // CNI DEL removes the endpoint
    const ns = ev.object.metadata.namespace ?? 'default';
    const name = `${ns}/${workloadEndpointName(this.o.node, 'k8s', ev.object.metadata.name, 'eth0')}`;
    const { labels, ports } = endpointFromPod(ev.object);
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur: WorkloadEndpoint | undefined = await this.o.store.get('WorkloadEndpoint', name);
      if (!cur) return; // not wired yet: CNI ADD creates it (and the next event or resync brings labels)
      const sameLabels = JSON.stringify(cur.metadata.labels ?? {}) === JSON.stringify(labels);
      const samePorts = JSON.stringify(cur.spec.ports ?? []) === JSON.stringify(ports);
      if (sameLabels && samePorts) return;
      try {
        await this.o.store.update({
          ...cur,
          metadata: { ...cur.metadata, labels },
          spec: { ...cur.spec, ...(ports.length ? { ports } : {}) },
        });
        return;
      } catch (e) {
        if (!(e instanceof ResourceConflict)) throw e;
      }
    }
  }
}

/** tabby-node's one call: in a cluster (KUBERNETES_SERVICE_HOST set), start the sync; else undefined. */
export async function startK8sLabelSync(
  o: Omit<K8sSyncOptions, 'api'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<K8sLabelSync | undefined> {
  if (!k8sConfigured(env)) return undefined;
  const s = new K8sLabelSync({ ...o, api: await K8sApi.inCluster(env) });
  s.start();
  return s;
}
