// Fixed names of tabby-node's status surface, shared by the status server, `tabbyctl node status`,
// the deploy manifests (probes) and their tests.

/** Paths served by the health/status HTTP server (TABBY_HEALTH_ADDR) and the unix socket. */
export const HEALTH_PATHS = {
  liveness: '/liveness',
  readiness: '/readiness',
  status: '/status',
  /** Per-peer session history and configuration (tabbyctl bgp diagnose). */
  sessions: '/sessions',
} as const;

/** `GET /route?prefix=<address or prefix>` on the same server: the route record deciding where that
 *  traffic goes (next hops, peer, kernel route or why none) — what `tabbyctl route explain` reads. */
export const ROUTE_PATH = '/route';
/** `tabbyctl bgp routes`: GET /bgp/routes?peer=<address>&dir=received|advertised (health server and socket). */
export const BGP_ROUTES_PATH = '/bgp/routes';

/** Path served on TABBY_METRICS_ADDR (Prometheus text format). */
export const METRICS_PATH = '/metrics';

export const DEFAULT_HEALTH_HOST = '127.0.0.1';
export const DEFAULT_HEALTH_PORT = 9099;
export const DEFAULT_HEALTH_ADDR = `${DEFAULT_HEALTH_HOST}:${DEFAULT_HEALTH_PORT}`;
export const DEFAULT_METRICS_PORT = 9091;
export const DEFAULT_METRICS_ADDR = `:${DEFAULT_METRICS_PORT}`;

export const DEFAULT_STATE_DIR = '/var/run/tabby';
/** The unix socket in $TABBY_STATE_DIR serving the same paths as the health server. */
export const STATUS_SOCKET_NAME = 'tabby.sock';
/** The file in $TABBY_STATE_DIR holding this node's name (the CNI plugin reads it). */
export const NODENAME_FILE_NAME = 'nodename';

/** The message shown (log, /readiness, node status) when a pool needs IPIP on a kernel without it. */
export const NO_IPIP_MESSAGE = 'kernel has no ipip support: use vxlanMode or ipipMode Never';
