// Pod and namespace labels from the Kubernetes API (what Calico's controllers do): tabby-node lists
// and watches namespaces and the pods of its own node, and keeps
//   Profile kns.<ns>       labelsToApply pcns.<label> for every namespace label (namespaceSelector)
//   WorkloadEndpoint       labels = the pod's labels (+ projectcalico.org/namespace, orchestrator,
//                          serviceaccount), ports = the containers' named ports (named-port rules)
// The CNI plugin creates the endpoint at ADD; this only keeps its labels and ports current.
// Mapping is pure (namespaceProfile, endpointFromPod); K8sApi is the thin HTTP shell (list + watch,
// the API server's JSON and its newline-delimited watch stream). Tested against a fixture server.
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../common/log.js';
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

export interface K8sObject {
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
  spec?: Record<string, unknown>;
}
export interface K8sList {
  metadata: { resourceVersion: string };
  items: K8sObject[];
}
export interface K8sWatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: K8sObject & { code?: number; message?: string };
}

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

// ------------------------------------------------------------------ the HTTP shell

export interface K8sApiOptions {
  /** "https://10.96.0.1:443" in a cluster; "http://127.0.0.1:PORT" for the fixture server */
  baseUrl: string;
  token?: string;
  ca?: Buffer;
  timeoutMs?: number;
}

export class K8sApiError extends Error {
  readonly code = 'EK8SAPI';
  constructor(
    readonly path: string,
    readonly status: number | undefined,
    message: string,
  ) {
    super(`GET ${path}: ${message}`);
    this.name = 'K8sApiError';
  }
}

export class K8sApi {
  constructor(private readonly o: K8sApiOptions) {}

  /** In-cluster: the service account token and CA, KUBERNETES_SERVICE_HOST/PORT. */
  static async inCluster(env: NodeJS.ProcessEnv = process.env, saDir = '/var/run/secrets/kubernetes.io/serviceaccount'): Promise<K8sApi> {
    const host = env.KUBERNETES_SERVICE_HOST!;
    const [token, ca] = await Promise.all([readFile(`${saDir}/token`, 'utf8'), readFile(`${saDir}/ca.crt`)]);
    return new K8sApi({
      baseUrl: `https://${host.includes(':') ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT}`,
      token: token.trim(),
      ca,
    });
  }

  private request(path: string, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const url = new URL(path, this.o.baseUrl);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method: 'GET',
          ...(this.o.ca ? { ca: this.o.ca } : {}),
          ...(signal ? { signal } : {}),
          headers: { accept: 'application/json', ...(this.o.token ? { authorization: `Bearer ${this.o.token}` } : {}) },
        },
        (res) => {
          if (res.statusCode !== 200) {
            let body = '';
            res
              .setEncoding('utf8')
              .on('data', (d: string) => {
                body += d;
              })
              .on('end', () => reject(new K8sApiError(path, res.statusCode, `HTTP ${res.statusCode}: ${body.slice(0, 200)}`)));
            return;
          }
          resolve(res);
        },
      );
      req.setTimeout(this.o.timeoutMs ?? 10_000, () => req.destroy(new K8sApiError(path, undefined, 'no answer')));
      req.on('error', (e) => reject(e instanceof K8sApiError ? e : new K8sApiError(path, undefined, e.message)));
      req.end();
    });
  }

  async list(path: string): Promise<K8sList> {
    const res = await this.request(path);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as K8sList;
  }

  /** The watch stream: one JSON event per line, until the server ends it or `signal` aborts. */
  async *watch(path: string, resourceVersion: string, signal?: AbortSignal): AsyncIterable<K8sWatchEvent> {
    const sep = path.includes('?') ? '&' : '?';
    const res = await this.request(
      `${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}`,
      signal,
    );
    let buf = '';
    for await (const c of res) {
      buf += (c as Buffer).toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) yield JSON.parse(line) as K8sWatchEvent;
      }
    }
  }
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
    void this.loop('/api/v1/namespaces', (ev) => this.onNamespace(ev));
    void this.loop(`/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${this.o.node}`)}`, (ev) => this.onPod(ev));
  }

  stop(): void {
    this.abort.abort();
  }

  private async loop(path: string, on: (ev: K8sWatchEvent) => Promise<void>): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const l = await this.o.api.list(path);
        for (const object of l.items) await on({ type: 'ADDED', object });
        let rv = l.metadata.resourceVersion;
        for await (const ev of this.o.api.watch(path, rv, signal)) {
          if (ev.type === 'ERROR') throw new K8sApiError(path, ev.object.code, ev.object.message ?? 'watch error (relisting)');
          if (ev.object.metadata.resourceVersion) rv = ev.object.metadata.resourceVersion;
          if (ev.type !== 'BOOKMARK') await on(ev);
        }
      } catch (e) {
        if (signal.aborted) return;
        this.o.logger.warn({ err: (e as Error).message, path }, 'kubernetes watch failed; listing again');
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
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
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) return undefined;
  const s = new K8sLabelSync({ ...o, api: await K8sApi.inCluster(env) });
  s.start();
  return s;
}
