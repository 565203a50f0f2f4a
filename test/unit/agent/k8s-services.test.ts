// Service advertisement (Calico's route generator): the pure decision per Service, and the list + watch
// shell against a fixture HTTP server speaking the API server's Service and EndpointSlice JSON (no
// Kubernetes API server runs on these machines).
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { K8sApi } from '../../../src/common/k8s-api.js';
import { K8sServiceWatch } from '../../../src/agent/k8s-service-watch.js';
import {
  ServiceState,
  advertiseService,
  serviceAdvertisements,
  serviceHostRoutes,
  type EndpointSlice,
  type K8sService,
} from '../../../src/agent/k8s-services.js';

const cfg = {
  serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
  serviceExternalIPs: [{ cidr: '192.0.2.0/24' }, { cidr: '192.0.2.200/32' }],
  serviceLoadBalancerIPs: [{ cidr: '198.51.100.0/24' }, { cidr: '198.51.100.250/32' }],
};
const svc = (
  name: string,
  spec: K8sService['spec'],
  lb: string[] = [],
  rv = '1',
): K8sService & { metadata: { resourceVersion: string } } => ({
  metadata: { name, namespace: 'web', resourceVersion: rv },
  spec: { ipFamilies: ['IPv4'], ...spec },
  status: { loadBalancer: { ingress: lb.map((ip) => ({ ip })) } },
});
const slice = (
  service: string,
  nodes: (string | [string, boolean])[],
  rv = '1',
  name = `${service}-abc`,
): EndpointSlice & { metadata: { resourceVersion: string } } => ({
  metadata: { name, namespace: 'web', labels: { 'kubernetes.io/service-name': service }, resourceVersion: rv },
  addressType: 'IPv4',
  endpoints: nodes.map((n, i) => {
    const [node, ready] = typeof n === 'string' ? [n, true] : n;
    return { addresses: [`10.244.0.${i + 1}`], nodeName: node, conditions: { ready } };
  }),
});

t.test('Local services: /32s of cluster, external and LB IPs only from nodes with a ready local endpoint', async (t) => {
  const s = svc(
    'shop',
    { type: 'LoadBalancer', clusterIP: '10.96.0.10', externalIPs: ['192.0.2.7', '203.0.113.1'], externalTrafficPolicy: 'Local' },
    ['198.51.100.7'],
  );
  const eps = [slice('shop', ['n1', ['n2', false]])];
  t.ok(advertiseService(s, eps, cfg, 'n1'), 'n1 has a ready endpoint');
  t.notOk(advertiseService(s, eps, cfg, 'n2'), 'n2 has only a not-ready endpoint');
  t.notOk(advertiseService(s, eps, cfg, 'n3'), 'n3 has none');
  t.same(
    serviceHostRoutes(s, cfg),
    ['10.96.0.10/32', '192.0.2.7/32', '198.51.100.7/32'],
    'an external IP outside serviceExternalIPs is not advertised',
  );
  t.same(
    serviceHostRoutes(s, { ...cfg, serviceClusterIPs: [] }),
    ['192.0.2.7/32', '198.51.100.7/32'],
    'cluster IPs only with serviceClusterIPs',
  );
  const v6 = svc('v6', {
    type: 'ClusterIP',
    clusterIP: 'fd00:96::a',
    clusterIPs: ['fd00:96::a'],
    ipFamilies: ['IPv6'],
    externalTrafficPolicy: 'Local',
  });
  t.same(serviceHostRoutes(v6, cfg), ['fd00:96::a/128']);
  t.notOk(advertiseService(v6, eps, cfg, 'n1'), 'an IPv4 slice does not count for an IPv6 service');
  t.notOk(advertiseService({ ...s, spec: { ...s.spec!, clusterIP: 'None' } }, eps, cfg, 'n1'), 'headless: nothing');
  t.notOk(advertiseService({ ...s, spec: { ...s.spec!, type: 'ExternalName' } }, eps, cfg, 'n1'), 'ExternalName: nothing');
});

