// tabby-node's local status surface:
//  - HTTP on TABBY_HEALTH_ADDR (default 127.0.0.1:9099) and the unix socket $TABBY_STATE_DIR/tabby.sock,
//    both serving GET /liveness, /readiness (200 ready / 503 not, JSON reasons) and /status (JSON:
//    peers, routes, blocks — see status-types.ts);
//  - Prometheus /metrics on TABBY_METRICS_ADDR (default :9091) via prom-client: BGP session states,
//    prefixes per peer, route sync duration, IPAM blocks/addresses, datastore reachability.
// The server reads everything from a StatusSource at request time; it never changes agent state.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { Registry, Gauge, Histogram, collectDefaultMetrics } from './prom.js';
import type { AgentStatusJson, ReadinessJson } from './status-types.js';
import type { SessionsJson } from './session-history.js';
import { HEALTH_PATHS, METRICS_PATH, ROUTE_PATH, BGP_ROUTES_PATH } from './constants.js';
import type { HostPort } from './config.js';
import { log, type Logger } from '../common/log.js';

export interface StatusSource {
  status(): AgentStatusJson;
  readiness(): ReadinessJson;
  /** Live = the main loop is turning (not stuck). */
  liveness(): { live: boolean; reasons: string[] };
  /** Per-peer session history (session-history.ts). */
  sessions?(): SessionsJson;
  /** IPAM figures for metrics (may be slightly stale). */
  ipamFigures?(): { blocks: number; addressesAllocated: number; addressesTotal: number };
  /** The route pipeline's figures (learned, kernel desired/pending/held, last error). */
  routeFigures?(): NonNullable<AgentStatusJson['routing']>;
  /** The route record for an address or prefix (`route explain`); undefined: no route covers it. */
  explainRoute?(query: string): unknown;
  /** Per-prefix BGP report (`tabbyctl bgp routes`). */
  bgpRoutes?(peer: string | undefined, dir: 'received' | 'advertised'): unknown;
}

export interface AgentMetrics {
  registry: Registry;
  /** Record one route reconcile pass (seconds). */
  routeSyncDuration: Histogram<string>;
  /** BGP UPDATE received → kernel route programmed (seconds). */
  routeUpdateToKernel: Histogram<string>;
  /** Withdraw received → kernel route removed (seconds). */
  routeWithdrawToRemoved: Histogram<string>;
}

