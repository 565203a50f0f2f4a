// The Kubernetes adapter against a fixture HTTP server speaking the API server's list and watch JSON
// (no Kubernetes API server runs on these machines): namespaces become kns.<ns> profiles with pcns.*
// labels, pods of this node give their labels and named ports to their WorkloadEndpoints, and watch
// events keep both current.
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { K8sApi, K8sLabelSync, endpointFromPod, namespaceProfile, type K8sObject } from '../../../src/policy/k8s-sync.js';
import { writeWorkloadEndpoint } from '../../../src/cni/endpoint.js';
import { log } from '../../../src/common/log.js';

const ns = (name: string, labels: Record<string, string>, rv: string): K8sObject => ({ metadata: { name, labels, resourceVersion: rv } });
const pod = (name: string, namespace: string, labels: Record<string, string>, rv: string, node = 'n1'): K8sObject => ({
  metadata: { name, namespace, labels, resourceVersion: rv },
  spec: {
    nodeName: node,
    serviceAccountName: 'sa1',
    containers: [
      { ports: [{ name: 'http', containerPort: 8080 }, { containerPort: 9 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] },
    ],
  },
});

t.test('pure mapping', async (t) => {
  t.same(namespaceProfile(ns('prod', { team: 'a' }, '1')).spec.labelsToApply, { 'pcns.projectcalico.org/name': 'prod', 'pcns.team': 'a' });
  t.same(endpointFromPod(pod('web', 'prod', { app: 'web' }, '1')), {
    labels: {
      app: 'web',
      'projectcalico.org/namespace': 'prod',
      'projectcalico.org/orchestrator': 'k8s',
      'projectcalico.org/serviceaccount': 'sa1',
    },
    ports: [
      { name: 'http', protocol: 'TCP', port: 8080 },
      { name: 'dns', protocol: 'UDP', port: 53 },
    ],
  });
});

t.test('list + watch from a fixture API server keep profiles and endpoint labels current', async (t) => {
  const watchers = new Map<string, http.ServerResponse>();
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.url} ${req.headers.authorization ?? ''}`);
    const u = new URL(req.url!, 'http://x');
    const kind = u.pathname === '/api/v1/namespaces' ? 'ns' : u.pathname === '/api/v1/pods' ? 'pods' : '';
    if (!kind) {
      res.writeHead(404).end('{"kind":"Status","code":404}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    if (u.searchParams.get('watch') === '1') {
      watchers.set(kind, res);
      return;
    }
    if (kind === 'ns')
      res.end(
        JSON.stringify({
          kind: 'NamespaceList',
          apiVersion: 'v1',
          metadata: { resourceVersion: '10' },
          items: [ns('prod', { team: 'a' }, '5')],
        }),
      );
    else {
      t.equal(u.searchParams.get('fieldSelector'), 'spec.nodeName=n1', "only this node's pods");
      res.end(
        JSON.stringify({
          kind: 'PodList',
          apiVersion: 'v1',
          metadata: { resourceVersion: '11' },
          items: [pod('web', 'prod', { app: 'web' }, '7')],
        }),
      );
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const store = new ResourceStore(new MemoryDatastore());
  await writeWorkloadEndpoint(store.ds, { node: 'n1', namespace: 'prod', pod: 'web', containerId: 'c1', endpoint: 'eth0' }, 'caliweb', [
    '10.0.0.1',
  ]);
  const sync = new K8sLabelSync({
    api: new K8sApi({ baseUrl: `http://127.0.0.1:${port}`, token: 'tok' }),
    store,
    node: 'n1',
    logger: log('test'),
  });
  t.teardown(() => {
    sync.stop();
    for (const w of watchers.values()) w.destroy();
    server.close();
  });
  sync.start();
  const until = async (what: string, f: () => Promise<boolean>) => {
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      if (await f()) return t.pass(what);
      await new Promise((r) => setTimeout(r, 20));
    }
    t.fail(what);
  };
  const wep = () => store.get('WorkloadEndpoint', 'prod/n1-k8s-web-eth0');
  await until('endpoint labels from the pod list', async () => (await wep())?.metadata.labels?.app === 'web');
  t.same((await wep())!.spec.ports, [
    { name: 'http', protocol: 'TCP', port: 8080 },
    { name: 'dns', protocol: 'UDP', port: 53 },
  ]);
  t.equal((await store.get('Profile', 'kns.prod'))!.spec.labelsToApply!['pcns.team'], 'a');
  t.ok(
    requests.every((r) => r.endsWith('Bearer tok')),
    'the service-account token is sent',
  );
  await until('watches open', async () => watchers.size === 2);
  t.match(
    requests.find((r) => r.includes('/api/v1/pods') && r.includes('watch=1')),
    /resourceVersion=11/,
    'watch resumes from the list',
  );
  watchers.get('pods')!.write(`${JSON.stringify({ type: 'MODIFIED', object: pod('web', 'prod', { app: 'web', tier: 'front' }, '12') })}\n`);
  await until('a label added on the pod reaches its endpoint', async () => (await wep())?.metadata.labels?.tier === 'front');
  watchers.get('ns')!.write(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { name: '', resourceVersion: '13' } } })}\n`);
  watchers.get('ns')!.write(`${JSON.stringify({ type: 'MODIFIED', object: ns('prod', { team: 'b' }, '14') })}\n`);
  await until(
    'a namespace label change reaches its profile',
    async () => (await store.get('Profile', 'kns.prod'))?.spec.labelsToApply?.['pcns.team'] === 'b',
  );
  watchers.get('ns')!.write(`${JSON.stringify({ type: 'ADDED', object: ns('dev', {}, '15') })}\n`);
  await until('a new namespace gets its profile', async () => Boolean(await store.get('Profile', 'kns.dev')));
  watchers.get('ns')!.write(`${JSON.stringify({ type: 'DELETED', object: ns('dev', {}, '16') })}\n`);
  await until('a deleted namespace loses it', async () => !(await store.get('Profile', 'kns.dev')));
});

t.test('an API error is a typed error with the status', async (t) => {
  const server = http.createServer((_req, res) => {
    res.writeHead(403).end('{"kind":"Status","message":"forbidden"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const api = new K8sApi({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  await t.rejects(api.list('/api/v1/pods'), { code: 'EK8SAPI', status: 403 });
});
