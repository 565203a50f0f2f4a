// tabby-node's configuration: every environment variable it reads (AGENT_ENV — the contract the deploy
// manifests are checked against), the matching command-line flags (node:util parseArgs, so the
// agent never loads yargs — its ~0.6 MB of modules cost ~4 MB of idle RSS; --help text: help.ts; a
// flag wins over its variable), and parseAgentConfig(env, argv) → a typed AgentConfig. Bad input throws a ConfigError
// that names the variable (or flag) and says what is accepted. Names follow calico-node where Calico
// has one (see shared/DESIGN.md, "Configuration contract").
import { hostNodeName } from '../common/node-name.js';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseCidr, parseIp, tryParseIp, formatIp, InvalidAddress } from '../common/ip.js';
import { parseAutodetectionMethod, AutodetectConfigError } from '../autodetect/method.js';
import { echo } from '../common/echo.js';
import { parseDurationSetting } from '../autodetect/settings.js';
import { parseEndpoints, parseDatastoreType, DatastoreConfigError, type NodeDatastoreConfig } from '../datastore/config.js';
import { InvalidAsn, parseAsn } from '../datastore/validation.js';
import { DEFAULT_HEALTH_ADDR, DEFAULT_METRICS_ADDR, DEFAULT_STATE_DIR, STATUS_SOCKET_NAME, NODENAME_FILE_NAME } from './constants.js';

export * from './constants.js';

export interface AgentEnvVar {
  /** The environment variable. */
  readonly name: string;
  /** The equivalent command-line flag (without "--"). */
  readonly flag: string;
  /** true: tabby-node refuses to start without it. */
  readonly required: boolean;
  /** The value used when unset (undefined: no default — unset has its own meaning, see description). */
  readonly default?: string;
  readonly description: string;
}

const v = (name: string, flag: string, def: string | undefined, description: string, required = false): AgentEnvVar =>
  def === undefined ? { name, flag, required, description } : { name, flag, required, default: def, description };

