#!/usr/bin/env node
// tabby-install-cni — puts the tabby CNI plugin on a host and writes its network config.
// Run by the DaemonSet's install-cni init container (host filesystem mounted at TABBY_HOST_ROOT, e.g.
// /host) or directly on a host (systemd install, TABBY_CNI_RUNTIME=in-place). It:
//   1. makes the plugin runnable from the host: the plugin is a Node.js program, so in `copy` mode the
//      node binary and the app (dist/, production node_modules/, the native addon) are copied to
//      $TABBY_RUNTIME_DIR/<version>/; in `in-place` mode the running node and app are used as they are;
//   2. puts into $CNI_BIN_DIR the CNI client executable as `tabby` and `tabby-ipam` (src/native/cni_client.c:
//      it hands each command to tabby-node's resident CNI server, a few ms), and `tabby-fallback`, a small
//      wrapper script running the in-process Node.js plugin, which the client execs when the agent does not
//      answer (TABBY_CNI_RESIDENT=false installs that wrapper as `tabby`/`tabby-ipam` instead);
//   3. copies the etcd TLS files next to the config (the host cannot see the pod's secret mount);
//   4. writes $CNI_NET_DIR/$CNI_CONF_NAME (10-tabby.conflist): tabby + portmap, with the datastore
//      settings from the same variables tabby-node reads (DATASTORE_TYPE, ETCD_ENDPOINTS, …).
// Every file is written to a temporary name and renamed, so the kubelet never sees half a file.
// All environment variables it reads are listed in INSTALL_ENV (checked by the manifest tests).
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { log } from '../common/log.js';
import type { NodeDatastoreConfig } from '../datastore/config.js';

export interface InstallEnvVar {
  readonly name: string;
  readonly required: boolean;
  readonly default?: string;
  readonly description: string;
}

const e = (name: string, def: string | undefined, description: string): InstallEnvVar =>
  def === undefined ? { name, required: false, description } : { name, required: false, default: def, description };

/** Every environment variable tabby-install-cni reads. */
export const INSTALL_ENV: readonly InstallEnvVar[] = [
  e(
    'TABBY_HOST_ROOT',
    '/',
    "where the host's filesystem is mounted in this container (/host in the DaemonSet); paths below are host paths",
  ),
  e('CNI_BIN_DIR', '/opt/cni/bin', 'host directory of CNI plugin binaries'),
  e('CNI_NET_DIR', '/etc/cni/net.d', 'host directory of CNI network configs'),
  e('CNI_CONF_NAME', '10-tabby.conflist', 'file name of the network config list'),
  e('CNI_NETWORK_NAME', 'k8s-pod-network', '"name" of the network in the config list'),
  e('CNI_MTU', undefined, 'MTU of pod interfaces written as "mtu" (unset: the plugin\'s default)'),
  e(
    'CNI_LOG_FILE',
    undefined,
    'host path of the plugin\'s log file, written as "log_file_path" (unset: the plugin\'s default /var/log/tabby/cni.log)',
  ),
  e(
    'TABBY_CNI_RUNTIME',
    'copy',
    'copy = copy node and the app to TABBY_RUNTIME_DIR on the host; in-place = use this node and app where they are (a host install)',
  ),
  e('TABBY_RUNTIME_DIR', '/opt/tabby/cni', 'host directory the node runtime and app are copied to (copy mode)'),
  e(
    'TABBY_CNI_RESIDENT',
    'true',
    "true = `tabby` is the client of tabby-node's resident CNI server (falls back to the in-process plugin); false = `tabby` starts the Node.js plugin for every command",
  ),
  e('TABBY_APP_DIR', undefined, 'root of the tabby app (holds dist/, node_modules/, src/native/build/); default: found from this file'),
  e('NODENAME', undefined, 'node name written as "nodename" (unset: the plugin reads $TABBY_STATE_DIR/nodename, then the hostname)'),
  e('DATASTORE_TYPE', 'file', 'datastore of the plugin: file or etcdv3'),
  e('TABBY_DATASTORE_DIR', '/var/lib/tabby/datastore', 'host directory of the file datastore'),
  e('ETCD_ENDPOINTS', undefined, 'comma list of etcd URLs (etcdv3)'),
  e(
    'ETCD_CA_CERT_FILE',
    undefined,
    'etcd CA certificate (as seen by this program; copied next to the config when TABBY_HOST_ROOT is not /)',
  ),
  e('ETCD_CERT_FILE', undefined, 'etcd client certificate (same)'),
  e('ETCD_KEY_FILE', undefined, 'etcd client key (same)'),
];

