// The list + watch shell of Service advertisement (k8s-services.ts is the pure core): Services and
// EndpointSlices of every namespace, through the shared client in src/common/k8s-api.ts, into a
// ServiceState. Its own module so an agent without a Kubernetes API never loads the client.
import { K8sApi, k8sConfigured, listWatch } from '../common/k8s-api.js';
import type { Logger } from '../common/log.js';
import { ServiceState, type ServicesPort } from './k8s-services.js';

/** Lists and watches Services and EndpointSlices (every namespace) into a ServiceState. */
export class K8sServiceWatch implements ServicesPort {
  readonly state = new ServiceState();
  private readonly abort = new AbortController();
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly api: K8sApi,
    private readonly logger: Pick<Logger, 'warn'>,
  ) {}

  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  start(): void {
    const changed = () => {
      for (const f of this.listeners) f();
    };
    const s = this.state;
    void listWatch(
      this.api,
      '/api/v1/services',
      (ev) => {
        s.onService(ev);
        changed();
      },
      this.abort.signal,
      this.logger,
      () => s.clearServices(),
    );
    void listWatch(
      this.api,
      '/apis/discovery.k8s.io/v1/endpointslices',
      (ev) => {
        s.onSlice(ev);
        changed();
      },
      this.abort.signal,
      this.logger,
      () => s.clearSlices(),
    );
  }

  stop(): void {
    this.abort.abort();
  }
}

/** tabby-node's one call: with a Kubernetes API (service account or K8S_API_ENDPOINT), start watching
 *  Services and EndpointSlices; else undefined (only the configured ranges are advertised). */
export async function startK8sServiceWatch(
  logger: Pick<Logger, 'warn'>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<K8sServiceWatch | undefined> {
  if (!k8sConfigured(env)) return undefined;
  const w = new K8sServiceWatch(await K8sApi.inCluster(env), logger);
  w.start();
  return w;
}