/** Every environment variable tabby-node reads. Nothing else in src/agent reads process.env. */
export const AGENT_ENV: readonly AgentEnvVar[] = [
  // Node identity and addresses
  v('NODENAME', 'nodename', undefined, 'name of this node (its Node resource); default: the hostname'),
  v(
    'IP',
    'ip',
    undefined,
    'IPv4 address of this node: unset = keep the address stored on the Node, else autodetect; "autodetect" = detect on every start; "none" = no IPv4; or an address, with or without /prefix',
  ),
  v(
    'IP6',
    'ip6',
    undefined,
    'IPv6 address of this node: unset = keep an IPv6 address stored on the Node (none if none); "none"; "autodetect" (IPv6 is detected only then); or an address, with or without /prefix',
  ),
  v(
    'IP_AUTODETECTION_METHOD',
    'ip-autodetection-method',
    'first-found',
    'how to detect the IPv4 address: first-found, interface=REGEX,…, skip-interface=REGEX,…, can-reach=DEST, cidr=CIDR,…, kubernetes-internal-ip',
  ),
  v(
    'IP6_AUTODETECTION_METHOD',
    'ip6-autodetection-method',
    'first-found',
    'how to detect the IPv6 address (same methods as IP_AUTODETECTION_METHOD)',
  ),
  v(
    'AUTODETECT_POLL_INTERVAL',
    'autodetect-poll-interval',
    '60s',
    'how often the address is detected again (the Node is updated when it changes); 0 disables; a number of seconds or a duration like 30s, 5m',
  ),
  v(
    'TABBY_STATUS_INTERVAL',
    'status-interval',
    '30s',
    "the node's status in the datastore (tabbyctl cluster status) is written on change and at least this often; readers call it stale after 3x",
  ),
  v(
    'TABBY_NODE_INTERNAL_IP',
    'node-internal-ip',
    undefined,
    "kubernetes-internal-ip outside a cluster: the node's InternalIP(s), comma-separated",
  ),
  v('AS', 'as', undefined, 'AS number of this node (plain or dotted "64512.100"); default: BGPConfiguration default asNumber (64512)'),
  v(
    'CALICO_ROUTER_ID',
    'router-id',
    undefined,
    'BGP router ID: an IPv4 address, or "hash" (derived from the node name); default: the node\'s IPv4 address',
  ),
  v(
    'CALICO_NETWORKING_BACKEND',
    'networking-backend',
    'bird',
    "bird = tabby's BGP speaker; vxlan = VXLAN only, no BGP; none = no routing (policy-only)",
  ),
  v('TABBY_MODE', 'mode', 'node', 'node = full agent; route-reflector = BGP route reflector only, no dataplane and no IPAM'),
  v(
    'TABBY_RR_CLUSTER_ID',
    'rr-cluster-id',
    undefined,
    "route reflector cluster ID (an IPv4 address) written to this Node's routeReflectorClusterID; default in route-reflector mode: 244.0.0.1",
  ),
  v(
    'TABBY_NODE_LABELS',
    'node-labels',
    undefined,
    'labels to set on this Node, "k=v,k2=v2" (selectors of BGPPeers and pools match them); route-reflector mode adds route-reflector=true',
  ),
  v(
    'TABBY_SECRETS_DIR',
    'secrets-dir',
    '/etc/tabby/secrets',
    'directory of the secrets BGP passwords refer to: secretKeyRef {name, key} is the file <dir>/<name>/<key> (a mounted Kubernetes Secret or a systemd credentials directory)',
  ),
  v(
    'TABBY_GRACEFUL_RESTART_TIME',
    'graceful-restart-time',
    '120',
    'BGP graceful restart time in seconds announced to peers (RFC 4724); 0 disables graceful restart',
  ),
  // Default pools
  v('CALICO_IPV4POOL_CIDR', 'ipv4pool-cidr', '192.168.0.0/16', 'CIDR of the default IPv4 pool created at start when no IPv4 pool exists'),
  v('CALICO_IPV4POOL_BLOCK_SIZE', 'ipv4pool-block-size', '26', 'block size (prefix length) of the default IPv4 pool, 20..32'),
  v(
    'CALICO_IPV4POOL_IPIP',
    'ipv4pool-ipip',
    'Always',
    'ipipMode of the default IPv4 pool: Always, CrossSubnet or Never; when neither this nor CALICO_IPV4POOL_VXLAN is set and the kernel has no ipip, the default pool uses VXLAN (vxlanMode Always) instead',
  ),
  v(
    'CALICO_IPV4POOL_VXLAN',
    'ipv4pool-vxlan',
    'Never',
    'vxlanMode of the default IPv4 pool: Always, CrossSubnet or Never (not together with IPIP)',
  ),
  v('CALICO_IPV4POOL_NAT_OUTGOING', 'ipv4pool-nat-outgoing', 'true', 'natOutgoing of the default IPv4 pool'),
  v('CALICO_IPV4POOL_NODE_SELECTOR', 'ipv4pool-node-selector', 'all()', 'nodeSelector of the default IPv4 pool'),
  v('CALICO_IPV6POOL_CIDR', 'ipv6pool-cidr', undefined, 'CIDR of the default IPv6 pool; unset = no default IPv6 pool'),
  v('CALICO_IPV6POOL_BLOCK_SIZE', 'ipv6pool-block-size', '122', 'block size of the default IPv6 pool, 116..128'),
  v('CALICO_IPV6POOL_VXLAN', 'ipv6pool-vxlan', 'Never', 'vxlanMode of the default IPv6 pool: Always, CrossSubnet or Never'),
  v('CALICO_IPV6POOL_NAT_OUTGOING', 'ipv6pool-nat-outgoing', 'false', 'natOutgoing of the default IPv6 pool'),
  v('NO_DEFAULT_POOLS', 'no-default-pools', 'false', 'true = never create default pools'),
  // Datastore (shared with tabbyctl and the CNI plugin)
  v('DATASTORE_TYPE', 'datastore-type', 'file', 'file (embedded store, one machine) or etcdv3'),
  v('TABBY_DATASTORE_DIR', 'datastore-dir', '/var/lib/tabby/datastore', 'directory of the file datastore'),
  v('ETCD_ENDPOINTS', 'etcd-endpoints', undefined, 'comma list of etcd URLs (required with DATASTORE_TYPE=etcdv3)'),
  v('ETCD_CA_CERT_FILE', 'etcd-ca-cert-file', undefined, 'CA certificate file for etcd TLS'),
  v('ETCD_CERT_FILE', 'etcd-cert-file', undefined, 'client certificate file for etcd TLS'),
  v('ETCD_KEY_FILE', 'etcd-key-file', undefined, 'client key file for etcd TLS'),
  v('TABBY_CONFIG', 'config', undefined, 'datastore config file (default /etc/tabby/tabbyctl.cfg)'),
  // Process, status and logs
  v(
    'TABBY_STATE_DIR',
    'state-dir',
    DEFAULT_STATE_DIR,
    `runtime directory: the status socket ${STATUS_SOCKET_NAME} and the file ${NODENAME_FILE_NAME} (read by the CNI plugin)`,
  ),
  v(
    'TABBY_HEALTH_ADDR',
    'health-addr',
    DEFAULT_HEALTH_ADDR,
    'HOST:PORT of the HTTP /liveness, /readiness, /status server; "none" disables it',
  ),
  v('TABBY_METRICS_ADDR', 'metrics-addr', DEFAULT_METRICS_ADDR, '[HOST]:PORT of the Prometheus /metrics server; "none" disables it'),
  v('TABBY_LOG_LEVEL', 'log-level', 'info', 'trace, debug, info, warn, error, fatal or silent'),
  v(
    'TABBY_IPAM_GC_GRACE',
    'ipam-gc-grace',
    '300',
    'seconds the IPAM blocks and addresses of a deleted Node are kept before garbage collection (one agent at a time); 0 = no collection',
  ),
  v(
    'TABBY_IPAM_GC_LEASE',
    'ipam-gc-lease',
    '30',
    'seconds without renewal after which another agent takes over the IPAM garbage collection lease (renewed every third of it)',
  ),
  v('TABBY_NETNS', 'netns', undefined, 'path of a network namespace the agent enters at start (the lab runs one agent per node namespace)'),
];