export interface InstallConfig {
  hostRoot: string;
  cniBinDir: string;
  cniNetDir: string;
  confName: string;
  networkName: string;
  mtu?: number;
  logFile?: string;
  runtime: 'copy' | 'in-place';
  /** Install the resident-path client as `tabby` (else the in-process plugin's wrapper). */
  resident: boolean;
  runtimeDir: string;
  appDir: string;
  /** The node binary to run the plugin with (copied in copy mode). */
  nodeBinary: string;
  nodeName?: string;
  datastore: NodeDatastoreConfig;
}

export class InstallError extends Error {
  readonly code = 'EINSTALL';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'InstallError';
  }
}

/** The plugin names installed into CNI_BIN_DIR (DESIGN: the IPAM plugin is the same program under a second name). */
export const PLUGIN_NAMES = ['tabby', 'tabby-ipam'] as const;
/** The in-process plugin's wrapper, next to the client, which the client execs when the agent does not answer. */
export const FALLBACK_NAME = 'tabby-fallback';
/** The client executable in the app (built by node-gyp with the native addon). */
export const CLIENT_PATH = 'src/native/build/Release/tabby-cni';
/** Directory under CNI_NET_DIR that receives copies of the etcd TLS files. */
export const TLS_DIR_NAME = 'tabby-tls';

const DEFAULT_APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function parseInstallConfig(env: NodeJS.ProcessEnv = process.env): InstallConfig {
  const byName = new Map(INSTALL_ENV.map((v) => [v.name, v]));
  const raw = (name: string): string | undefined => {
    const def = byName.get(name);
    if (!def) throw new Error(`internal: ${name} is not in INSTALL_ENV`);
    const val = env[name]?.trim();
    return val ? val : def.default;
  };
  const absolute = (name: string): string => {
    const val = raw(name)!;
    if (!path.isAbsolute(val)) throw new InstallError(name, `"${val}" is not an absolute path`);
    return path.normalize(val);
  };
  const runtime = raw('TABBY_CNI_RUNTIME');
  if (runtime !== 'copy' && runtime !== 'in-place') throw new InstallError('TABBY_CNI_RUNTIME', `"${runtime}": expected copy or in-place`);
  const resident = raw('TABBY_CNI_RESIDENT');
  if (resident !== 'true' && resident !== 'false') throw new InstallError('TABBY_CNI_RESIDENT', `"${resident}": expected true or false`);
  const dsType = raw('DATASTORE_TYPE');
  if (dsType !== 'file' && dsType !== 'etcdv3') throw new InstallError('DATASTORE_TYPE', `"${dsType}": expected file or etcdv3`);
  const cfg: InstallConfig = {
    hostRoot: absolute('TABBY_HOST_ROOT'),
    cniBinDir: absolute('CNI_BIN_DIR'),
    cniNetDir: absolute('CNI_NET_DIR'),
    confName: raw('CNI_CONF_NAME')!,
    networkName: raw('CNI_NETWORK_NAME')!,
    runtime,
    resident: resident === 'true',
    runtimeDir: absolute('TABBY_RUNTIME_DIR'),
    appDir: raw('TABBY_APP_DIR') ?? DEFAULT_APP_DIR,
    nodeBinary: process.execPath,
    datastore: { type: dsType, dir: absolute('TABBY_DATASTORE_DIR') },
  };
  if (!/^[\w.-]+\.conflist$/.test(cfg.confName))
    throw new InstallError('CNI_CONF_NAME', `"${cfg.confName}": expected a file name ending in .conflist`);
  const mtu = raw('CNI_MTU');
  if (mtu !== undefined) {
    if (!/^\d+$/.test(mtu) || Number(mtu) < 576 || Number(mtu) > 65535)
      throw new InstallError('CNI_MTU', `"${mtu}": expected a number 576..65535`);
    cfg.mtu = Number(mtu);
  }
  const logFile = raw('CNI_LOG_FILE');
  if (logFile !== undefined) cfg.logFile = absolute('CNI_LOG_FILE');
  const nodeName = raw('NODENAME');
  if (nodeName !== undefined) cfg.nodeName = nodeName;
  const endpoints = raw('ETCD_ENDPOINTS')
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (endpoints?.length) cfg.datastore.etcdEndpoints = endpoints;
  if (dsType === 'etcdv3' && !endpoints?.length) throw new InstallError('ETCD_ENDPOINTS', 'required with DATASTORE_TYPE=etcdv3');
  for (const [name, key] of [
    ['ETCD_CA_CERT_FILE', 'etcdCaCertFile'],
    ['ETCD_CERT_FILE', 'etcdCertFile'],
    ['ETCD_KEY_FILE', 'etcdKeyFile'],
  ] as const) {
    const val = raw(name);
    if (val !== undefined) cfg.datastore[key] = val;
  }
  return cfg;
}

