// Pods in the lab, created the way containerd creates them: a fresh network namespace, then the real
// `tabby` CNI plugin executed (inside the node's namespace, the node's "host") with the CNI_* env and
// the network config on stdin. The plugin is reached through wrapper scripts `tabby`/`tabby-ipam`
// in the lab's own CNI bin directory (the same wrappers tabby-install-cni writes on a host).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { CLIENT_PATH, installPluginFiles } from '../cni/install.js';
import { createNetns, deleteNetns, netnsPath, runIn } from './netns.js';

/** Repository root (works from src/lab and dist/src/lab). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'dist/src'))) return dir;
  }
  throw new Error('cannot find the tabby checkout (package.json with dist/src): run "make build"');
}

/** Install the CNI client (`tabby`, `tabby-ipam`) and `tabby-fallback` into `binDir` (idempotent); returns binDir.
 *  A checkout whose native build predates the client gets the in-process plugin's wrappers, and a warning. */
export function installCniWrappers(binDir: string): string {
  const client = path.join(repoRoot(), CLIENT_PATH);
  if (!fs.existsSync(client))
    process.stderr.write(`lab: ${client} not built (run "npm ci"): pods use the in-process CNI plugin, not tabby-node's resident one\n`);
  installPluginFiles({ binDir, nodeBinary: process.execPath, appDir: repoRoot(), client: fs.existsSync(client) ? client : undefined });
  return binDir;
}

export interface CniContext {
  binDir: string;
  datastoreDir: string;
  logFile: string;
  /** Each node's agent state dir is <nodesDir>/<node> (its resident CNI socket is there). */
  nodesDir: string;
  /** dual stack: every pod gets an IPv6 address too (ipam assign_ipv6) */
  ipv6?: boolean;
  mtu?: number;
}

export class CniFailure extends Error {
  readonly code = 'ECNIFAIL';
  constructor(
    readonly command: string,
    readonly pod: string,
    readonly result: { code: number | null; stdout: string; stderr: string },
  ) {
    super(`CNI ${command} for pod ${pod} failed (exit ${result.code}): ${(result.stdout || result.stderr).trim().slice(0, 600)}`);
    this.name = 'CniFailure';
  }
}

/** The network config a kubelet/containerd would pass (what tabby-install-cni writes, minus portmap). */
export function labNetConf(ctx: CniContext, nodeName: string): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'tabby',
    nodename: nodeName,
    datastore_type: 'file',
    datastore_dir: ctx.datastoreDir,
    log_file_path: ctx.logFile,
    ...(ctx.mtu ? { mtu: ctx.mtu } : {}),
    ipam: { type: 'tabby-ipam', ...(ctx.ipv6 ? { assign_ipv6: 'true' } : {}) },
  };
}

export const containerIdFor = (pod: string): string => createHash('sha256').update(`tabby-lab/${pod}`).digest('hex').slice(0, 32);

function cniEnv(
  ctx: CniContext,
  nodeName: string,
  command: string,
  containerId: string,
  podNetns: string,
  pod: string,
  namespace = 'default',
): NodeJS.ProcessEnv {
  return {
    TABBY_STATE_DIR: path.join(ctx.nodesDir, nodeName),
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netnsPath(podNetns),
    CNI_IFNAME: 'eth0',
    CNI_PATH: ctx.binDir,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
    ...(process.env.TABBY_LOG_LEVEL ? { TABBY_LOG_LEVEL: process.env.TABBY_LOG_LEVEL } : {}),
  };
}

/** Create the pod's namespace and run CNI ADD in the node's namespace; returns the pod's IPv4 address. */
export async function addPodViaCni(
  ctx: CniContext,
  opts: { nodeName: string; nodeNetns: string; pod: string; podNetns: string; namespace?: string },
): Promise<{ ip: string; ip6?: string; containerId: string; result: unknown }> {
  createNetns(opts.podNetns);
  const containerId = containerIdFor(opts.pod);
  const conf = JSON.stringify(labNetConf(ctx, opts.nodeName));
  const r = await runIn(opts.nodeNetns, path.join(ctx.binDir, 'tabby'), [], {
    input: conf,
    env: cniEnv(ctx, opts.nodeName, 'ADD', containerId, opts.podNetns, opts.pod, opts.namespace),
    timeoutMs: 60_000,
  });
  if (r.code !== 0) {
    deleteNetns(opts.podNetns);
    throw new CniFailure('ADD', opts.pod, r);
  }
  let result: { ips?: { address?: string }[] };
  try {
    result = JSON.parse(r.stdout) as typeof result;
  } catch {
    throw new CniFailure('ADD', opts.pod, { ...r, stdout: `not JSON: ${r.stdout}` });
  }
  const v4 = (result.ips ?? []).map((i) => i.address ?? '').find((a) => a.includes('.'));
  if (!v4) throw new CniFailure('ADD', opts.pod, { ...r, stdout: `no IPv4 address in the result: ${r.stdout}` });
  const v6 = (result.ips ?? []).map((i) => i.address ?? '').find((a) => a.includes(':'));
  if (ctx.ipv6 && !v6) throw new CniFailure('ADD', opts.pod, { ...r, stdout: `no IPv6 address in the result: ${r.stdout}` });
  return { ip: v4.split('/')[0]!, ...(v6 ? { ip6: v6.split('/')[0]! } : {}), containerId, result };
}

/** CNI DEL (idempotent in the plugin) then delete the pod's namespace. */
export async function deletePodViaCni(
  ctx: CniContext,
  opts: { nodeName: string; nodeNetns: string; pod: string; podNetns: string; containerId: string; namespace?: string },
): Promise<void> {
  const conf = JSON.stringify(labNetConf(ctx, opts.nodeName));
  try {
    const r = await runIn(opts.nodeNetns, path.join(ctx.binDir, 'tabby'), [], {
      input: conf,
      env: cniEnv(ctx, opts.nodeName, 'DEL', opts.containerId, opts.podNetns, opts.pod, opts.namespace),
      timeoutMs: 60_000,
    });
    if (r.code !== 0) throw new CniFailure('DEL', opts.pod, r);
  } finally {
    deleteNetns(opts.podNetns);
  }
}
