// The Lab: N tabby nodes on one machine. Each node is a network namespace on the shared underlay
// (topology.ts) running its own `tabby-node` (dist/src/agent/main.js, started inside the namespace),
// all on one embedded file datastore under the lab's state directory; pods come from the real CNI
// plugin (pods.ts). Everything is named `<prefix>-…` (default prefix `tabby-lab`), recorded in
// <stateDir>/lab.json, and removed by destroy()/destroyLab() — from this or any other process.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { openNetlink } from '../dataplane/index.js';
import { openDatastore } from '../datastore/index.js';
import { ResourceStore, type BGPConfiguration, type BGPPeer, type IPPool } from '../datastore/resources.js';
import { log } from '../common/log.js';
import type { AgentStatusJson } from '../agent/status-types.js';
import { listNetns, netnsPath, processAlive, processStartTime, runIn, spawnIn, stopProcess, deleteNetns, type RunResult } from './netns.js';
import {
  attachNode,
  buildUnderlay,
  detachNode,
  MAX_ORDINAL,
  nodeNetnsName,
  routerNetnsName,
  underlayNetnsName,
  SUBNETS,
  type SubnetName,
} from './topology.js';
import { labelLabPod } from './pod-labels.js';
import { addPodViaCni, deletePodViaCni, installCniWrappers, repoRoot, type CniContext } from './pods.js';
import {
  readLabState,
  writeLabState,
  DEFAULT_LAB_PREFIX,
  DEFAULT_LAB_STATE_DIR,
  type LabMode,
  type LabNodeState,
  type LabPodState,
  type LabState,
} from './state.js';
import { destroyLab, lastLogLine } from './down.js';
import { labEnv, resolveCommand, LAB_AUTODETECTION_METHOD } from './env.js';
import { mapLimit, type ProbePair } from './probe.js';
import { agentEntryPath } from '../agent/bundle-path.js';

export type { LabMode, LabNodeState, LabPodState, LabState } from './state.js';
export { DEFAULT_LAB_PREFIX, DEFAULT_LAB_STATE_DIR } from './state.js';
export { destroyLab, findLabProcesses, lastLogLine } from './down.js';

export const DEFAULT_POOL_CIDR = '10.244.0.0/16';
export const DEFAULT_POOL6_CIDR = 'fd00:10:244::/64';
export const RR_CLUSTER_ID = '244.0.0.1';

const logger = log('lab');

export interface LabOptions {
  /** number of tabby nodes (default 3), named node-1 … node-N unless nodeNames is given */
  nodes?: number;
  nodeNames?: string[];
  /** encapsulation; 'auto' (default) = routed (every node shares one subnet: pod routes come from BGP) */
  mode?: LabMode | 'auto';
  /** extra nodes running tabby-node in route-reflector mode (rr-1 …); with any, the mesh is off by default */
  routeReflectors?: number;
  /** node-to-node mesh (default: on without route reflectors, off with them) */
  mesh?: boolean;
  stateDir?: string;
  prefix?: string;
  poolCidr?: string;
  /** crosssubnet: the tunnel across the router (default: IPIP when the kernel has it, else VXLAN) */
  crossSubnetEncap?: 'ipip' | 'vxlan';
  /** dual stack: IPv6 on the underlay, IPv6 BGP sessions, an IPv6 pool (/122 blocks), pods with both families */
  ipv6?: boolean;
  pool6Cidr?: string;
  /** start one tabby-node per node (default true; false = topology and pods only) */
  startAgents?: boolean;
  /** extra environment for every agent (e.g. TABBY_LOG_LEVEL) */
  agentEnv?: Record<string, string>;
}

export class LabError extends Error {
  readonly code = 'ELAB';
  constructor(message: string) {
    super(message);
    this.name = 'LabError';
  }
}

const NODE_NAME = /^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$/;
const RESERVED = new Set(['underlay', 'router']);