/** Host paths the TLS files end up at (copied when the installer runs in a container, else used as given). */
function tlsHostPaths(cfg: InstallConfig): { ca?: string; cert?: string; key?: string } {
  const copy = cfg.hostRoot !== '/';
  const dir = path.join(cfg.cniNetDir, TLS_DIR_NAME);
  const out: { ca?: string; cert?: string; key?: string } = {};
  const d = cfg.datastore;
  if (d.etcdCaCertFile) out.ca = copy ? path.join(dir, 'etcd-ca') : d.etcdCaCertFile;
  if (d.etcdCertFile) out.cert = copy ? path.join(dir, 'etcd-cert') : d.etcdCertFile;
  if (d.etcdKeyFile) out.key = copy ? path.join(dir, 'etcd-key') : d.etcdKeyFile;
  return out;
}

/** The network config list (pure): the tabby plugin with its datastore settings, then portmap. */
export function buildConflist(cfg: InstallConfig): Record<string, unknown> {
  const plugin: Record<string, unknown> = {
    type: 'tabby',
    datastore_type: cfg.datastore.type,
  };
  if (cfg.datastore.type === 'file') plugin.datastore_dir = cfg.datastore.dir;
  if (cfg.datastore.etcdEndpoints) plugin.etcd_endpoints = cfg.datastore.etcdEndpoints.join(',');
  const tls = tlsHostPaths(cfg);
  if (tls.ca) plugin.etcd_ca_cert_file = tls.ca;
  if (tls.cert) plugin.etcd_cert_file = tls.cert;
  if (tls.key) plugin.etcd_key_file = tls.key;
  if (cfg.nodeName) plugin.nodename = cfg.nodeName;
  if (cfg.mtu !== undefined) plugin.mtu = cfg.mtu;
  if (cfg.logFile) plugin.log_file_path = cfg.logFile;
  plugin.ipam = { type: 'tabby-ipam' };
  return {
    name: cfg.networkName,
    cniVersion: '1.0.0',
    plugins: [plugin, { type: 'portmap', snat: true, capabilities: { portMappings: true } }],
  };
}

/** The wrapper script installed as CNI_BIN_DIR/<name> (pure). */
export function wrapperScript(name: string, nodeBinary: string, appDir: string): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  return [
    '#!/bin/sh',
    `# ${name}: the tabby CNI plugin (a Node.js program), installed by tabby-install-cni. Do not edit.`,
    `TABBY_CNI_PLUGIN_NAME=\${TABBY_CNI_PLUGIN_NAME:-${name}}`,
    'export TABBY_CNI_PLUGIN_NAME',
    `exec ${q(nodeBinary)} ${q(path.join(appDir, 'dist/src/cni/main.js'))} "$@"`,
    '',
  ].join('\n');
}

