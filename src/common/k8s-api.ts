// The in-cluster Kubernetes API client tabby-node uses (no client library): list + watch over HTTP(S)
// with the service account's token and CA, the API server's JSON and its newline-delimited watch
// stream, and one list-then-watch loop that lists again after any failure. Shared by the pod/namespace
// label sync (src/policy/k8s-sync.ts) and service advertisement (src/agent/k8s-services.ts). Tested
// against fixture HTTP servers speaking the real JSON (no API server runs on the test machines).
import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import type { Logger } from './log.js';

export interface K8sObject {
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}
export interface K8sList {
  metadata: { resourceVersion: string };
  items: K8sObject[];
}
export interface K8sWatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: K8sObject & { code?: number; message?: string };
}

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
    if (env.K8S_API_ENDPOINT) return K8sApi.fromEndpoint(env);
    const host = env.KUBERNETES_SERVICE_HOST!;
    const [token, ca] = await Promise.all([readFile(`${saDir}/token`, 'utf8'), readFile(`${saDir}/ca.crt`)]);
    return new K8sApi({
      baseUrl: `https://${host.includes(':') ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT}`,
      token: token.trim(),
      ca,
    });
  }

  /** Calico's explicit endpoint (K8S_API_ENDPOINT, with K8S_API_TOKEN and K8S_CA_FILE when given). */
  static async fromEndpoint(env: NodeJS.ProcessEnv): Promise<K8sApi> {
    const ca = env.K8S_CA_FILE ? await readFile(env.K8S_CA_FILE) : undefined;
    return new K8sApi({
      baseUrl: env.K8S_API_ENDPOINT!,
      ...(env.K8S_API_TOKEN ? { token: env.K8S_API_TOKEN } : {}),
      ...(ca ? { ca } : {}),
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

export { k8sConfigured } from './k8s-env.js';

/** List `path`, hand every object to `on` as ADDED (after `onList` with the whole list, so a caller
 *  can drop what vanished), then follow the watch; on any failure log and list again after 1 s, until
 *  `signal` aborts. */
export async function listWatch(
  api: K8sApi,
  path: string,
  on: (ev: K8sWatchEvent) => Promise<void> | void,
  signal: AbortSignal,
  logger: Pick<Logger, 'warn'>,
  onList?: (items: K8sObject[]) => Promise<void> | void,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const l = await api.list(path);
      await onList?.(l.items);
      for (const object of l.items) await on({ type: 'ADDED', object });
      let rv = l.metadata.resourceVersion;
      for await (const ev of api.watch(path, rv, signal)) {
        if (ev.type === 'ERROR') throw new K8sApiError(path, ev.object.code, ev.object.message ?? 'watch error (relisting)');
        if (ev.object.metadata.resourceVersion) rv = ev.object.metadata.resourceVersion;
        if (ev.type !== 'BOOKMARK') await on(ev);
      }
    } catch (e) {
      if (signal.aborted) return;
      logger.warn({ err: (e as Error).message, path }, 'kubernetes watch failed; listing again');
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