export type PoolMode = 'Always' | 'CrossSubnet' | 'Never';
export type AddressSetting =
  | { kind: 'unset' }
  | { kind: 'autodetect' }
  | { kind: 'none' }
  /** address: as given; prefixLen undefined when given without "/n" (recover it from the interface). */
  | { kind: 'address'; address: string; prefixLen?: number };

export interface DefaultPool {
  cidr: string;
  blockSize: number;
  ipipMode: PoolMode;
  vxlanMode: PoolMode;
  natOutgoing: boolean;
  nodeSelector: string;
  /** Neither ipipMode nor vxlanMode was chosen: IPIP as Calico, but VXLAN on a kernel without ipip (fitToKernel). */
  encapByKernel?: boolean;
}

export interface HostPort {
  host: string;
  port: number;
}

export type AgentDatastoreSettings = NodeDatastoreConfig & { configFile?: string };

export interface AgentConfig {
  nodeName: string;
  mode: 'node' | 'route-reflector';
  ip: AddressSetting;
  ip6: AddressSetting;
  ipAutodetectionMethod: string;
  ip6AutodetectionMethod: string;
  /** kubernetes-internal-ip outside a cluster. */
  nodeInternalIps?: string[];
  /** 0 = no re-detection. */
  autodetectPollIntervalMs: number;
  /** Heartbeat of the published node status (node-status-publisher.ts). */
  statusIntervalMs: number;
  asNumber?: number;
  /** undefined = the node's IPv4 address; 'hash' = derived from the node name; else an IPv4 address. */
  routerId?: string;
  networkingBackend: 'bird' | 'vxlan' | 'none';
  rrClusterId?: string;
  labels: Record<string, string>;
  gracefulRestartTimeSec: number;
  /** TABBY_IPAM_GC_GRACE in seconds; 0 = no IPAM garbage collection. */
  ipamGcGraceSec: number;
  /** TABBY_IPAM_GC_LEASE in seconds: the collector's lease is taken over after this long unrenewed. */
  ipamGcLeaseSec: number;
  /** TABBY_SECRETS_DIR. */
  secretsDir: string;
  noDefaultPools: boolean;
  ipv4Pool: DefaultPool;
  ipv6Pool?: DefaultPool;
  datastore: AgentDatastoreSettings;
  stateDir: string;
  statusSocketPath: string;
  nodenameFilePath: string;
  /** undefined = disabled. */
  healthAddr?: HostPort;
  metricsAddr?: HostPort;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  netns?: string;
}

