// kubernetes-internal-ip: the node's InternalIP(s) from the Kubernetes Node object, read in-cluster
// (service-account token + CA, KUBERNETES_SERVICE_HOST/PORT) with one GET /api/v1/nodes/<name>.
import fs from 'node:fs';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

interface K8sNodeAddress {
  type?: string;
  address?: string;
}

/** InternalIP addresses listed in a Node object's status (pure). */
export function internalIpsOfNode(node: unknown): string[] {
  const addrs = (node as { status?: { addresses?: K8sNodeAddress[] } } | undefined)?.status?.addresses ?? [];
  return addrs.filter((a) => a.type === 'InternalIP' && typeof a.address === 'string').map((a) => a.address!);
}

/** True when running in a pod with a service account (the in-cluster API is usable). */
export function inCluster(env: Record<string, string | undefined> = process.env): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT);
}

/** GET the Node from the in-cluster API server and return its InternalIPs. Throws with the HTTP status on failure. */
export async function fetchInternalIps(
  nodeName: string,
  env: Record<string, string | undefined> = process.env,
  saDir: string = SERVICE_ACCOUNT_DIR,
  timeoutMs = 10_000,
): Promise<string[]> {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = Number(env.KUBERNETES_SERVICE_PORT);
  // fs.promises loads node's promise fs (and its readline) only here: a static import of node:fs/promises
  // cost every one-file agent on etcd ~0.4 MB whether it used this method or not
  const [token, ca] = await Promise.all([fs.promises.readFile(`${saDir}/token`, 'utf8'), fs.promises.readFile(`${saDir}/ca.crt`)]);
  // loaded here: node:https (and TLS) costs idle memory in every agent that never uses this method
  const { default: https } = await import('node:https');
  const body = await new Promise<string>((resolve, reject) => {
    const req = https.request(
      {
        host: host.includes(':') ? `[${host}]` : host,
        port,
        method: 'GET',
        ca,
        timeout: timeoutMs,
        path: `/api/v1/nodes/${encodeURIComponent(nodeName)}`,
        headers: { authorization: `Bearer ${token.trim()}`, accept: 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) reject(new Error(`GET /api/v1/nodes/${nodeName}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          else resolve(text);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET /api/v1/nodes/${nodeName}: timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
  return internalIpsOfNode(JSON.parse(body));
}
