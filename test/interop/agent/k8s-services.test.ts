// Service advertisement through the Kubernetes API, seen by BIRD 2: a 2-node tabby lab (real tabby-node
// processes) pointed (K8S_API_ENDPOINT) at a fixture API server in the router namespace — the API side
// is a fixture speaking the real Service/EndpointSlice list and watch JSON, as no API server runs here.
// BIRD 2 is the ToR of both nodes, the node-to-node mesh off (with the mesh on, a node also passes an
// iBGP-learned /32 on to its eBGP peers, as BIRD does in Calico, so the ToR would see it from both).
// A Service with externalTrafficPolicy Local: its cluster IP and LB ingress /32s are learned only from
// the node with the endpoint, move with it, and are withdrawn when it leaves, while 10.96.0.0/12 stays
// from both. serviceLoadBalancerAggregation Disabled: the LB range is withdrawn and a Cluster
// LoadBalancer Service with an endpoint is advertised as a /32 by every node.
import t from 'tap';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, until, nodeIp } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';
import { startK8sFixture } from '../../helpers/k8s-fixture.js';

const skip = labSkipReason() ?? (haveBird() ? false : 'bird2 not installed (bird, birdc)');
const BIRD_IP = '172.31.1.1';
const API_PORT = 6443;
const SERVICES = '10.96.0.0/12';
const LB_RANGE = '198.51.100.0/24';

const service = (name: string, clusterIP: string, policy: 'Local' | 'Cluster', lbIp: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop', uid: `uid-${name}` },
  spec: {
    type: 'LoadBalancer',
    clusterIP,
    clusterIPs: [clusterIP],
    ipFamilies: ['IPv4'],
    externalTrafficPolicy: policy,
    ports: [{ port: 80 }],
  },
  status: { loadBalancer: { ingress: [{ ip: lbIp }] } },
});
const slice = (svc: string, node: string) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: `${svc}-x1`, namespace: 'shop', labels: { 'kubernetes.io/service-name': svc } },
  addressType: 'IPv4',
  endpoints: [{ addresses: ['10.244.9.9'], nodeName: node, conditions: { ready: true, serving: true, terminating: false } }],
  ports: [{ port: 80, protocol: 'TCP' }],
});

t.test('per-Service /32s from the Kubernetes API (fixture server) as BIRD 2 sees them', { skip }, async (t) => {
  const lab = await agentLab(t, 'k', {
    nodes: 2,
    mode: 'routed',
    mesh: false,
    agentEnv: { K8S_API_ENDPOINT: `http://${BIRD_IP}:${API_PORT}` },
  });
  const nodes = ['node-1', 'node-2'];
  const [ip1, ip2] = nodes.map((n) => nodeIp(lab, n));
  const router = lab.state.routerNetns!;
  const api = await startK8sFixture(BIRD_IP, API_PORT, router);
  t.teardown(() => api.stop());
  const bird = await startBird(t, {
    netns: router,
    config: `router id ${BIRD_IP};
protocol device {}
${nodes
  .map(
    (n, i) => `protocol bgp tabby${i + 1} {
  local ${BIRD_IP} as 65000;
  neighbor ${nodeIp(lab, n)} as 64512;
  direct;
  ipv4 { import all; export none; };
}`,
  )
  .join('\n')}
`,
  });
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const store = new ResourceStore(ds);
  const bgpConfig = (aggregation: 'Enabled' | 'Disabled') =>
    store.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: {
        nodeToNodeMeshEnabled: false, // as the lab wrote it (mesh: false)
        serviceClusterIPs: [{ cidr: SERVICES }],
        serviceLoadBalancerIPs: [{ cidr: LB_RANGE }],
        serviceLoadBalancerAggregation: aggregation,
      },
    } as never);
  await bgpConfig('Enabled');
  await store.apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerIP: BIRD_IP, asNumber: 65000 },
  } as never);
  for (const i of [1, 2]) t.ok(await bird.waitEstablished(`tabby${i}`, 30_000), `BIRD: tabby${i} Established`);
  const vias = async (prefix: string) => (await bird.routes(prefix)).map((r) => r.via).sort();
  const viasBecome = async (prefix: string, want: string[], ms = 20_000) => {
    const key = JSON.stringify([...want].sort());
    const ok = (await until(async () => JSON.stringify(await vias(prefix)) === key, ms, 50)) ?? false;
    if (!ok)
      t.comment(
        `${prefix}: BIRD has ${JSON.stringify(await vias(prefix))}, wanted ${key}\n${await bird.birdc(`show route ${prefix} all`)}`,
      );
    return ok;
  };
  t.ok(await viasBecome(SERVICES, [ip1!, ip2!]), `${SERVICES} from both nodes`);
  t.ok(await viasBecome(LB_RANGE, [ip1!, ip2!]), `${LB_RANGE} from both nodes (aggregation Enabled)`);

  api.send('services', 'ADDED', service('web', '10.96.0.10', 'Local', '198.51.100.7'));
  api.send('endpointslices', 'ADDED', slice('web', 'node-1'));
  const t0 = Date.now();
  t.ok(await viasBecome('10.96.0.10/32', [ip1!]), 'cluster IP /32 learned from node-1 only (its endpoint is there)');
  const ms = Date.now() - t0;
  t.ok(await viasBecome('198.51.100.7/32', [ip1!]), 'LB ingress /32 from node-1 only');
  t.comment(`endpoint event at the API → /32 in BIRD: ${ms} ms`);

  api.send('endpointslices', 'MODIFIED', slice('web', 'node-2'));
  t.ok(await viasBecome('10.96.0.10/32', [ip2!]), 'the endpoint moved to node-2: the /32 follows it');
  api.send('endpointslices', 'DELETED', slice('web', 'node-2'));
  t.ok(await viasBecome('10.96.0.10/32', []), 'no endpoint left: withdrawn');
  t.ok(await viasBecome('198.51.100.7/32', []), 'LB /32 withdrawn too');
  t.same(await vias(SERVICES), [ip1!, ip2!].sort(), `${SERVICES} still from both nodes`);

  await bgpConfig('Disabled');
  t.ok(await viasBecome(LB_RANGE, []), `aggregation Disabled: ${LB_RANGE} withdrawn`);
  api.send('services', 'ADDED', service('pub', '10.96.0.20', 'Cluster', '198.51.100.20'));
  api.send('endpointslices', 'ADDED', slice('pub', 'node-2'));
  t.ok(await viasBecome('198.51.100.20/32', [ip1!, ip2!]), 'a Cluster LB service with an endpoint: its /32 from every node');
});