export function validateNodeName(name: string): void {
  if (!NODE_NAME.test(name) || RESERVED.has(name) || name.startsWith('pod-')) {
    throw new LabError(
      `invalid lab node name "${name}": lower-case letters, digits and '-', at most 30 characters, not underlay/router/pod-*`,
    );
  }
}

/** Path of the agent entry point (the one-file build when it is current: agent/bundle-path.ts); undefined when not built. */
export function agentMainPath(): string | undefined {
  try {
    return agentEntryPath(repoRoot());
  } catch {
    return undefined;
  }
}

/** Can this kernel create ipip links? (probed in the given namespace with a throw-away link) */
export async function probeIpip(netns: string): Promise<boolean> {
  const nl = await openNetlink({ netnsPath: netnsPath(netns) });
  try {
    await nl.createLink({ name: 'tlipipprobe', info: { kind: 'ipip' } });
    await nl.deleteLink('tlipipprobe');
    return true;
  } catch {
    return false;
  } finally {
    nl.close();
  }
}

/** The IPv6 pool's encapsulation: VXLAN over IPv6 (vxlan-v6.calico) in the VXLAN modes; Calico has no
 *  IPIP for IPv6, so with --mode ipip the IPv6 pool is routed, and CrossSubnet is VXLAN for IPv6. */
export function pool6Modes(mode: LabMode): { ipipMode: 'Never'; vxlanMode: 'Always' | 'CrossSubnet' | 'Never' } {
  if (mode === 'vxlan') return { ipipMode: 'Never', vxlanMode: 'Always' };
  if (mode === 'crosssubnet') return { ipipMode: 'Never', vxlanMode: 'CrossSubnet' };
  return { ipipMode: 'Never', vxlanMode: 'Never' };
}

function poolModes(
  mode: LabMode,
  hasIpip: boolean,
): { ipipMode: 'Always' | 'CrossSubnet' | 'Never'; vxlanMode: 'Always' | 'CrossSubnet' | 'Never' } {
  switch (mode) {
    case 'routed':
      return { ipipMode: 'Never', vxlanMode: 'Never' };
    case 'ipip':
      return { ipipMode: 'Always', vxlanMode: 'Never' };
    case 'vxlan':
      return { ipipMode: 'Never', vxlanMode: 'Always' };
    case 'crosssubnet':
      return hasIpip ? { ipipMode: 'CrossSubnet', vxlanMode: 'Never' } : { ipipMode: 'Never', vxlanMode: 'CrossSubnet' };
  }
}

/** GET a path from an agent's unix status socket. */
export function queryAgentSocket<T>(socketPath: string, urlPath: string, timeoutMs = 3000): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as T);
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export interface PingResult {
  from: string;
  to: string;
  toIp: string;
  ok: boolean;
}

export class Lab {
  private constructor(public state: LabState) {}

  get nodes(): LabNodeState[] {
    return this.state.nodes;
  }
  get pods(): LabPodState[] {
    return this.state.pods;
  }
  get stateDir(): string {
    return this.state.stateDir;
  }
  get mode(): LabMode {
    return this.state.mode;
  }

  /** Attach to a lab created by another process (lab status/exec/down). */
  static open(stateDir = DEFAULT_LAB_STATE_DIR): Lab | undefined {
    const s = readLabState(stateDir);
    return s ? new Lab(s) : undefined;
  }

