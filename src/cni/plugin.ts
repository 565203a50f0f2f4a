// The CNI commands (spec 1.0.0 §"Execution protocol"; STATUS and GC from 1.1.0), for both names the
// program answers to: `tabby` (allocate through IPAM + wire the pod) and `tabby-ipam` (IPAM only).
// Everything real (datastore/IPAM, the dataplane's workload wiring, the node name) comes in through
// PluginDeps, so the commands are testable without a kernel; main.ts builds the real ones.
import type { Ipam } from '../ipam/index.js';
import { workloadIfName, WORKLOAD_GATEWAY_V4, WORKLOAD_GATEWAY_V6 } from '../dataplane/ownership.js';
import {
  CNI_ERR,
  CniError,
  SUPPORTED_VERSIONS,
  parseNetConf,
  parseValidAttachments,
  prevResultAddresses,
  type CniEnv,
  type NetConf,
} from './netconf.js';
import { echo } from '../common/echo.js';
import { toCniError } from './errors.js';
import { addWorkloadEndpoint, endpointDeleter, endpointWriter, ensureNamespaceProfile, type EndpointIdentity } from './endpoint.js';

export interface WireRequest {
  hostIfName: string;
  containerNetnsPath: string;
  containerIfName: string;
  /** Bare addresses. */
  ipv4?: string;
  ipv6?: string;
  mtu?: number;
}

export interface WireResult {
  hostIfName: string;
  hostMac: string;
  containerMac: string;
  containerIfIndex: number;
}

/** The dataplane's workload wiring, as the plugin uses it. */
export interface Wiring {
  wire(req: WireRequest): Promise<WireResult>;
  /** Idempotent: gone already is fine. */
  unwire(req: { hostIfName: string; containerNetnsPath?: string; containerIfName?: string }): Promise<void>;
  /** After DEL released `ips`: the routes to them through the pod's (retired, not yet deleted) link go. */
  unroute?(req: { hostIfName: string; ips: string[] }): Promise<void>;
  /** Problems found (empty = as wired). */
  check(req: WireRequest): Promise<string[]>;
}

export interface IpamHandle {
  ipam: Ipam;
  close(): Promise<void>;
}

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface PluginDeps {
  openIpam(conf: NetConf): Promise<IpamHandle>;
  wiring(): Promise<Wiring>;
  nodename(conf: NetConf): string;
  /** Whether the path is a network namespace (real: isNetworkNamespace in netns.ts). */
  netnsExists(path: string): boolean;
  logger: Logger;
}

export type PluginName = 'tabby' | 'tabby-ipam';

export interface Outcome {
  /** What to print on stdout ('' for none). */
  stdout: string;
  exitCode: number;
}

interface ResultIp {
  address: string;
  gateway?: string;
  interface?: number;
}
interface ResultInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}
interface CniResult {
  cniVersion: string;
  interfaces?: ResultInterface[];
  ips: ResultIp[];
  routes: { dst: string; gw?: string }[];
  dns: Record<string, unknown>;
}

/** The result JSON for the configured version: 0.3.x/0.4.0 carry "version" on each IP. */
export function formatResult(version: string, r: CniResult): Record<string, unknown> {
  const legacy = version.startsWith('0.');
  return {
    ...r,
    cniVersion: version,
    ips: r.ips.map((ip) => (legacy ? { version: ip.address.includes(':') ? '6' : '4', ...ip } : ip)),
  };
}

const handleFor = (conf: NetConf, env: CniEnv) => `${conf.name}.${env.containerId}`;

function podIdentity(env: CniEnv): { namespace?: string; pod?: string } {
  const ns = env.args.K8S_POD_NAMESPACE;
  const pod = env.args.K8S_POD_NAME;
  return { ...(ns ? { namespace: ns } : {}), ...(pod ? { pod } : {}) };
}

/** Host-side interface name: Calico's, from the pod's namespace/name, or from the container id. */
export function hostIfNameFor(env: CniEnv): string {
  const { namespace, pod } = podIdentity(env);
  return namespace && pod ? workloadIfName(namespace, pod) : workloadIfName('cni', env.containerId);
}