t.test('serviceLoadBalancerAggregation: Enabled advertises the LB range, Disabled only /32s of LB services with endpoints', async (t) => {
  const lb = svc('lb', { type: 'LoadBalancer', clusterIP: '10.96.0.20', externalTrafficPolicy: 'Cluster' }, ['198.51.100.20']);
  const st = new ServiceState();
  st.onService({ type: 'ADDED', object: lb as never });
  st.onSlice({ type: 'ADDED', object: slice('lb', ['n2']) as never });
  t.same(
    serviceAdvertisements(cfg, st, 'n1'),
    ['10.96.0.0/12', '192.0.2.0/24', '192.0.2.200/32', '198.51.100.0/24', '198.51.100.250/32'],
    'Enabled (default): ranges only',
  );
  const off = { ...cfg, serviceLoadBalancerAggregation: 'Disabled' as const };
  t.same(
    serviceAdvertisements(off, st, 'n1'),
    ['10.96.0.0/12', '10.96.0.20/32', '192.0.2.0/24', '192.0.2.200/32', '198.51.100.20/32'],
    'Disabled: no LB range; the Cluster service with an endpoint anywhere is advertised by every node',
  );
  st.onSlice({ type: 'DELETED', object: slice('lb', ['n2']) as never });
  t.notOk(serviceAdvertisements(off, st, 'n1').includes('198.51.100.20/32'), 'no endpoint left: withdrawn');
  // A /32 entry of serviceLoadBalancerIPs: advertised by every node whatever the aggregation (Calico).
  const single = svc('single', { type: 'LoadBalancer', clusterIP: '10.96.0.30', externalTrafficPolicy: 'Cluster' }, ['198.51.100.250']);
  t.ok(advertiseService(single, [], cfg, 'n1'));
  const ext = svc('ext', { type: 'ClusterIP', clusterIP: '10.96.0.31', externalIPs: ['192.0.2.200'], externalTrafficPolicy: 'Cluster' });
  t.ok(advertiseService(ext, [], cfg, 'n1'), 'a /32 external IP entry too');
  t.same(serviceAdvertisements(undefined, st, 'n1'), [], 'no BGPConfiguration: nothing');
});

t.test('list + watch from a fixture API server: a local endpoint arriving and leaving', async (t) => {
  const watchers = new Map<string, http.ServerResponse>();
  const lists = {
    services: [svc('shop', { type: 'ClusterIP', clusterIP: '10.96.0.10', externalTrafficPolicy: 'Local' })],
    slices: [] as EndpointSlice[],
  };
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    requests.push(`${u.pathname}${u.searchParams.get('watch') ? ' watch' : ''} ${req.headers.authorization ?? ''}`);
    const kind = u.pathname === '/api/v1/services' ? 'services' : u.pathname === '/apis/discovery.k8s.io/v1/endpointslices' ? 'slices' : '';
    if (!kind) {
      res.writeHead(404).end('{"kind":"Status","code":404}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    if (u.searchParams.get('watch') === '1') {
      watchers.set(kind, res);
      return;
    }
    res.end(
      JSON.stringify({
        kind: kind === 'services' ? 'ServiceList' : 'EndpointSliceList',
        apiVersion: kind === 'services' ? 'v1' : 'discovery.k8s.io/v1',
        metadata: { resourceVersion: '10' },
        items: lists[kind],
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const w = new K8sServiceWatch(await K8sApi.inCluster({ K8S_API_ENDPOINT: `http://127.0.0.1:${port}`, K8S_API_TOKEN: 'tok' }), {
    warn() {},
  });
  let changes = 0;
  w.onChange(() => changes++);
  w.start();
  t.teardown(() => {
    w.stop();
    for (const r of watchers.values()) r.end();
    server.close();
  });
  const until = async (what: string, fn: () => boolean) => {
    for (const end = Date.now() + 10_000; !fn(); ) {
      if (Date.now() > end) return t.fail(`timed out: ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const routes = () => serviceAdvertisements(cfg, w.state, 'n1');
  await until('both watches open', () => watchers.size === 2);
  t.ok(
    requests.every((r) => r.endsWith('Bearer tok')),
    'the token is sent',
  );
  t.notOk(routes().includes('10.96.0.10/32'), 'no endpoint yet');
  watchers.get('slices')!.write(`${JSON.stringify({ type: 'ADDED', object: slice('shop', ['n1'], '11') })}\n`);
  await until('local endpoint → /32', () => routes().includes('10.96.0.10/32'));
  t.ok(changes > 0, 'the change is signalled');
  watchers.get('slices')!.write(`${JSON.stringify({ type: 'MODIFIED', object: slice('shop', ['n2'], '12') })}\n`);
  await until('endpoint moved to n2 → withdrawn', () => !routes().includes('10.96.0.10/32'));
  t.ok(serviceAdvertisements(cfg, w.state, 'n2').includes('10.96.0.10/32'), 'n2 advertises it now');
  // The watch ends (API server restart): listed again, and a Service deleted meanwhile is gone.
  lists.services = [];
  lists.slices = [slice('shop', ['n2'], '13')];
  watchers.get('services')!.end();
  watchers.delete('services');
  await until('relisted', () => w.state.services.size === 0);
  t.notOk(serviceAdvertisements(cfg, w.state, 'n2').includes('10.96.0.10/32'), 'deleted Service: withdrawn');
});