  /** Build a new lab. On failure everything created so far is removed again. */
  static async create(opts: LabOptions = {}): Promise<Lab> {
    const prefix = opts.prefix ?? DEFAULT_LAB_PREFIX;
    const stateDir = path.resolve(opts.stateDir ?? DEFAULT_LAB_STATE_DIR);
    if (readLabState(stateDir)) throw new LabError(`a lab already exists in ${stateDir}: run "tabbyctl lab down" first`);
    const leftovers = listNetns(`${prefix}-`);
    if (leftovers.length > 0)
      throw new LabError(`namespaces of an earlier lab still exist (${leftovers.join(', ')}): run "tabbyctl lab down" first`);
    const names = opts.nodeNames ?? Array.from({ length: opts.nodes ?? 3 }, (_, i) => `node-${i + 1}`);
    names.forEach(validateNodeName);
    if (new Set(names).size !== names.length) throw new LabError('lab node names must be unique');
    const rrCount = opts.routeReflectors ?? 0;
    const requested = opts.mode ?? 'auto';
    const crossSubnet = requested === 'crosssubnet';
    const lab = new Lab({
      version: 1,
      prefix,
      stateDir,
      mode: requested === 'auto' ? 'vxlan' : requested,
      modeReason: '',
      poolCidr: opts.poolCidr ?? DEFAULT_POOL_CIDR,
      ...(opts.ipv6 ? { pool6Cidr: opts.pool6Cidr ?? DEFAULT_POOL6_CIDR } : {}),
      meshEnabled: opts.mesh ?? rrCount === 0,
      crossSubnet,
      underlayNetns: underlayNetnsName(prefix),
      routerNetns: routerNetnsName(prefix),
      datastoreDir: path.join(stateDir, 'datastore'),
      nextOrdinal: 1,
      nodes: [],
      pods: [],
      createdAt: new Date().toISOString(),
    });
    fs.mkdirSync(stateDir, { recursive: true });
    lab.save();
    try {
      await buildUnderlay(prefix, crossSubnet, !!opts.ipv6);
      const kernelIpip = await probeIpip(lab.state.underlayNetns);
      // For crosssubnet: the tunnel across the router.
      const hasIpip = opts.crossSubnetEncap ? opts.crossSubnetEncap === 'ipip' : kernelIpip;
      if (requested === 'auto') {
        // Every node is on one underlay subnet: a pod route is simply `via <node>`, learned over BGP
        // (flannel host-gw's shape). A tunnel is only needed across subnets (--mode crosssubnet).
        lab.state.mode = 'routed';
        lab.state.modeReason = `routed (every node is on one subnet, ${SUBNETS.a.cidr}, so pod routes are plain "via <node>" routes learned over BGP — no tunnel needed; --mode vxlan|ipip|crosssubnet for encapsulation)`;
      } else if (requested === 'crosssubnet') {
        lab.state.modeReason = hasIpip
          ? `CrossSubnet with IPIP across the router, plain routing inside a subnet${kernelIpip ? '' : '; WARNING: this kernel has no ipip support, tabby-node will report it'}`
          : `CrossSubnet with VXLAN across the router (${kernelIpip ? 'requested' : 'no ipip in this kernel'}), plain routing inside a subnet`;
      } else {
        lab.state.modeReason = `${requested} (requested with --mode)`;
        if (requested === 'ipip' && !kernelIpip)
          lab.state.modeReason += '; WARNING: this kernel has no ipip support, tabby-node will report it';
      }
      if (opts.ipv6) {
        const m6 = pool6Modes(lab.state.mode).vxlanMode;
        lab.state.modeReason += `; IPv6 pool: ${m6 === 'Never' ? 'routed' : `VXLAN over IPv6 (vxlan-v6.calico)${m6 === 'CrossSubnet' ? ' across the router, plain routing inside a subnet' : ''}`}`;
      }
      lab.save();
      await lab.seedDatastore(hasIpip);
      installCniWrappers(path.join(stateDir, 'cni-bin'));
      let i = 0;
      for (const name of names) await lab.addNode(name, { subnet: crossSubnet && i++ % 2 === 1 ? 'b' : 'a', startAgent: false });
      for (let r = 1; r <= rrCount; r++) await lab.addNode(`rr-${r}`, { role: 'route-reflector', subnet: 'a', startAgent: false });
      if (opts.startAgents ?? true) {
        if (!agentMainPath()) logger.warn('dist/src/agent/main.js is not built: the lab runs without tabby-node');
        else for (const n of lab.nodes) await lab.startAgent(n.name, opts.agentEnv);
      }
      return lab;
    } catch (err) {
      await lab.destroy().catch(() => {});
      throw err;
    }
  }