export async function runCommand(name: PluginName, env: CniEnv, stdin: Buffer, deps: PluginDeps): Promise<Outcome> {
  let version = '1.0.0';
  try {
    if (env.command === 'VERSION') {
      let v = SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1] as string;
      try {
        const d = JSON.parse(stdin.toString() || '{}') as { cniVersion?: unknown };
        if (typeof d.cniVersion === 'string') v = d.cniVersion;
      } catch {
        /* version of the plugin */
      }
      return { stdout: JSON.stringify({ cniVersion: v, supportedVersions: SUPPORTED_VERSIONS }), exitCode: 0 };
    }
    const conf = parseNetConf(stdin);
    version = conf.cniVersion;
    if ((env.command === 'STATUS' || env.command === 'GC') && !conf.cniVersion.startsWith('1.1')) {
      throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `${env.command} needs cniVersion 1.1.0 (the config says ${conf.cniVersion})`);
    }
    const out = await dispatch(name, env, conf, deps);
    return { stdout: out === undefined ? '' : JSON.stringify(out), exitCode: 0 };
  } catch (e) {
    const err = toCniError(e);
    deps.logger.error({ err: e, code: err.code, command: env.command, containerId: env.containerId }, err.message);
    return { stdout: JSON.stringify(err.toJSON(version)), exitCode: 1 };
  }
}

async function dispatch(name: PluginName, env: CniEnv, conf: NetConf, deps: PluginDeps): Promise<unknown> {
  switch (env.command) {
    case 'ADD':
      return add(name, env, conf, deps);
    case 'DEL':
      await del(name, env, conf, deps);
      return undefined;
    case 'CHECK':
      await check(name, env, conf, deps);
      return undefined;
    case 'STATUS':
      await status(conf, deps);
      return undefined;
    case 'GC':
      await gc(conf, deps);
      return undefined;
    default:
      throw new CniError(CNI_ERR.INVALID_ENV, `unknown CNI_COMMAND ${String(env.command)}`);
  }
}

async function withIpam<T>(conf: NetConf, deps: PluginDeps, fn: (ipam: Ipam) => Promise<T>): Promise<T> {
  const h = await deps.openIpam(conf);
  try {
    return await fn(h.ipam);
  } finally {
    await h.close().catch(() => undefined);
  }
}

