// The CNI plugin's commands over a real datastore, for counting what an ADD or a DEL writes: runCommand
// with the datastore and IPAM as given, a wiring stand-in that records the links it was asked for (the
// kernel side has its own tests), pods in namespace "default" on node n1.
import { ResourceStore, resourceKey } from '../../src/datastore/resources.js';
import type { Datastore } from '../../src/datastore/types.js';
import { Ipam, StaticPoolSource, type PoolInfo } from '../../src/ipam/index.js';
import { parseCniEnv } from '../../src/cni/netconf.js';
import { runCommand, type PluginDeps, type Wiring } from '../../src/cni/plugin.js';
import { nullLogger } from '../../src/cni/logger.js';
import { endpointName } from '../../src/cni/endpoint.js';

const CONF = { cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tabby', nodename: 'n1', ipam: { type: 'tabby-ipam' } };

export const handleOf = (pod: string): string => `${CONF.name}.${pod}`;

/** The datastore key of a pod's WorkloadEndpoint. */
export const wepKeyOf = (pod: string): string =>
  resourceKey(
    'WorkloadEndpoint',
    `default/${endpointName({ node: 'n1', namespace: 'default', pod, containerId: pod, endpoint: 'eth0' }).name}`,
  );

/** The plugin's deps over `ipam` with a wiring stand-in that answers at once (the host links it was
 *  asked for are kept in `wired`). */
export function standInDeps(ipam: Ipam, wired = new Set<string>()): PluginDeps {
  const wiring: Wiring = {
    async wire(req) {
      wired.add(req.hostIfName);
      return { hostIfName: req.hostIfName, hostMac: 'ee:ee:ee:ee:ee:ee', containerMac: '02:00:00:00:00:01', containerIfIndex: 2 };
    },
    async unwire(req) {
      wired.delete(req.hostIfName);
    },
    async check() {
      return [];
    },
  };
  return {
    logger: nullLogger,
    nodename: () => 'n1',
    netnsExists: () => true,
    openIpam: async () => ({ ipam, close: async () => undefined }),
    wiring: async () => wiring,
  };
}

export function cniOverStore(ds: Datastore, pool: PoolInfo) {
  const ipam = new Ipam(ds, { pools: new StaticPoolSource([pool], new Map([['n1', {}]])) });
  const wired = new Set<string>();
  const deps = standInDeps(ipam, wired);
  /** ADD or DEL of pod `pod` (container id = pod name); throws with the plugin's error output. */
  const run = async (command: 'ADD' | 'DEL', pod: string) => {
    const env = parseCniEnv({
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod,
      CNI_NETNS: '/var/run/netns/x',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin',
      CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}`,
    });
    const out = await runCommand('tabby', env, Buffer.from(JSON.stringify(CONF)), deps);
    if (out.exitCode !== 0) throw new Error(`${command} ${pod}: ${out.stdout}`);
    return out.stdout ? (JSON.parse(out.stdout) as { ips: { address: string }[] }) : undefined;
  };
  const rs = new ResourceStore(ds);
  const wep = async (pod: string) => (await rs.list('WorkloadEndpoint')).items.find((w) => w.spec.pod === pod);
  return { ipam, run, wep, wired };
}
