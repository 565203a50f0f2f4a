// Drives the tabby CNI plugin the way containerd does: the compiled plugin run as a child process inside
// a "node" network namespace (the host of the pods), CNI_* in the environment, the netconf on stdin,
// chained plugins run in order with prevResult. Shared by the CNI integration tests and test/bench/cni.
import { POOLS_PREFIX } from '../../../src/datastore/keys.js';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileDatastore } from '../../../src/datastore/file.js';

export const PLUGIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/cni/main.js');
export const PORTMAP = '/usr/lib/cni/portmap';

export const isRoot = (): boolean => process.getuid?.() === 0;

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface PluginRun {
  code: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> & { code?: number; msg?: string; ips?: { address: string }[] };
  ms: number;
}

/** Run an executable with CNI_* env and stdin, inside netns `ns` (ip netns exec), like a runtime does. */
export function runPlugin(
  ns: string,
  exe: string,
  env: Record<string, string>,
  stdin: string,
  opts: { node?: boolean } = {},
): Promise<PluginRun> {
  const argv = opts.node === false ? [exe] : [process.execPath, exe];
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const c = spawn('ip', ['netns', 'exec', ns, ...argv], {
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    c.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    c.on('error', reject);
    c.on('close', (code) => {
      let json = {};
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as object) : {};
      } catch {
        json = { unparsable: stdout };
      }
      resolve({ code: code ?? -1, stdout, stderr, json, ms: performance.now() - t0 });
    });
    c.stdin.end(stdin);
  });
}

export interface NodeEnv {
  tag: string;
  ns: string;
  nsPath: string;
  /** The node's own address (on its uplink). */
  nodeIp: string;
  dsDir: string;
  logFile: string;
  /** tabby netconf for this node (extra keys merged in). */
  conf(extra?: Record<string, unknown>): Record<string, unknown>;
  podNs(i: number | string): string;
  makePod(i: number | string): string;
  deletePod(i: number | string): void;
  destroy(): void;
}

/** A node namespace with an uplink (default route, so proxy ARP answers the pods' 169.254.1.1), a file
 *  datastore in a temp dir (tmpfs unless `baseDir` says otherwise) with the given pools, and helpers for pod namespaces. Names start with `tag`. */
export async function makeNode(
  tag: string,
  pools: { name: string; cidr: string; blockSize?: number }[],
  opts: { baseDir?: string } = {},
): Promise<NodeEnv> {
  const ns = `${tag}n`;
  const base = opts.baseDir ?? (fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());
  const dsDir = fs.mkdtempSync(path.join(base, `${tag}-`));
  const pods = new Set<string>();
  const destroy = () => {
    for (const p of pods) {
      try {
        ip('netns', 'del', p);
      } catch {
        /* gone */
      }
    }
    try {
      ip('netns', 'del', ns);
    } catch {
      /* gone */
    }
    fs.rmSync(dsDir, { recursive: true, force: true });
  };
  try {
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1');
    ip('-n', ns, 'link', 'set', 'up0', 'up');
    ip('-n', ns, 'link', 'set', 'up1', 'up');
    ip('-n', ns, 'addr', 'add', '192.0.2.2/24', 'dev', 'up0');
    ip('-n', ns, 'route', 'add', 'default', 'via', '192.0.2.254', 'dev', 'up0', 'onlink');
    const ds = new FileDatastore(dsDir);
    for (const p of pools) {
      await ds.create(`${POOLS_PREFIX}${p.name}`, {
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name: p.name },
        spec: {
          cidr: p.cidr,
          blockSize: p.blockSize ?? 26,
          ipipMode: 'Never',
          vxlanMode: 'Never',
          natOutgoing: false,
          disabled: false,
          nodeSelector: 'all()',
        },
      });
    }
    await ds.close();
  } catch (e) {
    destroy();
    throw e;
  }
  const logFile = path.join(dsDir, 'cni.log');
  const podNs = (i: number | string) => `${tag}p${i}`;
  return {
    tag,
    ns,
    nsPath: `/var/run/netns/${ns}`,
    nodeIp: '192.0.2.2',
    dsDir,
    logFile,
    conf: (extra = {}) => ({
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      type: 'tabby',
      nodename: 'node-1',
      datastore_type: 'file',
      datastore_dir: dsDir,
      log_file_path: logFile,
      ipam: { type: 'tabby-ipam' },
      ...extra,
    }),
    podNs,
    makePod(i) {
      const n = podNs(i);
      ip('netns', 'add', n);
      pods.add(n);
      return `/var/run/netns/${n}`;
    },
    deletePod(i) {
      const n = podNs(i);
      try {
        ip('netns', 'del', n);
      } catch {
        /* gone */
      }
      pods.delete(n);
    },
    destroy,
  };
}

export function cniEnv(
  command: string,
  containerId: string,
  netns: string,
  pod: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netns,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
    ...extra,
  };
}

/** ping once from the node namespace; true when answered. */
export function pingFrom(ns: string, target: string, timeoutS = 1): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', String(timeoutS), '-n', '-q', target], { stdio: 'ignore' });
    c.on('exit', (code) => resolve(code === 0));
    c.on('error', () => resolve(false));
  });
}

