// tabby-node's process, loaded by main.ts once the heap policy is set — the node agent (a DaemonSet in a
// cluster, a systemd service on a host, one process per node namespace in the lab). Reads its
// configuration (config.ts), enters its network namespace when told to (--netns / TABBY_NETNS), writes $TABBY_STATE_DIR/nodename for the CNI plugin, serves the
// status surface (status-server.ts), builds the real modules and hands them to the Agent (agent.ts).
// Signals: SIGTERM/SIGINT → graceful stop (BGP sessions closed so peers keep our routes for the
// graceful-restart time; kernel routes are left in place). Exit codes: 0 stopped, 1 fatal, 2 bad config.
import fs from 'node:fs';
import path from 'node:path';
import { configureLogging, log } from '../common/log.js';
import { native } from '../native/index.js';
import { openDatastore, datastoreConfigFromEnv, type DatastoreConfig } from '../datastore/index.js';
import { ResourceStore } from '../datastore/resources.js';
import { Ipam, IpamGc, setSelectorMatcher } from '../ipam/index.js';
import { ConfigError, parseAgentConfig, type AgentConfig } from './config.js';
import { Agent, type AgentDeps } from './agent.js';
import { NodeStatusPublisher } from './node-status-publisher.js';
import { RouteLatency } from './route-latency.js';
import { recordFromStatus } from './cluster-input.js';
import { StatusServer } from './status-server.js';
import { resourcesPort, ipamPort, calicoSelectorMatch } from './wiring-store.js';
import { bgpSpeakerPort, addressPort } from './wiring-bgp.js';
import { createDataplanePort } from './wiring-dataplane.js';
import { withTimeout } from './util.js';
import { BfdService } from '../bfd/service.js';
import { udpTransport } from '../bfd/udp.js';
import { realClock } from '../bgp/clock.js';
import { tabbyVersion } from '../cli/commands/version.js';
import { startAddressPolling, type AddressPoller } from '../autodetect/poll.js';
import { ResidentCniServer, CNI_SOCKET_NAME } from '../cni/resident.js';
import { startPolicyEngine } from '../policy/engine.js';
import { k8sConfigured } from '../common/k8s-env.js';
import { settleAfterStart, startMemoryTrim } from './memory-trim.js';

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(await (await import('./help.js')).agentHelp());
    return 0;
  }
  if (argv.includes('--version')) {
    process.stdout.write(`tabby-node v${tabbyVersion()}\n`);
    return 0;
  }

  let cfg: AgentConfig;
  try {
    cfg = parseAgentConfig(env, argv);
  } catch (e) {
    process.stderr.write(`tabby-node: ${e instanceof Error ? e.message : String(e)}\n`);
    return e instanceof ConfigError ? 2 : 1;
  }
  configureLogging({ level: cfg.logLevel });
  const logger = log('agent', { node: cfg.nodeName });

  if (cfg.netns) native().enterNetns(cfg.netns);

  // The CNI plugin reads the node name from here.
  fs.mkdirSync(cfg.stateDir, { recursive: true });
  fs.writeFileSync(cfg.nodenameFilePath, cfg.nodeName);

  const overrides: Partial<DatastoreConfig> = { type: cfg.datastore.type };
  if (cfg.datastore.type === 'file') overrides.dir = cfg.datastore.dir;
  if (cfg.datastore.etcdEndpoints) overrides.etcdEndpoints = cfg.datastore.etcdEndpoints;
  if (cfg.datastore.etcdCaCertFile) overrides.etcdCaCertFile = cfg.datastore.etcdCaCertFile;
  if (cfg.datastore.etcdCertFile) overrides.etcdCertFile = cfg.datastore.etcdCertFile;
  if (cfg.datastore.etcdKeyFile) overrides.etcdKeyFile = cfg.datastore.etcdKeyFile;
  const dsEnv = cfg.datastore.configFile ? { ...env, TABBY_CONFIG: cfg.datastore.configFile } : env;
  const dsConfig = datastoreConfigFromEnv(dsEnv, overrides);
  const ds = await openDatastore(dsConfig);
  setSelectorMatcher((sel, labels) => calicoSelectorMatch(sel, labels));

  const nodeMode = cfg.mode === 'node';
  const deps: AgentDeps = {
    config: cfg,
    ds,
    resources: resourcesPort(new ResourceStore(ds)),
    addresses: addressPort(cfg),
    selector: calicoSelectorMatch,
    version: tabbyVersion(),
  };
  if (nodeMode) deps.ipam = ipamPort(new Ipam(ds));
  if (nodeMode && cfg.networkingBackend !== 'none') deps.dataplane = await createDataplanePort({ logger: log('dataplane') });
  // Route latency metrics: the speaker's events stamp a prefix, the next kernel apply completes it.
  let latency: RouteLatency | undefined;
  if (cfg.networkingBackend === 'bird') {
    deps.speakerFactory = (o) => {
      const sp = bgpSpeakerPort(o, log('bgp', { node: cfg.nodeName }));
      // The batched feed only: a per-prefix 'best' listener would make the speaker emit per-prefix events.
      sp.onChanges?.((c) => {
        if (!latency) return;
        let adds = false;
        let withdraws = false;
        for (let i = 0; i < c.count && !(adds && withdraws); i++) {
          if (c.nextHop(i)) adds = true;
          else withdraws = true;
        }
        latency.onBatch(adds, withdraws);
      });
      return sp;
    };
  }
  // BFD (RFC 5880/5881): sockets opened when the first session asks for it.
  if (cfg.networkingBackend === 'bird')
    deps.bfd = new BfdService({ transport: () => udpTransport(), clock: realClock, logger: log('bfd', { node: cfg.nodeName }) });

  // Per-Service /32s (externalTrafficPolicy Local, aggregation Disabled) need the Kubernetes API.
  // The Kubernetes API modules are loaded only where there is an API server (not on a host install, the lab).
  const services =
    nodeMode && k8sConfigured(env)
      ? await (await import('./k8s-service-watch.js'))
          .startK8sServiceWatch(log('k8s-services', { node: cfg.nodeName }), env)
          .catch((e: unknown) => {
            logger.error(
              { err: msg(e) },
              'cannot read Services from the Kubernetes API: only the configured service ranges are advertised',
            );
            return undefined;
          })
      : undefined;
  if (services) deps.services = services;
  const agent = new Agent(deps);
  const policy = nodeMode
    ? startPolicyEngine({ store: new ResourceStore(ds), node: cfg.nodeName, logger: log('policy', { node: cfg.nodeName }) })
    : undefined;
  if (policy) agent.policyStatus = () => policy.statusJson();
  const k8sLabels =
    nodeMode && k8sConfigured(env)
      ? await (await import('../policy/k8s-sync.js'))
          .startK8sLabelSync({ store: new ResourceStore(ds), node: cfg.nodeName, logger: log('k8s', { node: cfg.nodeName }) }, env)
          .catch((e: unknown) => {
            logger.error({ err: msg(e) }, 'cannot read pod labels from the Kubernetes API (service account)');
            return undefined;
          })
      : undefined;
  const server = new StatusServer(agent, {
    socketPath: cfg.statusSocketPath,
    ...(cfg.healthAddr ? { healthAddr: cfg.healthAddr } : {}),
    ...(cfg.metricsAddr ? { metricsAddr: cfg.metricsAddr } : {}),
  });
  if (deps.dataplane)
    latency = new RouteLatency((kind, s) =>
      (kind === 'add' ? server.metrics.routeUpdateToKernel : server.metrics.routeWithdrawToRemoved).observe(s),
    );
  agent.on('routeSync', (seconds: number) => {
    server.metrics.routeSyncDuration.observe(seconds);
    latency?.onApplied(seconds);
  });
  try {
    await server.start();
  } catch (e) {
    logger.fatal({ err: msg(e) }, 'cannot start the status server');
    return 1;
  }

  // The resident CNI path: the `tabby` client executable sends each CNI command here (see src/cni/resident.ts).
  const cni = nodeMode
    ? new ResidentCniServer({
        socketPath: path.join(cfg.stateDir, CNI_SOCKET_NAME),
        agentDatastore: { config: dsConfig, ds },
        logger: log('cni'),
      })
    : undefined;
  try {
    await cni?.start();
  } catch (e) {
    logger.error({ err: msg(e) }, 'cannot start the resident CNI server: pods are set up by the in-process plugin');
  }

  let stopping: Promise<void> | undefined;
  let poller: AddressPoller | undefined;
  let trim: { stop(): void } | undefined;
  let ipamGc: IpamGc | undefined;
  // The compact status every node publishes to the datastore (tabbyctl cluster status reads it).
  const publisher = new NodeStatusPublisher({
    ds,
    node: cfg.nodeName,
    source: () => recordFromStatus(agent.status()),
    logger: log('status'),
    heartbeatMs: cfg.statusIntervalMs,
  });
  const stop = (signal: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ signal }, 'stopping (graceful BGP shutdown; kernel routes stay)');
      poller?.stop();
      trim?.stop();
      await ipamGc?.stop();
      await publisher.publishStopped(signal);
      await cni?.stop();
      k8sLabels?.stop();
      services?.stop();
      policy?.stop(); // the kernel keeps the rules: enforcement continues until the next start replaces them
      await agent.stop({ graceful: true });
      await server.stop();
      await ds.close().catch(() => undefined);
    })();
    return stopping;
  };
  // A signal ends the process even while start-up is still retrying (e.g. waiting for the datastore).
  const done = new Promise<number>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      process.once(sig, () => {
        const hard = setTimeout(() => process.exit(0), 15_000);
        hard.unref();
        void stop(sig).then(() => {
          resolve(0);
          process.exit(0);
        });
      });
    }
  });

  // Start-up, retried while the datastore is unreachable (a pod restart loop would do the same, slower).
  for (let attempt = 1; ; attempt++) {
    try {
      // Say so when the datastore does not answer (an etcd client would otherwise wait silently).
      await withTimeout(
        ds.revision(),
        3000,
        `datastore (${dsConfig.type}${dsConfig.etcdEndpoints ? ` ${dsConfig.etcdEndpoints.join(',')}` : ''}) did not answer`,
      );
      await agent.start();
      publisher.start();
      break;
    } catch (e) {
      if (stopping) return done;
      const fatal = isFatalStartError(e);
      logger[fatal ? 'fatal' : 'error']({ err: msg(e), attempt }, fatal ? 'cannot start' : 'start-up failed, retrying');
      if (fatal) {
        await cni?.stop();
        await server.stop();
        await ds.close().catch(() => undefined);
        return 1;
      }
      await new Promise((r) => setTimeout(r, Math.min(5000, 500 * attempt)));
    }
  }
  // start-up's garbage collected now, then malloc's free pages back whenever the agent goes quiet
  settleAfterStart();
  trim = startMemoryTrim();
  // IPAM garbage collection of deleted Nodes (src/ipam/gc.ts): one agent at a time, through a lease.
  if (nodeMode && cfg.ipamGcGraceSec > 0)
    (ipamGc = new IpamGc({
      ds,
      ipam: new Ipam(ds),
      holder: cfg.nodeName,
      graceMs: cfg.ipamGcGraceSec * 1000,
      leaseMs: cfg.ipamGcLeaseSec * 1000,
      logger: log('ipam-gc'),
    })).start();
  // Re-detection every AUTODETECT_POLL_INTERVAL (a changed address updates the Node and re-peers).
  if (cfg.autodetectPollIntervalMs > 0 && (cfg.ip.kind === 'autodetect' || cfg.ip6.kind === 'autodetect')) {
    poller = startAddressPolling({
      intervalMs: cfg.autodetectPollIntervalMs,
      initial: agent.addresses(),
      resolve: () => agent.redetect(),
      onChange: (now) => agent.onAddressesChanged(now),
      onError: (err) => logger.warn({ err: msg(err) }, 'address re-detection failed; keeping the current address'),
    });
  }
  return done;
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Address problems and configuration mistakes do not heal by retrying. */
function isFatalStartError(e: unknown): boolean {
  const name = e instanceof Error ? e.name : '';
  return (
    ['NoAddressError', 'AddressConflictError', 'ConfigError', 'ValidationError', 'AutodetectConfigError'].includes(name) ||
    /neither an IPv4 nor an IPv6/.test(msg(e))
  );
}