/** Parts of the app a host needs to run the plugin (relative to the app root). */
export const APP_PARTS = ['package.json', 'dist/src', 'node_modules', 'src/native/build/Release', 'proto/bgp/registry.json'] as const;

export interface InstallResult {
  /** Host paths written. */
  conflist: string;
  plugins: string[];
  tls: string[];
  /** Where the plugin runs from on the host: node binary and app root. */
  nodeBinary: string;
  appDir: string;
  /** copy mode: false when the same release was already there. */
  copied: boolean;
}

/** Install the plugin and write the config. Idempotent; safe to run again on every pod start. */
export function installCni(cfg: InstallConfig): InstallResult {
  const logger = log('cni-install');
  const onHost = (p: string): string => path.join(cfg.hostRoot, p);
  const mainJs = path.join(cfg.appDir, 'dist/src/cni/main.js');
  // in-place under a staging root (make install DESTDIR=…): the app is there, the wrapper names its final path.
  if (!fs.existsSync(mainJs) && !(cfg.runtime === 'in-place' && fs.existsSync(onHost(mainJs))))
    throw new InstallError('TABBY_APP_DIR', `${mainJs} not found: build tabby first (npm run build)`);

  let nodeBinary = cfg.nodeBinary;
  let appDir = cfg.appDir;
  let copied = false;
  if (cfg.runtime === 'copy') {
    const release = releaseId(cfg);
    const releaseHost = path.join(cfg.runtimeDir, release);
    nodeBinary = path.join(releaseHost, 'node');
    appDir = path.join(releaseHost, 'app');
    const target = onHost(releaseHost);
    if (!fs.existsSync(path.join(target, '.complete'))) {
      const tmp = `${target}.tmp-${process.pid}`;
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(path.join(tmp, 'app'), { recursive: true });
      fs.copyFileSync(cfg.nodeBinary, path.join(tmp, 'node'));
      fs.chmodSync(path.join(tmp, 'node'), 0o755);
      for (const part of APP_PARTS) {
        const src = path.join(cfg.appDir, part);
        if (fs.existsSync(src)) fs.cpSync(src, path.join(tmp, 'app', part), { recursive: true, dereference: true });
      }
      fs.writeFileSync(path.join(tmp, '.complete'), `${release}\n`);
      fs.rmSync(target, { recursive: true, force: true });
      fs.renameSync(tmp, target);
      copied = true;
      logger.info({ release: releaseHost }, 'copied the plugin runtime to the host');
    }
    pruneReleases(onHost(cfg.runtimeDir), release);
  }

  const plugins = installPluginFiles({
    binDir: onHost(cfg.cniBinDir),
    nodeBinary,
    appDir,
    client: cfg.resident
      ? ([path.join(cfg.appDir, CLIENT_PATH), onHost(path.join(cfg.appDir, CLIENT_PATH))].find((f) => fs.existsSync(f)) ??
        path.join(cfg.appDir, CLIENT_PATH))
      : undefined,
  }).map((f) => path.join(cfg.cniBinDir, path.basename(f)));

  const tls: string[] = [];
  if (cfg.hostRoot !== '/') {
    const hostPaths = tlsHostPaths(cfg);
    const pairs = [
      [cfg.datastore.etcdCaCertFile, hostPaths.ca],
      [cfg.datastore.etcdCertFile, hostPaths.cert],
      [cfg.datastore.etcdKeyFile, hostPaths.key],
    ] as const;
    for (const [src, dst] of pairs) {
      if (!src || !dst) continue;
      fs.mkdirSync(onHost(path.dirname(dst)), { recursive: true, mode: 0o700 });
      writeAtomic(onHost(dst), fs.readFileSync(src), 0o600);
      tls.push(dst);
    }
  }

  const conflist = path.join(cfg.cniNetDir, cfg.confName);
  fs.mkdirSync(onHost(cfg.cniNetDir), { recursive: true });
  writeAtomic(onHost(conflist), `${JSON.stringify(buildConflist(cfg), null, 2)}\n`, 0o644);
  const earlier = fs.readdirSync(onHost(cfg.cniNetDir)).filter((f) => /\.(conf|conflist|json)$/.test(f) && f < cfg.confName);
  if (earlier.length)
    logger.warn({ files: earlier }, `${cfg.confName} is not the first network config in ${cfg.cniNetDir}: the runtime uses the first one`);
  logger.info({ conflist, plugins }, 'tabby CNI plugin installed');
  return { conflist, plugins, tls, nodeBinary, appDir, copied };
}