export class ConfigError extends Error {
  readonly code = 'ECONFIG';
  constructor(
    readonly variable: string,
    readonly value: string | undefined,
    reason: string,
  ) {
    super(`invalid ${variable}${value === undefined ? '' : `=${echo(value)}`}: ${reason}`);
    this.name = 'ConfigError';
  }
}

const BY_NAME = new Map(AGENT_ENV.map((e) => [e.name, e]));

/** Parse the environment and the command line (argv without node and script, e.g. hideBin(process.argv)). */
export function parseAgentConfig(env: NodeJS.ProcessEnv = process.env, argv: readonly string[] = []): AgentConfig {
  const flags = parseFlags(argv);
  /** flag > env > default; '' counts as unset. */
  const raw = (name: string): string | undefined => {
    const def = BY_NAME.get(name);
    if (!def) throw new Error(`internal: ${name} is not in AGENT_ENV`);
    const f = flags[def.flag];
    if (f !== undefined && f !== '') return f;
    const e = env[name];
    if (e !== undefined && e.trim() !== '') return e.trim();
    return def.default;
  };
  const label = (name: string): string => {
    const def = BY_NAME.get(name)!;
    return flags[def.flag] !== undefined && flags[def.flag] !== '' ? `--${def.flag}` : name;
  };

  const mode = oneOf(label('TABBY_MODE'), raw('TABBY_MODE')!, ['node', 'route-reflector'] as const);
  const networkingBackend = oneOf(label('CALICO_NETWORKING_BACKEND'), raw('CALICO_NETWORKING_BACKEND')!, [
    'bird',
    'vxlan',
    'none',
  ] as const);

  const nodeName = raw('NODENAME') ?? hostNodeName();
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(nodeName)) {
    throw new ConfigError(
      label('NODENAME'),
      nodeName,
      'a node name is lower-case letters, digits, "-" and ".", starting and ending with a letter or digit (DNS-1123)',
    );
  }

  const ip = parseAddressSetting(label('IP'), raw('IP'), 4);
  const ip6 = parseAddressSetting(label('IP6'), raw('IP6'), 6);
  const m4 = raw('IP_AUTODETECTION_METHOD')!;
  const m6 = raw('IP6_AUTODETECTION_METHOD')!;
  for (const [name, val, fam] of [
    ['IP_AUTODETECTION_METHOD', m4, 4],
    ['IP6_AUTODETECTION_METHOD', m6, 6],
  ] as const) {
    try {
      parseAutodetectionMethod(val, fam, label(name));
    } catch (e) {
      throw new ConfigError(label(name), val, e instanceof AutodetectConfigError ? e.message.replace(/^.*?: /, '') : String(e));
    }
  }
  const internalRaw = raw('TABBY_NODE_INTERNAL_IP');
  const nodeInternalIps = internalRaw
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const a of nodeInternalIps ?? []) {
    if (!tryParseIp(a)) throw new ConfigError(label('TABBY_NODE_INTERNAL_IP'), internalRaw, `"${a}" is not an IP address`);
  }

  const asRaw = raw('AS');
  const asNumber = asRaw === undefined ? undefined : parseAsNumber(label('AS'), asRaw);

  let routerId = raw('CALICO_ROUTER_ID');
  if (routerId !== undefined && routerId !== 'hash') {
    const p = tryParseIp(routerId);
    if (!p || p.family !== 4) throw new ConfigError(label('CALICO_ROUTER_ID'), routerId, 'a router ID is an IPv4 address or "hash"');
    routerId = formatIp(p);
  }

  let rrClusterId = raw('TABBY_RR_CLUSTER_ID');
  if (rrClusterId !== undefined) {
    const p = tryParseIp(rrClusterId);
    if (!p || p.family !== 4)
      throw new ConfigError(label('TABBY_RR_CLUSTER_ID'), rrClusterId, 'a cluster ID is written as an IPv4 address, e.g. 244.0.0.1');
    rrClusterId = formatIp(p);
  } else if (mode === 'route-reflector') {
    rrClusterId = '244.0.0.1';
  }

  const labels = parseLabels(label('TABBY_NODE_LABELS'), raw('TABBY_NODE_LABELS'));
  if (mode === 'route-reflector' && labels['route-reflector'] === undefined) labels['route-reflector'] = 'true';

  const grRaw = raw('TABBY_GRACEFUL_RESTART_TIME')!;
  const gracefulRestartTimeSec = intIn(label('TABBY_GRACEFUL_RESTART_TIME'), grRaw, 0, 4095, 'seconds (RFC 4724 allows 0..4095)');

  const ipv4Pool: DefaultPool = {
    cidr: poolCidr(label('CALICO_IPV4POOL_CIDR'), raw('CALICO_IPV4POOL_CIDR')!, 4),
    blockSize: intIn(label('CALICO_IPV4POOL_BLOCK_SIZE'), raw('CALICO_IPV4POOL_BLOCK_SIZE')!, 20, 32, 'an IPv4 block size (prefix length)'),
    ipipMode: poolMode(label('CALICO_IPV4POOL_IPIP'), raw('CALICO_IPV4POOL_IPIP')!),
    vxlanMode: poolMode(label('CALICO_IPV4POOL_VXLAN'), raw('CALICO_IPV4POOL_VXLAN')!),
    natOutgoing: bool(label('CALICO_IPV4POOL_NAT_OUTGOING'), raw('CALICO_IPV4POOL_NAT_OUTGOING')!),
    nodeSelector: raw('CALICO_IPV4POOL_NODE_SELECTOR')!,
  };
  const ipipExplicit =
    (env.CALICO_IPV4POOL_IPIP !== undefined && env.CALICO_IPV4POOL_IPIP.trim() !== '') || flags['ipv4pool-ipip'] !== undefined;
  if (ipv4Pool.vxlanMode !== 'Never' && ipv4Pool.ipipMode !== 'Never') {
    // Calico: "cannot enable both VXLAN and IPIP on the same pool". The IPIP default yields to an explicit VXLAN.
    if (ipipExplicit) {
      throw new ConfigError(
        label('CALICO_IPV4POOL_VXLAN'),
        raw('CALICO_IPV4POOL_VXLAN'),
        `cannot be combined with ${label('CALICO_IPV4POOL_IPIP')}=${ipv4Pool.ipipMode}: a pool uses IPIP or VXLAN, not both (set one of them to Never)`,
      );
    }
    ipv4Pool.ipipMode = 'Never';
  }
  if (networkingBackend === 'vxlan' && !ipipExplicit) ipv4Pool.ipipMode = 'Never';
  if (networkingBackend === 'vxlan' && ipv4Pool.ipipMode !== 'Never') {
    throw new ConfigError(
      label('CALICO_IPV4POOL_IPIP'),
      ipv4Pool.ipipMode,
      'IPIP needs BGP: with CALICO_NETWORKING_BACKEND=vxlan use CALICO_IPV4POOL_VXLAN instead',
    );
  }
  if (
    networkingBackend === 'vxlan' &&
    ipv4Pool.vxlanMode === 'Never' &&
    env.CALICO_IPV4POOL_VXLAN === undefined &&
    flags['ipv4pool-vxlan'] === undefined
  ) {
    ipv4Pool.vxlanMode = 'Always';
  }
  const vxlanExplicit =
    (env.CALICO_IPV4POOL_VXLAN !== undefined && env.CALICO_IPV4POOL_VXLAN.trim() !== '') || flags['ipv4pool-vxlan'] !== undefined;
  if (networkingBackend === 'bird' && !ipipExplicit && !vxlanExplicit) ipv4Pool.encapByKernel = true;

  const v6cidr = raw('CALICO_IPV6POOL_CIDR');
  const ipv6Pool: DefaultPool | undefined =
    v6cidr === undefined
      ? undefined
      : {
          cidr: poolCidr(label('CALICO_IPV6POOL_CIDR'), v6cidr, 6),
          blockSize: intIn(
            label('CALICO_IPV6POOL_BLOCK_SIZE'),
            raw('CALICO_IPV6POOL_BLOCK_SIZE')!,
            116,
            128,
            'an IPv6 block size (prefix length)',
          ),
          ipipMode: 'Never',
          vxlanMode: poolMode(label('CALICO_IPV6POOL_VXLAN'), raw('CALICO_IPV6POOL_VXLAN')!),
          natOutgoing: bool(label('CALICO_IPV6POOL_NAT_OUTGOING'), raw('CALICO_IPV6POOL_NAT_OUTGOING')!),
          nodeSelector: 'all()',
        };
  for (const [pool, name] of [
    [ipv4Pool, 'CALICO_IPV4POOL_BLOCK_SIZE'],
    [ipv6Pool, 'CALICO_IPV6POOL_BLOCK_SIZE'],
  ] as const) {
    if (pool && parseCidr(pool.cidr).prefixLen > pool.blockSize) {
      throw new ConfigError(label(name), String(pool.blockSize), `the block size must not be smaller than the pool (${pool.cidr})`);
    }
  }

  const dsRaw = raw('DATASTORE_TYPE')!;
  let dsType: 'file' | 'etcdv3';
  try {
    const t = parseDatastoreType(dsRaw, label('DATASTORE_TYPE'));
    if (t === 'memory') throw new DatastoreConfigError(label('DATASTORE_TYPE'), 'memory is for tests only');
    dsType = t;
  } catch (e) {
    throw new ConfigError(label('DATASTORE_TYPE'), dsRaw, `expected file or etcdv3 (${e instanceof Error ? e.message : String(e)})`);
  }
  const endpointsRaw = raw('ETCD_ENDPOINTS');
  let etcdEndpoints: string[] | undefined;
  if (endpointsRaw !== undefined) {
    try {
      etcdEndpoints = parseEndpoints(endpointsRaw, label('ETCD_ENDPOINTS'));
    } catch (e) {
      throw new ConfigError(
        label('ETCD_ENDPOINTS'),
        endpointsRaw,
        e instanceof DatastoreConfigError ? e.message.replace(/^.*?: /, '') : String(e),
      );
    }
  }
  if (dsType === 'etcdv3' && !etcdEndpoints?.length && raw('TABBY_CONFIG') === undefined) {
    throw new ConfigError(
      'ETCD_ENDPOINTS',
      undefined,
      'required with DATASTORE_TYPE=etcdv3 (comma list of URLs, e.g. http://10.0.0.1:2379)',
    );
  }
  const datastore: AgentDatastoreSettings = { type: dsType, dir: raw('TABBY_DATASTORE_DIR')! };
  if (etcdEndpoints?.length) datastore.etcdEndpoints = etcdEndpoints;
  const optional = [
    ['ETCD_CA_CERT_FILE', 'etcdCaCertFile'],
    ['ETCD_CERT_FILE', 'etcdCertFile'],
    ['ETCD_KEY_FILE', 'etcdKeyFile'],
    ['TABBY_CONFIG', 'configFile'],
  ] as const;
  for (const [name, key] of optional) {
    const val = raw(name);
    if (val !== undefined) datastore[key] = val;
  }

  const stateDir = raw('TABBY_STATE_DIR')!;
  const healthRaw = raw('TABBY_HEALTH_ADDR')!;
  const metricsRaw = raw('TABBY_METRICS_ADDR')!;
  const logLevel = oneOf(label('TABBY_LOG_LEVEL'), raw('TABBY_LOG_LEVEL')!.toLowerCase(), [
    'trace',
    'debug',
    'info',
    'warn',
    'error',
    'fatal',
    'silent',
  ] as const);
  const netns = raw('TABBY_NETNS');
  if (netns !== undefined && !path.isAbsolute(netns))
    throw new ConfigError(label('TABBY_NETNS'), netns, 'give the absolute path of the namespace, e.g. /var/run/netns/node1');

  const cfg: AgentConfig = {
    nodeName,
    mode,
    ip,
    ip6,
    ipAutodetectionMethod: m4,
    ip6AutodetectionMethod: m6,
    autodetectPollIntervalMs: durationMs(label('AUTODETECT_POLL_INTERVAL'), raw('AUTODETECT_POLL_INTERVAL')!),
    statusIntervalMs: Math.max(1000, durationMs(label('TABBY_STATUS_INTERVAL'), raw('TABBY_STATUS_INTERVAL')!)),
    networkingBackend,
    labels,
    gracefulRestartTimeSec,
    ipamGcGraceSec: intIn(label('TABBY_IPAM_GC_GRACE'), raw('TABBY_IPAM_GC_GRACE')!, 0, 30 * 86400, 'seconds (0 = off)'),
    ipamGcLeaseSec: intIn(label('TABBY_IPAM_GC_LEASE'), raw('TABBY_IPAM_GC_LEASE')!, 3, 3600, 'seconds'),
    secretsDir: raw('TABBY_SECRETS_DIR')!,
    noDefaultPools: bool(label('NO_DEFAULT_POOLS'), raw('NO_DEFAULT_POOLS')!),
    ipv4Pool,
    datastore,
    stateDir,
    statusSocketPath: path.join(stateDir, STATUS_SOCKET_NAME),
    nodenameFilePath: path.join(stateDir, NODENAME_FILE_NAME),
    logLevel,
  };
  if (asNumber !== undefined) cfg.asNumber = asNumber;
  if (nodeInternalIps?.length) cfg.nodeInternalIps = nodeInternalIps;
  if (routerId !== undefined) cfg.routerId = routerId;
  if (rrClusterId !== undefined) cfg.rrClusterId = rrClusterId;
  if (ipv6Pool) cfg.ipv6Pool = ipv6Pool;
  const health = hostPort(label('TABBY_HEALTH_ADDR'), healthRaw, '127.0.0.1');
  if (health) cfg.healthAddr = health;
  const metrics = hostPort(label('TABBY_METRICS_ADDR'), metricsRaw, '0.0.0.0');
  if (metrics) cfg.metricsAddr = metrics;
  if (netns !== undefined) cfg.netns = netns;
  return cfg;
}