export const containerIdOf = (tag: string, i: number | string): string => `${`${tag}c${i}`.replace(/[^A-Za-z0-9]/g, '')}0123456789abcdef`;

/** Make 127.0.0.1:`port` of this (root) namespace reachable as 127.0.0.1:`port` inside netns `ns`: a relay
 *  inside the netns forwards to a unix socket (the filesystem is shared), served here by a relay to the port.
 *  (An etcd started by the tests listens on the host's loopback; the plugin runs in the node's netns.) */
export async function bridgeLoopbackPort(ns: string, port: number, sockPath: string): Promise<() => void> {
  const net = await import('node:net');
  fs.rmSync(sockPath, { force: true });
  const server = net.createServer((c) => {
    const up = net.connect(port, '127.0.0.1');
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  const script = `const net=require("net");net.createServer((c)=>{const u=net.connect(${JSON.stringify(sockPath)});c.pipe(u).pipe(c);c.on("error",()=>u.destroy());u.on("error",()=>c.destroy());}).listen(${port},"127.0.0.1",()=>console.log("ready"))`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('relay in netns did not start')), 15_000);
    child.stdout.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited ${code}`));
    });
  });
  return () => {
    child.kill();
    server.close();
    fs.rmSync(sockPath, { force: true });
  };
}

/** Repository root (holds dist/ and src/native/build). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const AGENT = path.join(REPO, 'dist/src/agent/main.js');

/** Install the CNI client as `tabby`/`tabby-ipam` plus the `tabby-fallback` wrapper into `binDir`, the way
 *  tabby-install-cni does on a host; returns the path of `tabby`. */
export async function installClient(binDir: string): Promise<string> {
  const { installPluginFiles, CLIENT_PATH } = await import('../../../src/cni/install.js');
  installPluginFiles({ binDir, nodeBinary: process.execPath, appDir: REPO, client: path.join(REPO, CLIENT_PATH) });
  return path.join(binDir, 'tabby');
}

export interface AgentProc {
  pid: number;
  stateDir: string;
  socket: string;
  /** Send a signal; resolves when the process exited (SIGSTOP/SIGCONT resolve at once). */
  signal(sig: NodeJS.Signals): Promise<void>;
}

/** A real tabby-node inside the node namespace (no BGP: CALICO_NETWORKING_BACKEND=none), on the node's
 *  datastore; resolves once its resident CNI socket is there. */
export async function startAgent(
  node: NodeEnv,
  stateDir: string,
  extraEnv: Record<string, string> = {},
  /** the agent's entry file (default: the modules, as tests run them; the benchmark runs the installed one) */
  entry = AGENT,
): Promise<AgentProc> {
  fs.mkdirSync(stateDir, { recursive: true });
  const socket = path.join(stateDir, 'cni.sock');
  fs.rmSync(socket, { force: true });
  const logFd = fs.openSync(path.join(stateDir, 'agent.log'), 'a');
  // TABBY_AGENT_NODE_ARGS: extra node flags for tabby-node (e.g. --cpu-prof --cpu-prof-dir=/tmp/p in a bench run)
  const nodeArgs = (process.env.TABBY_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn('ip', ['netns', 'exec', node.ns, process.execPath, ...nodeArgs, entry], {
    env: {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      NODENAME: 'node-1',
      IP: `${node.nodeIp}/24`,
      IP6: 'none',
      DATASTORE_TYPE: 'file',
      TABBY_DATASTORE_DIR: node.dsDir,
      TABBY_STATE_DIR: stateDir,
      CALICO_NETWORKING_BACKEND: 'none',
      NO_DEFAULT_POOLS: 'true',
      TABBY_HEALTH_ADDR: '127.0.0.1:9099',
      TABBY_METRICS_ADDR: '127.0.0.1:9091',
      TABBY_LOG_LEVEL: 'warn',
      ...extraEnv,
    },
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  // A test process that dies (a tap timeout) takes its agent with it.
  const reap = (): void => {
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  };
  process.once('exit', reap);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.off('exit', reap);
      resolve();
    }),
  );
  for (const deadline = Date.now() + 30_000; !fs.existsSync(socket); ) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`tabby-node did not open ${socket}: ${fs.readFileSync(path.join(stateDir, 'agent.log'), 'utf8').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid!,
    stateDir,
    socket,
    async signal(sig) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(sig);
      if (sig !== 'SIGSTOP' && sig !== 'SIGCONT') await exited;
    },
  };
}

/** The `pid` and `resident` fields of the log lines that say `msg` for `handle` (which process served it). */
export function servedBy(logFile: string, msg: string, handle: string): { pid: number; resident: boolean }[] {
  const out: { pid: number; resident: boolean }[] = [];
  for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes(handle)) continue;
    try {
      const o = JSON.parse(line) as { msg?: string; handle?: string; pid?: number; resident?: boolean };
      if (o.msg === msg && o.handle === handle) out.push({ pid: o.pid ?? 0, resident: o.resident === true });
    } catch {
      /* not ours */
    }
  }
  return out;
}