  save(): void {
    writeLabState(this.state);
  }

  private cni(): CniContext {
    return {
      binDir: path.join(this.stateDir, 'cni-bin'),
      datastoreDir: this.state.datastoreDir,
      logFile: path.join(this.stateDir, 'cni.log'),
      nodesDir: path.join(this.stateDir, 'nodes'),
      ipv6: !!this.state.pool6Cidr,
    };
  }

  node(name: string): LabNodeState {
    const n = this.state.nodes.find((x) => x.name === name);
    if (!n) throw new LabError(`no lab node "${name}" (nodes: ${this.state.nodes.map((x) => x.name).join(', ') || 'none'})`);
    return n;
  }

  pod(name: string): LabPodState {
    const p = this.state.pods.find((x) => x.name === name);
    if (!p) throw new LabError(`no lab pod "${name}" (pods: ${this.state.pods.map((x) => x.name).join(', ') || 'none'})`);
    return p;
  }

  /** The pool, BGP configuration and (with route reflectors) the BGPPeer, written before any agent starts. */
  private async seedDatastore(hasIpip: boolean): Promise<void> {
    fs.mkdirSync(this.state.datastoreDir, { recursive: true });
    const ds = await openDatastore({ type: 'file', dir: this.state.datastoreDir });
    try {
      const rs = new ResourceStore(ds);
      const pool: IPPool = {
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name: 'default-ipv4-ippool' },
        spec: {
          cidr: this.state.poolCidr,
          blockSize: 26,
          ...poolModes(this.state.mode, hasIpip),
          natOutgoing: false,
          disabled: false,
          nodeSelector: 'all()',
          allowedUses: ['Workload', 'Tunnel'],
        },
      };
      await rs.apply(pool);
      if (this.state.pool6Cidr) {
        await rs.apply({
          apiVersion: 'projectcalico.org/v3',
          kind: 'IPPool',
          metadata: { name: 'default-ipv6-ippool' },
          spec: {
            cidr: this.state.pool6Cidr,
            blockSize: 122,
            ...pool6Modes(this.state.mode),
            natOutgoing: false,
            disabled: false,
            nodeSelector: 'all()',
            allowedUses: ['Workload', 'Tunnel'],
          },
        } satisfies IPPool);
      }
      const bgp: BGPConfiguration = {
        apiVersion: 'projectcalico.org/v3',
        kind: 'BGPConfiguration',
        metadata: { name: 'default' },
        spec: { nodeToNodeMeshEnabled: this.state.meshEnabled, asNumber: 64512 },
      };
      await rs.apply(bgp);
      const peer: BGPPeer = {
        apiVersion: 'projectcalico.org/v3',
        kind: 'BGPPeer',
        metadata: { name: 'peer-with-route-reflectors' },
        spec: { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" },
      };
      await rs.apply(peer);
    } finally {
      await ds.close();
    }
  }

  /** Add a node (namespace, underlay link, and its agent unless startAgent is false). */
  async addNode(
    name: string,
    opts: { subnet?: SubnetName; role?: 'node' | 'route-reflector'; startAgent?: boolean; agentEnv?: Record<string, string> } = {},
  ): Promise<LabNodeState> {
    validateNodeName(name);
    if (this.state.nodes.some((n) => n.name === name)) throw new LabError(`lab node "${name}" exists already`);
    const ordinal = this.state.nextOrdinal;
    if (ordinal > MAX_ORDINAL) throw new LabError(`the lab has room for ${MAX_ORDINAL} nodes over its lifetime`);
    const subnet = opts.subnet ?? (this.state.crossSubnet && ordinal % 2 === 0 ? 'b' : 'a');
    if (subnet === 'b' && !this.state.crossSubnet) throw new LabError('subnet b exists only in a crosssubnet lab');
    const node: LabNodeState = {
      name,
      ordinal,
      netns: nodeNetnsName(this.state.prefix, name),
      address: '',
      subnet,
      role: opts.role ?? 'node',
    };
    this.state.nextOrdinal++;
    this.state.nodes.push(node);
    this.save();
    try {
      node.address = await attachNode(this.state.prefix, node, !!this.state.pool6Cidr);
    } catch (err) {
      this.state.nodes = this.state.nodes.filter((n) => n !== node);
      this.save();
      throw err;
    }
    this.save();
    if ((opts.startAgent ?? true) && agentMainPath()) await this.startAgent(name, opts.agentEnv);
    return node;
  }