/** The command-line flags: one string flag per AGENT_ENV entry, `--flag value` or `--flag=value`. */
function parseFlags(argv: readonly string[]): Record<string, string | undefined> {
  if (argv.length === 0) return {};
  let values: Record<string, string[] | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      options: Object.fromEntries(AGENT_ENV.map((e) => [e.flag, { type: 'string', multiple: true }] as const)),
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string[] | undefined>;
  } catch (e) {
    throw new ConfigError('command line', argv.join(' '), e instanceof Error ? e.message : String(e));
  }
  const out: Record<string, string | undefined> = {};
  for (const e of AGENT_ENV) {
    const val = values[e.flag];
    if (val && val.length > 1) throw new ConfigError(`--${e.flag}`, val.join(' '), 'given more than once');
    if (val?.[0] !== undefined) out[e.flag] = val[0];
  }
  return out;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  const hit = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
  if (!hit) throw new ConfigError(name, value, `expected one of ${allowed.join(', ')}`);
  return hit;
}

function bool(name: string, value: string): boolean {
  const s = value.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off'].includes(s)) return false;
  throw new ConfigError(name, value, 'expected true or false');
}

function intIn(name: string, value: string, min: number, max: number, what: string): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(name, value, `expected ${what}, a whole number ${min}..${max}`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(name, value, `expected ${what}, ${min}..${max}`);
  return n;
}