async function add(name: PluginName, env: CniEnv, conf: NetConf, deps: PluginDeps): Promise<Record<string, unknown>> {
  if (name === 'tabby' && !deps.netnsExists(env.netns)) {
    throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, `CNI_NETNS ${echo(env.netns, 200)} is not a network namespace`);
  }
  const node = deps.nodename(conf);
  const handle = handleFor(conf, env);
  const requested = [...conf.requestedIps];
  if (env.args.IP)
    requested.push(
      ...env.args.IP.split(',')
        .map((s) => s.trim().split('/')[0]!)
        .filter(Boolean),
    );
  const attrs = { node, containerID: env.containerId, ...podIdentity(env) };
  const endpoint: EndpointIdentity = { node, ...podIdentity(env), containerId: env.containerId, endpoint: env.ifName };
  const hostIfName = hostIfNameFor(env);
  const log = deps.logger;
  log.debug({ handle, uptimeMs: Math.round(performance.now()) }, 'ADD: start');

  return withIpam(conf, deps, async (ipam) => {
    log.debug({ handle, uptimeMs: Math.round(performance.now()) }, 'ADD: datastore open');
    // Idempotent ADD: a container that already holds addresses keeps them. (The namespace's profile is
    // checked meanwhile: one round trip less on etcd.)
    let [addrs] = await Promise.all([ipam.ipsByHandle(handle), name === 'tabby' ? ensureNamespaceProfile(ipam.ds, endpoint) : undefined]);
    const fresh = addrs.length === 0;
    // A fresh pod's WorkloadEndpoint goes into the IPAM commit that assigns its addresses (one synced
    // write, all or nothing), before the wiring: the policy engine programs it while the veth is made.
    // Its policy is keyed by interface name, and a cali interface without one drops (render.ts).
    let joined = false;
    if (fresh) {
      if (requested.length) {
        const got: string[] = [];
        try {
          for (const ip of requested) got.push(`${(await ipam.assignIP({ ip, handle, node, attrs })).ip}/${ip.includes(':') ? 128 : 32}`);
        } catch (e) {
          await ipam.releaseByHandle(handle).catch(() => undefined);
          throw e;
        }
        addrs = got;
      } else {
        const r = await ipam.autoAssign({
          handle,
          node,
          attrs,
          ...(name === 'tabby' ? { also: endpointWriter(ipam.ds, endpoint, hostIfName) } : {}),
          num4: conf.ipam.assignIpv4 ? 1 : 0,
          num6: conf.ipam.assignIpv6 ? 1 : 0,
          ...(conf.ipam.ipv4Pools.length ? { pools4: conf.ipam.ipv4Pools } : {}),
          ...(conf.ipam.ipv6Pools.length ? { pools6: conf.ipam.ipv6Pools } : {}),
        });
        addrs = [...r.ipv4, ...r.ipv6];
        joined = name === 'tabby' && addrs.length > 0;
      }
      log.info({ handle, node, addrs, uptimeMs: Math.round(performance.now()) }, 'assigned');
    } else {
      log.info({ handle, node, addrs }, 'container already holds addresses: reusing them');
    }
    const v4 = addrs.find((a) => !a.includes(':'));
    const v6 = addrs.find((a) => a.includes(':'));

    if (name === 'tabby-ipam') {
      return formatResult(conf.cniVersion, {
        cniVersion: conf.cniVersion,
        ips: addrs.map((address) => ({ address })),
        routes: [],
        dns: {},
      });
    }

    let wired: WireResult;
    const req: WireRequest = {
      hostIfName,
      containerNetnsPath: env.netns,
      containerIfName: env.ifName,
      ...(v4 ? { ipv4: v4.split('/')[0]! } : {}),
      ...(v6 ? { ipv6: v6.split('/')[0]! } : {}),
      ...(conf.mtu !== undefined ? { mtu: conf.mtu } : {}),
    };
    try {
      wired = await (await deps.wiring()).wire(req);
    } catch (e) {
      if (fresh)
        await ipam
          .releaseByHandle(handle, joined ? endpointDeleter(ipam.ds, endpoint).ops : undefined)
          .catch((err: unknown) => log.error({ err, handle }, 'could not release after a failed ADD'));
      throw e;
    }
    log.debug({ handle, uptimeMs: Math.round(performance.now()) }, 'ADD: wired');
    if (!joined)
      await addWorkloadEndpoint(ipam.ds, endpoint, wired.hostIfName, addrs, async () => {
        await (await deps.wiring()).unwire({ hostIfName: req.hostIfName, containerNetnsPath: env.netns, containerIfName: env.ifName });
        if (fresh) await ipam.releaseByHandle(handle);
      });
    log.info({ handle, hostIfName: wired.hostIfName, uptimeMs: Math.round(performance.now()) }, 'pod wired');
    const interfaces: ResultInterface[] = [
      { name: wired.hostIfName, mac: wired.hostMac },
      { name: env.ifName, mac: wired.containerMac, sandbox: env.netns },
    ];
    const routes: { dst: string; gw?: string }[] = [];
    if (v4) routes.push({ dst: '0.0.0.0/0', gw: WORKLOAD_GATEWAY_V4 });
    if (v6) routes.push({ dst: '::/0', gw: WORKLOAD_GATEWAY_V6 });
    // A chained plugin before us (unusual) keeps its interfaces/IPs in front of ours.
    return formatResult(conf.cniVersion, {
      cniVersion: conf.cniVersion,
      interfaces,
      ips: addrs.map((address) => ({ address, interface: 1, gateway: address.includes(':') ? WORKLOAD_GATEWAY_V6 : WORKLOAD_GATEWAY_V4 })),
      routes,
      dns: {},
    });
  });
}

async function del(name: PluginName, env: CniEnv, conf: NetConf, deps: PluginDeps): Promise<void> {
  const handle = handleFor(conf, env);
  const log = deps.logger;
  const at = () => Math.round(performance.now());
  log.debug({ handle, uptimeMs: at() }, 'DEL: start');
  let h: IpamHandle | undefined;
  let openError: unknown;
  try {
    h = await deps.openIpam(conf);
  } catch (e) {
    openError = e; // the kernel side is still cleaned up before the error is reported
  }
  const endpoint: EndpointIdentity = { node: deps.nodename(conf), ...podIdentity(env), containerId: env.containerId, endpoint: env.ifName };
  // The pod's endpoint, read at once. One that names another container is another sandbox of the same pod
  // (same endpoint and host veth names) whose ADD wrote it after this one's — and replaced this one's veth
  // (this container's own wiring exists only if its endpoint was written): a late DEL of this sandbox
  // releases its own addresses and leaves that sandbox's endpoint and wiring alone.
  const deleter = h && name === 'tabby' ? endpointDeleter(h.ipam.ds, endpoint) : undefined;
  try {
    const other = await deleter?.otherContainer;
    if (other)
      log.info({ handle, containerId: other }, "DEL: the pod's endpoint belongs to another container: its wiring and endpoint stay");
    if (name === 'tabby' && !other) {
      const netns = env.netns && deps.netnsExists(env.netns) ? env.netns : undefined;
      await (await deps.wiring()).unwire({
        hostIfName: hostIfNameFor(env),
        ...(netns ? { containerNetnsPath: netns, containerIfName: env.ifName } : {}),
      });
      log.debug({ handle, uptimeMs: at() }, 'DEL: unwired');
    }
    if (!h) throw openError;
    // The endpoint's delete goes into the commit that drops the handle: one synced write, all or nothing.
    const released = await h.ipam.releaseByHandle(handle, deleter?.ops);
    // A batched veth deletion keeps the link a moment longer: nothing may route to the released
    // addresses through it (a new pod's route to a reused address goes through the new link and stays).
    if (name === 'tabby' && !other && released.length)
      await (await deps.wiring()).unroute?.({ hostIfName: hostIfNameFor(env), ips: released });
    log.info({ handle, released, uptimeMs: at() }, 'deleted');
  } finally {
    await h?.close().catch(() => undefined);
  }
}