/** Write the plugin files into `binDir` (a path as this process sees it): with `client`, that executable
 *  as `tabby` and `tabby-ipam` plus the wrapper `tabby-fallback`; without, the wrapper as both names.
 *  The wrapper runs `nodeBinary` on `appDir` (paths as the host sees them). Returns the files written. */
export function installPluginFiles(o: { binDir: string; nodeBinary: string; appDir: string; client?: string | undefined }): string[] {
  fs.mkdirSync(o.binDir, { recursive: true });
  const out: string[] = [];
  if (o.client && !fs.existsSync(o.client))
    throw new InstallError('TABBY_CNI_RESIDENT', `the CNI client ${o.client} was not built (npm ci builds it with the native addon)`);
  const fallback = path.join(o.binDir, FALLBACK_NAME);
  if (o.client) {
    writeAtomic(fallback, wrapperScript('tabby', o.nodeBinary, o.appDir), 0o755);
    out.push(fallback);
  }
  for (const name of PLUGIN_NAMES) {
    const file = path.join(o.binDir, name);
    writeAtomic(file, o.client ? fs.readFileSync(o.client) : wrapperScript(name, o.nodeBinary, o.appDir), 0o755);
    out.push(file);
  }
  if (!o.client) fs.rmSync(fallback, { force: true });
  return out;
}

/** A release id that changes whenever the app or node changes: package version + hash of the files' paths, sizes, mtimes. */
export function releaseId(cfg: Pick<InstallConfig, 'appDir' | 'nodeBinary'>): string {
  const h = crypto.createHash('sha256');
  const add = (abs: string, rel: string): void => {
    const st = fs.statSync(abs);
    if (st.isDirectory()) {
      for (const child of fs.readdirSync(abs).sort()) add(path.join(abs, child), `${rel}/${child}`);
    } else {
      h.update(`${rel}\0${st.size}\0${Math.floor(st.mtimeMs)}\n`);
    }
  };
  add(cfg.nodeBinary, 'node');
  for (const part of APP_PARTS) {
    const abs = path.join(cfg.appDir, part);
    if (fs.existsSync(abs)) add(abs, part);
  }
  let version = '0.0.0';
  try {
    version = (JSON.parse(fs.readFileSync(path.join(cfg.appDir, 'package.json'), 'utf8')) as { version?: string }).version ?? version;
  } catch {
    /* no package.json: keep 0.0.0 */
  }
  return `${version}-${h.digest('hex').slice(0, 12)}`;
}

/** Keep the current release and the one before it (a plugin call may still be running from it). */
function pruneReleases(dir: string, current: string): void {
  const releases = fs
    .readdirSync(dir)
    .filter((f) => f !== current && !f.includes('.tmp-'))
    .map((f) => ({ f, t: fs.statSync(path.join(dir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { f } of releases.slice(1)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
}

function writeAtomic(file: string, data: string | Buffer, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

const isMain = process.argv[1] !== undefined && fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url));
if (isMain) {
  try {
    installCni(parseInstallConfig(process.env));
  } catch (err) {
    process.stderr.write(`tabby-install-cni: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