function poolMode(name: string, value: string): PoolMode {
  // Calico also accepts "Off" for Never (older manifests).
  if (value.toLowerCase() === 'off') return 'Never';
  return oneOf(name, value, ['Always', 'CrossSubnet', 'Never'] as const);
}

function poolCidr(name: string, value: string, family: 4 | 6): string {
  let c;
  try {
    c = parseCidr(value, { requirePrefix: true });
  } catch (e) {
    throw new ConfigError(name, value, e instanceof InvalidAddress ? e.message : String(e));
  }
  if (c.family !== family) throw new ConfigError(name, value, `expected an IPv${family} CIDR`);
  if (c.ip !== c.network)
    throw new ConfigError(name, value, `host bits are set (did you mean ${formatIp({ family, value: c.network })}/${c.prefixLen}?)`);
  return value;
}

function parseAddressSetting(name: string, value: string | undefined, family: 4 | 6): AddressSetting {
  if (value === undefined) return { kind: 'unset' };
  const s = value.toLowerCase();
  if (s === 'autodetect' || s === 'first-found') return { kind: 'autodetect' };
  if (s === 'none') return { kind: 'none' };
  try {
    const slash = value.indexOf('/');
    const c = parseCidr(value);
    if (c.family !== family) throw new ConfigError(name, value, `expected an IPv${family} address (or "autodetect" / "none")`);
    const address = formatIp({ family, value: c.ip });
    return slash < 0 ? { kind: 'address', address } : { kind: 'address', address, prefixLen: c.prefixLen };
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(
      name,
      value,
      `expected "autodetect", "none" or an IPv${family} address with optional /prefix (${e instanceof Error ? e.message : String(e)})`,
    );
  }
}