  /** Environment of a node's tabby-node. */
  agentEnvironment(node: LabNodeState, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const pool = this.state.poolCidr;
    const stateDir = path.join(this.stateDir, 'nodes', node.name);
    return {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      NODENAME: node.name,
      IP: 'autodetect',
      IP_AUTODETECTION_METHOD: LAB_AUTODETECTION_METHOD,
      DATASTORE_TYPE: 'file',
      TABBY_DATASTORE_DIR: this.state.datastoreDir,
      TABBY_STATE_DIR: stateDir,
      TABBY_HEALTH_ADDR: '127.0.0.1:9099',
      TABBY_METRICS_ADDR: '127.0.0.1:9091',
      CALICO_IPV4POOL_CIDR: pool,
      CALICO_IPV4POOL_NAT_OUTGOING: 'false',
      ...(this.state.pool6Cidr ? { IP6: 'autodetect', IP6_AUTODETECTION_METHOD: 'interface=^eth0$' } : {}),
      TABBY_LOG_LEVEL: process.env.TABBY_LOG_LEVEL ?? 'info',
      ...(node.role === 'route-reflector' ? { TABBY_MODE: 'route-reflector', TABBY_RR_CLUSTER_ID: RR_CLUSTER_ID } : {}),
      // Marks the process as this lab's, so `lab down` finds it even without lab.json.
      TABBY_LAB_PREFIX: this.state.prefix,
      TABBY_LAB_DIR: this.stateDir,
      ...extra,
    };
  }