export function createMetrics(source: StatusSource): AgentMetrics {
  const registry = new Registry();
  new Gauge({
    name: 'tabby_bgp_session_established',
    help: 'BGP session to a peer is Established (1) or not (0)',
    labelNames: ['peer', 'type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of source.status().peers) this.set({ peer: p.address, type: p.type }, p.state === 'Established' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tabby_bgp_session_state',
    help: 'BGP FSM state of each peer (1 for the current state)',
    labelNames: ['peer', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of source.status().peers) this.set({ peer: p.address, state: p.state }, 1);
    },
  });
  new Gauge({
    name: 'tabby_bfd_session_up',
    help: 'BFD session to a peer is Up (1) or not (0); only peers with BFD',
    labelNames: ['peer', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of source.status().peers) if (p.bfd) this.set({ peer: p.address, state: p.bfd.state }, p.bfd.state === 'Up' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tabby_bfd_session_downs_total',
    help: 'times a BFD session went from Up to Down',
    labelNames: ['peer'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of source.status().peers) if (p.bfd) this.set({ peer: p.address }, p.bfd.downs);
    },
  });
  new Gauge({
    name: 'tabby_bgp_prefixes_received',
    help: 'prefixes received from each peer',
    labelNames: ['peer'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of source.status().peers) this.set({ peer: p.address }, p.prefixesReceived);
    },
  });
  new Gauge({
    name: 'tabby_bgp_prefixes_accepted',
    help: 'prefixes accepted from each peer',
    labelNames: ['peer'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of source.status().peers) this.set({ peer: p.address }, p.prefixesAccepted);
    },
  });
  new Gauge({
    name: 'tabby_bgp_prefixes_exported',
    help: 'prefixes this node originates',
    registers: [registry],
    collect() {
      this.set(source.status().exports.length);
    },
  });
  new Gauge({
    name: 'tabby_kernel_routes',
    help: 'kernel routes tabby wants programmed',
    registers: [registry],
    collect() {
      const r = source.routeFigures?.();
      this.set(r ? r.kernel.desired : source.status().routes.length);
    },
  });
  new Gauge({
    name: 'tabby_kernel_routes_pending',
    help: 'kernel route changes not made yet',
    registers: [registry],
    collect() {
      this.set(source.routeFigures?.().kernel.pending ?? 0);
    },
  });
  new Gauge({
    name: 'tabby_bgp_routes_learned',
    help: 'prefixes with a best route learned over BGP',
    registers: [registry],
    collect() {
      this.set(source.routeFigures?.().learned ?? 0);
    },
  });
  new Gauge({
    name: 'tabby_kernel_route_last_error_timestamp_seconds',
    help: 'when programming kernel routes last failed (0: never)',
    registers: [registry],
    collect() {
      const e = source.routeFigures?.().lastError;
      this.set(e ? Date.parse(e.at) / 1000 : 0);
    },
  });
  new Gauge({
    name: 'tabby_ipam_blocks',
    help: 'IPAM blocks affine to this node',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const b of source.status().blocks) counts.set(b.state, (counts.get(b.state) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'tabby_ipam_addresses_allocated',
    help: "addresses allocated in this node's blocks",
    registers: [registry],
    collect() {
      const f = source.ipamFigures?.();
      if (f) this.set(f.addressesAllocated);
    },
  });
  new Gauge({
    name: 'tabby_ipam_addresses_total',
    help: "addresses in this node's blocks",
    registers: [registry],
    collect() {
      const f = source.ipamFigures?.();
      if (f) this.set(f.addressesTotal);
    },
  });
  new Gauge({
    name: 'tabby_datastore_up',
    help: 'the datastore is reachable (1) or not (0)',
    registers: [registry],
    collect() {
      this.set(source.readiness().datastore === 'up' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tabby_ready',
    help: 'the agent is ready (1) or not (0)',
    registers: [registry],
    collect() {
      this.set(source.readiness().ready ? 1 : 0);
    },
  });
  const routeSyncDuration = new Histogram({
    name: 'tabby_route_sync_duration_seconds',
    help: 'time to reconcile the kernel routes with the desired set',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'tabby_bgp_peers_not_established',
    help: 'configured BGP peers that are not Established (expected but down)',
    registers: [registry],
    collect() {
      this.set(source.status().peers.filter((p) => p.state !== 'Established').length);
    },
  });
  const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  const routeUpdateToKernel = new Histogram({
    name: 'tabby_route_update_to_kernel_seconds',
    help: 'BGP UPDATE received to the kernel route programmed',
    buckets: latencyBuckets,
    registers: [registry],
  });
  const routeWithdrawToRemoved = new Histogram({
    name: 'tabby_route_withdraw_to_removed_seconds',
    help: 'BGP withdraw received to the kernel route removed',
    buckets: latencyBuckets,
    registers: [registry],
  });
  return { registry, routeSyncDuration, routeUpdateToKernel, routeWithdrawToRemoved };
}

export interface StatusServerOptions {
  healthAddr?: HostPort;
  metricsAddr?: HostPort;
  socketPath?: string;
  logger?: Logger;
}

export class StatusServer {
  private readonly servers: http.Server[] = [];
  private readonly logger: Logger;
  readonly metrics: AgentMetrics;
  private defaultMetrics = false;

  constructor(
    private readonly source: StatusSource,
    private readonly opts: StatusServerOptions,
  ) {
    this.logger = opts.logger ?? log('status');
    this.metrics = createMetrics(source);
  }

  /** Handle one request of the health/status surface. */
  private handleHealth = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(body)}\n`);
    };
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        send(405, { error: 'GET only' });
        return;
      }
      switch (url) {
        case HEALTH_PATHS.liveness: {
          const l = this.source.liveness();
          send(l.live ? 200 : 503, l);
          return;
        }
        case HEALTH_PATHS.readiness: {
          const r = this.source.readiness();
          send(r.ready ? 200 : 503, r);
          return;
        }
        case HEALTH_PATHS.status:
          send(200, this.source.status());
          return;
        case ROUTE_PATH: {
          const q = new URL(req.url ?? '/', 'http://x').searchParams.get('prefix') ?? '';
          const r = this.source.explainRoute?.(q);
          if (r) send(200, r);
          else send(404, { error: `no route covers "${q}"` });
          return;
        }
        case BGP_ROUTES_PATH: {
          const q = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
          const dir = q.get('dir') === 'received' ? 'received' : 'advertised';
          const r = this.source.bgpRoutes?.(q.get('peer') || undefined, dir) ?? { error: 'not available' };
          send('error' in (r as object) ? 404 : 200, r);
          return;
        }
        case HEALTH_PATHS.sessions:
          if (this.source.sessions) {
            send(200, this.source.sessions());
            return;
          }
          break;
      }
      send(404, { error: `unknown path ${url}; try ${Object.values(HEALTH_PATHS).join(', ')}` });
    } catch (e) {
      send(500, { error: e instanceof Error ? e.message : String(e) });
    }
  };

  private handleMetrics = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = (req.url ?? '/').split('?')[0];
    if (url !== METRICS_PATH) {
      res.writeHead(404).end(`try ${METRICS_PATH}\n`);
      return;
    }
    // prom-client's default metrics (process, heap, event loop lag, GC: ~3 MB of RSS with their modules
    // and the event-loop histogram) start with the first scrape: an agent nobody scrapes does not pay.
    if (!this.defaultMetrics) {
      this.defaultMetrics = true;
      collectDefaultMetrics({ register: this.metrics.registry, prefix: 'tabby_node_' });
    }
    this.metrics.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
        res.end(text);
      },
      (e: unknown) => {
        res.writeHead(500).end(String(e));
      },
    );
  };

  async start(): Promise<void> {
    if (this.opts.healthAddr) await this.listen(this.handleHealth, this.opts.healthAddr);
    if (this.opts.socketPath) {
      fs.mkdirSync(path.dirname(this.opts.socketPath), { recursive: true });
      try {
        fs.unlinkSync(this.opts.socketPath);
      } catch {
        /* absent */
      }
      await this.listen(this.handleHealth, this.opts.socketPath);
      fs.chmodSync(this.opts.socketPath, 0o660);
    }
    if (this.opts.metricsAddr) await this.listen(this.handleMetrics, this.opts.metricsAddr);
  }

  private listen(handler: http.RequestListener, where: HostPort | string): Promise<void> {
    return new Promise((resolve, reject) => {
      // No Date header: node formats it with Date#toUTCString, which loads ICU's zone data (common/iso-time.ts).
      const srv = http.createServer((req, res) => {
        res.sendDate = false;
        handler(req, res);
      });
      srv.keepAliveTimeout = 5000;
      srv.once('error', reject);
      const done = (): void => {
        srv.off('error', reject);
        srv.on('error', (e) => this.logger.error({ err: e }, 'status server error'));
        this.servers.push(srv);
        this.logger.info({ listen: typeof where === 'string' ? where : `${where.host}:${where.port}` }, 'status server listening');
        resolve();
      };
      if (typeof where === 'string') srv.listen(where, done);
      else srv.listen(where.port, where.host, done);
    });
  }

  /** Bound addresses (port 0 resolved), for tests. */
  addresses(): (string | { address: string; port: number })[] {
    return this.servers.map((s) => {
      const a = s.address();
      return typeof a === 'string' || a === null ? String(a) : { address: a.address, port: a.port };
    });
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((r) => {
            s.closeAllConnections?.();
            s.close(() => r());
          }),
      ),
    );
    this.servers.length = 0;
    if (this.opts.socketPath) {
      try {
        fs.unlinkSync(this.opts.socketPath);
      } catch {
        /* gone */
      }
    }
  }
}