async function check(name: PluginName, env: CniEnv, conf: NetConf, deps: PluginDeps): Promise<void> {
  const prev = conf.prevResult;
  if (!prev) throw new CniError(CNI_ERR.INVALID_NETCONF, 'CHECK needs prevResult in the network configuration');
  const prevIps = prevResultAddresses(prev);
  if (name === 'tabby' && !deps.netnsExists(env.netns))
    throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, `CNI_NETNS ${echo(env.netns, 200)} is not a network namespace`);
  const handle = handleFor(conf, env);
  const held = await withIpam(conf, deps, (ipam) => ipam.ipsByHandle(handle));
  const missing = prevIps.filter((a) => a.includes('/') && !held.includes(a) && (a.endsWith('/32') || a.endsWith('/128')));
  if (held.length === 0) throw new CniError(CNI_ERR.INTERNAL, `container ${env.containerId} holds no address in IPAM`);
  if (missing.length)
    throw new CniError(
      CNI_ERR.INTERNAL,
      `IPAM does not hold ${missing.join(', ')} for container ${env.containerId}`,
      `held: ${held.join(', ')}`,
    );
  if (name === 'tabby-ipam') return;
  const v4 = held.find((a) => !a.includes(':'));
  const v6 = held.find((a) => a.includes(':'));
  const problems = await (await deps.wiring()).check({
    hostIfName: hostIfNameFor(env),
    containerNetnsPath: env.netns,
    containerIfName: env.ifName,
    ...(v4 ? { ipv4: v4.split('/')[0]! } : {}),
    ...(v6 ? { ipv6: v6.split('/')[0]! } : {}),
  });
  if (problems.length) throw new CniError(CNI_ERR.INTERNAL, `pod network is not as set up: ${problems[0]}`, problems.join('; '));
}

async function status(conf: NetConf, deps: PluginDeps): Promise<void> {
  try {
    await withIpam(conf, deps, async (ipam) => {
      const pools = (await ipam.listPools()).filter((p) => !p.disabled);
      if (pools.length === 0) throw new CniError(CNI_ERR.PLUGIN_NOT_AVAILABLE, 'no enabled IP pool: pods cannot get addresses yet');
    });
  } catch (e) {
    if (e instanceof CniError) throw e;
    throw new CniError(CNI_ERR.PLUGIN_NOT_AVAILABLE, `datastore not reachable: ${(e as Error).message}`);
  }
}

/** CNI 1.1 GC: release this network's addresses on this node whose attachment is not in the valid list.
 *  Fails closed: no well-formed list, nothing released (code 7). Only handles this plugin made for this
 *  network on this node (`<network>.<containerID>` with those attributes) are candidates. */
async function gc(conf: NetConf, deps: PluginDeps): Promise<void> {
  const keep = parseValidAttachments(conf.raw);
  const node = deps.nodename(conf);
  await withIpam(conf, deps, async (ipam) => {
    for (const { value: h } of await ipam.store.listHandles()) {
      const id = h.attrs?.containerID;
      if (!id || h.handleId !== `${conf.name}.${id}` || keep.has(id) || h.attrs?.node !== node) continue;
      const released = await ipam.releaseByHandle(h.handleId);
      deps.logger.info({ handle: h.handleId, released }, 'gc: released addresses of a gone attachment');
    }
  });
}