  /** Start the node's tabby-node inside its namespace (detached; logs to <stateDir>/nodes/<name>/agent.log). */
  async startAgent(name: string, extraEnv: Record<string, string> = {}): Promise<void> {
    const node = this.node(name);
    if (node.agent && processAlive(node.agent.pid, node.agent.startTime)) return;
    const main = agentMainPath();
    if (!main) throw new LabError('tabby-node is not built (dist/src/agent/main.js): run "make build"');
    const stateDir = path.join(this.stateDir, 'nodes', node.name);
    fs.mkdirSync(stateDir, { recursive: true });
    const logFile = path.join(stateDir, 'agent.log');
    const fd = fs.openSync(logFile, 'a');
    try {
      const child = spawnIn(node.netns, process.execPath, [main], {
        env: this.agentEnvironment(node, extraEnv),
        stdio: ['ignore', fd, fd],
        detached: true,
      });
      const pid = child.pid;
      if (pid === undefined) throw new LabError(`cannot start tabby-node for ${name}`);
      child.unref();
      node.agent = { pid, startTime: processStartTime(pid) ?? '', logFile, stateDir };
      this.save();
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Stop the node's agent: SIGTERM (graceful) or SIGKILL (kill -9, as a crash). */
  async stopAgent(name: string, opts: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
    const node = this.node(name);
    const a = node.agent;
    if (!a) return;
    if (opts.signal === 'SIGKILL' && processAlive(a.pid, a.startTime)) {
      try {
        process.kill(a.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      const until = Date.now() + 3000;
      while (Date.now() < until && processAlive(a.pid, a.startTime)) await new Promise((r) => setTimeout(r, 20));
    } else {
      await stopProcess(a.pid, a.startTime, 10_000);
    }
    delete node.agent;
    this.save();
  }

  agentRunning(name: string): boolean {
    const a = this.node(name).agent;
    return Boolean(a && processAlive(a.pid, a.startTime));
  }

  /** The agent's /status over its unix socket; undefined when it does not answer. */
  async agentStatus(name: string): Promise<AgentStatusJson | undefined> {
    const node = this.node(name);
    try {
      return await queryAgentSocket<AgentStatusJson>(path.join(this.stateDir, 'nodes', node.name, 'tabby.sock'), '/status');
    } catch {
      return undefined;
    }
  }

  /** BGP peers each node should have Established. */
  expectedPeers(name: string): number {
    const node = this.node(name);
    const others = this.state.nodes.filter((n) => n.name !== name);
    const rrs = others.filter((n) => n.role === 'route-reflector').length;
    // Dual stack: one IPv4 and one IPv6 session per peer (as calico-node's BIRD and BIRD6 have).
    const families = this.state.pool6Cidr ? 2 : 1;
    if (node.role === 'route-reflector') return others.length * families;
    return (this.state.meshEnabled ? others.length : rrs) * families;
  }

  /** Wait until every agent reports its expected BGP sessions Established. */
  async waitForBgp(timeoutMs = 60_000): Promise<{ ok: boolean; pending: string[] }> {
    const deadline = Date.now() + timeoutMs;
    let pending: string[] = [];
    while (Date.now() < deadline) {
      pending = [];
      const dead = this.state.nodes.filter((n) => n.agent && !processAlive(n.agent.pid, n.agent.startTime));
      if (dead.length > 0) {
        // An agent that exited will not come back by waiting: say so at once, with its last log line.
        return { ok: false, pending: dead.map((n) => `${n.name} (tabby-node exited: ${lastLogLine(n.agent!.logFile)})`) };
      }
      for (const n of this.state.nodes) {
        const s = await this.agentStatus(n.name);
        const est = s?.peers.filter((p) => p.state === 'Established').length ?? 0;
        if (!s || est < this.expectedPeers(n.name)) pending.push(`${n.name} (${est}/${this.expectedPeers(n.name)} Established)`);
      }
      if (pending.length === 0) return { ok: true, pending };
      await new Promise((r) => setTimeout(r, 250));
    }
    return { ok: false, pending };
  }

  /** Remove a node: its agent, its pods, its namespace, and its Node resource (so every peer withdraws it). */
  async removeNode(name: string): Promise<void> {
    const node = this.node(name);
    await this.stopAgent(name, { signal: 'SIGTERM' });
    for (const p of this.state.pods.filter((x) => x.node === name)) {
      deleteNetns(p.netns);
    }
    this.state.pods = this.state.pods.filter((x) => x.node !== name);
    await detachNode(this.state.prefix, node);
    this.state.nodes = this.state.nodes.filter((n) => n !== node);
    this.save();
    const ds = await openDatastore({ type: 'file', dir: this.state.datastoreDir });
    try {
      await new ResourceStore(ds).delete('Node', name).catch(() => undefined);
    } finally {
      await ds.close();
    }
  }

  /** A pod on `node` through the real CNI plugin; returns its address and namespace. */
  async addPod(
    nodeName: string,
    name: string,
    opts: { namespace?: string; labels?: Record<string, string> } = {},
  ): Promise<{ ip: string; ip6?: string; netns: string }> {
    const node = this.node(nodeName);
    if (!/^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$/.test(name)) throw new LabError(`invalid pod name "${name}"`);
    if (this.state.pods.some((p) => p.name === name)) throw new LabError(`lab pod "${name}" exists already`);
    const podNetns = `${this.state.prefix}-pod-${name}`;
    const r = await addPodViaCni(this.cni(), {
      nodeName: node.name,
      nodeNetns: node.netns,
      pod: name,
      podNetns,
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
    });
    this.state.pods.push({
      name,
      node: node.name,
      netns: podNetns,
      containerId: r.containerId,
      ip: r.ip,
      ...(r.ip6 ? { ip6: r.ip6 } : {}),
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
    });
    this.save();
    if (opts.labels && Object.keys(opts.labels).length)
      await labelLabPod(this.state.datastoreDir, node.name, name, opts.namespace, opts.labels);
    return { ip: r.ip, ...(r.ip6 ? { ip6: r.ip6 } : {}), netns: podNetns };
  }

  async removePod(name: string): Promise<void> {
    const p = this.pod(name);
    const node = this.node(p.node);
    await deletePodViaCni(this.cni(), {
      nodeName: node.name,
      nodeNetns: node.netns,
      pod: p.name,
      podNetns: p.netns,
      containerId: p.containerId,
      ...(p.namespace ? { namespace: p.namespace } : {}),
    });
    this.state.pods = this.state.pods.filter((x) => x !== p);
    this.save();
  }

  /** Namespace of a node or pod name (or underlay/router). */
  netnsOf(target: string): string {
    const n = this.state.nodes.find((x) => x.name === target);
    if (n) return n.netns;
    const p = this.state.pods.find((x) => x.name === target);
    if (p) return p.netns;
    if (target === 'underlay') return this.state.underlayNetns;
    if (target === 'router' && this.state.routerNetns) return this.state.routerNetns;
    throw new LabError(
      `no lab node or pod "${target}" (nodes: ${this.state.nodes.map((x) => x.name).join(', ')}; pods: ${this.state.pods.map((x) => x.name).join(', ') || 'none'})`,
    );
  }

  /** Run a command inside a node's or pod's namespace (a node gets TABBY_STATE_DIR of its agent). */
  exec(target: string, command: string, args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    const ns = this.netnsOf(target);
    const [cmd, ...rest] = resolveCommand([command, ...args]);
    return runIn(ns, cmd!, rest, { env: this.execEnv(target), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
  }

  /** Environment for a command in a node or pod: the lab's datastore, and a node's state dir and name. */
  execEnv(target: string): NodeJS.ProcessEnv {
    const node = this.state.nodes.find((x) => x.name === target);
    const pod = this.state.pods.find((x) => x.name === target);
    return { ...process.env, ...labEnv(this.state, node?.name ?? pod?.node) };
  }

  /** One ICMP echo from a pod (or node) to an address; true when answered. */
  async ping(from: string, toIp: string, opts: { count?: number; timeoutSec?: number } = {}): Promise<boolean> {
    const r = await runIn(
      this.netnsOf(from),
      'ping',
      ['-n', '-q', '-c', String(opts.count ?? 1), '-W', String(opts.timeoutSec ?? 1), toIp],
      { timeoutMs: 30_000 },
    );
    return r.code === 0;
  }

  /** Ping until answered or the deadline passes (routes may still be converging). */
  async pingUntil(from: string, toIp: string, deadlineMs = 15_000): Promise<boolean> {
    const until = Date.now() + deadlineMs;
    do {
      if (await this.ping(from, toIp)) return true;
    } while (Date.now() < until);
    return false;
  }

  /** Every pod to every other pod (or the given pairs), `concurrency` pings at a time. */
  async pingMatrix(
    deadlineMs = 10_000,
    opts: { pairs?: readonly ProbePair[]; concurrency?: number; onResult?: (r: PingResult, done: number) => void } = {},
  ): Promise<PingResult[]> {
    const pairs =
      opts.pairs ??
      this.state.pods.flatMap((a) => this.state.pods.filter((b) => b !== a).map((b) => ({ from: a.name, to: b.name, toIp: b.ip })));
    let done = 0;
    return mapLimit(pairs, opts.concurrency ?? 8, async (p) => {
      const r: PingResult = { ...p, ok: await this.pingUntil(p.from, p.toIp, deadlineMs) };
      opts.onResult?.(r, ++done);
      return r;
    });
  }

  /** Remove everything: agents, namespaces, the state directory. */
  async destroy(): Promise<void> {
    await destroyLab({ prefix: this.state.prefix, stateDir: this.stateDir });
  }
}

/** createLab(opts) → Lab: the library entry point tests use. */
export function createLab(opts: LabOptions = {}): Promise<Lab> {
  return Lab.create(opts);
}