/** "64512", or dotted "64512.100" (RFC 5396 asdot): the datastore's parser, errors naming the variable. */
export function parseAsNumber(name: string, value: string): number {
  try {
    return parseAsn(value);
  } catch (e) {
    if (e instanceof InvalidAsn) throw new ConfigError(name, value, e.message.replace(/^invalid AS number [^:]*: /, ''));
    throw e;
  }
}

function parseLabels(name: string, value: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (value === undefined) return out;
  for (const part of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq).trim();
    const val = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(k)) {
      throw new ConfigError(name, value, `"${k}" is not a valid label key`);
    }
    if (!/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/.test(val))
      throw new ConfigError(name, value, `"${val}" is not a valid label value`);
    out[k] = val;
  }
  return out;
}

function durationMs(name: string, value: string): number {
  try {
    return parseDurationSetting(name, value);
  } catch {
    throw new ConfigError(name, value, 'expected a duration (e.g. 60s, 5m, 1h30m) or a number of seconds');
  }
}

function hostPort(name: string, value: string, defaultHost: string): HostPort | undefined {
  if (value.toLowerCase() === 'none') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  if (!m) throw new ConfigError(name, value, 'expected HOST:PORT (or :PORT, or "none")');
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(name, value, 'port out of range 0..65535');
  const host = m[1] ?? (m[2] || defaultHost);
  if (host !== 'localhost') {
    try {
      parseIp(host);
    } catch {
      throw new ConfigError(name, value, `"${host}" is not an IP address`);
    }
  }
  return { host, port };
}
