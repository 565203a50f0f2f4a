// The shell's decisions with an injected interface list (no kernel): stored vs detected addresses,
// conflicts, kubernetes-internal-ip from a provided value and from an in-cluster API server (a local
// HTTPS server with a throw-away certificate standing in for the apiserver), and can-reach through
// the process's own namespace.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { detectAddress, resolveNodeAddresses, reachSource, type InterfaceReader } from '../../../src/autodetect/detect.js';
import { autodetectConfigFromEnv, AddressConflictError, NoAddressError } from '../../../src/autodetect/settings.js';
import { parseAutodetectionMethod } from '../../../src/autodetect/method.js';
import { internalIpsOfNode } from '../../../src/autodetect/k8s.js';

const ifs: InterfaceReader = async () => [
  { index: 1, name: 'lo', addresses: [{ address: '127.0.0.1', prefixLen: 8, family: 4 }] },
  { index: 2, name: 'eth0', addresses: [{ address: '10.0.0.5', prefixLen: 24, family: 4 }] },
  { index: 3, name: 'docker0', addresses: [{ address: '172.17.0.1', prefixLen: 16, family: 4 }] },
];

t.test('resolveNodeAddresses: stored, detected, conflicts, failures', async (t) => {
  const unset = autodetectConfigFromEnv({});
  const r1 = await resolveNodeAddresses(unset, { nodeName: 'n1', readInterfaces: ifs, stored: { ipv4: '10.0.0.5/16' } });
  t.same([r1.ipv4.source, r1.ipv4.choice?.address], ['stored', '10.0.0.5/16'], 'IP unset keeps the stored address');
  const r2 = await resolveNodeAddresses(unset, { nodeName: 'n1', readInterfaces: ifs });
  t.same(
    [r2.ipv4.source, r2.ipv4.choice?.address, r2.ipv4.choice?.interface],
    ['detected', '10.0.0.5/24', 'eth0'],
    'first-found skips docker0',
  );
  await t.rejects(
    resolveNodeAddresses(unset, {
      nodeName: 'n1',
      readInterfaces: ifs,
      otherNodes: [{ metadata: { name: 'n2' }, spec: { bgp: { ipv4Address: '10.0.0.5/24' } } }],
    }),
    { name: 'AddressConflictError', message: /already used by node n2/ },
  );
  const bad = autodetectConfigFromEnv({ IP: 'autodetect', IP_AUTODETECTION_METHOD: 'interface=^ens' });
  const err = await resolveNodeAddresses(bad, { nodeName: 'n1', readInterfaces: ifs }).catch((e: unknown) => e);
  t.ok(err instanceof NoAddressError, 'nothing matches, nothing stored: refuse');
  t.match(
    (err as Error).message,
    /interface=\^ens: no global-unicast IPv4 address on an interface whose name matches; interfaces seen \(reverse index order\): docker0\[172.17.0.1\/16\], eth0\[10.0.0.5\/24\], lo\[127.0.0.1\/8\]/,
  );
  const kept = await resolveNodeAddresses(bad, { nodeName: 'n1', readInterfaces: ifs, stored: { ipv4: '10.0.0.5/24' } });
  t.same([kept.ipv4.source, kept.ipv4.warnings.length], ['stored', 1], 'nothing matches but stored: keep it with a warning');
  t.ok(AddressConflictError);
});

t.test('kubernetes-internal-ip from a provided value', async (t) => {
  const cfg = autodetectConfigFromEnv({ IP_AUTODETECTION_METHOD: 'kubernetes-internal-ip', TABBY_NODE_INTERNAL_IP: '172.17.0.1' });
  const r = await resolveNodeAddresses(cfg, { nodeName: 'n1', readInterfaces: ifs, env: {} });
  t.same([r.ipv4.choice?.address, r.ipv4.choice?.interface], ['172.17.0.1/16', 'docker0']);
  t.same(
    internalIpsOfNode({
      status: {
        addresses: [
          { type: 'Hostname', address: 'n1' },
          { type: 'InternalIP', address: '10.0.0.5' },
          { type: 'ExternalIP', address: '1.2.3.4' },
        ],
      },
    }),
    ['10.0.0.5'],
  );
  t.same(internalIpsOfNode(undefined), []);
});

let openssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  openssl = false;
}

t.test(
  'kubernetes-internal-ip from the in-cluster API',
  { skip: openssl ? false : 'needs openssl (to make a test certificate)' },
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tbu-k8s-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=kubernetes',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'ca.crt'),
      ],
      { stdio: 'ignore' },
    );
    fs.writeFileSync(path.join(dir, 'token'), 'tok-123\n');
    const seen: string[] = [];
    const server = https.createServer(
      { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'ca.crt')) },
      (req, res) => {
        seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
        if (req.url === '/api/v1/nodes/n1') {
          res.end(
            JSON.stringify({
              kind: 'Node',
              status: {
                addresses: [
                  { type: 'InternalIP', address: '10.0.0.5' },
                  { type: 'Hostname', address: 'n1' },
                ],
              },
            }),
          );
        } else {
          res.statusCode = 404;
          res.end('{"kind":"Status","code":404}');
        }
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.teardown(() => server.close());
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String((server.address() as AddressInfo).port) };
    const m = parseAutodetectionMethod('kubernetes-internal-ip', 4);
    const r = await detectAddress(m, 4, { nodeName: 'n1', env, serviceAccountDir: dir, readInterfaces: ifs });
    t.same(r.ok && [r.choice.address, r.choice.interface], ['10.0.0.5/24', 'eth0'], 'InternalIP from the API, prefix from eth0');
    t.same(seen, ['GET /api/v1/nodes/n1 Bearer tok-123']);
    const missing = await detectAddress(m, 4, {
      nodeName: 'n9',
      env,
      serviceAccountDir: dir,
      readInterfaces: ifs,
      internalIps: ['172.17.0.1'],
    });
    t.same(missing.ok && missing.choice.address, '172.17.0.1/16', 'API answers 404: fall back to the provided value');
    const none = await detectAddress(m, 4, { nodeName: 'n9', env, serviceAccountDir: dir, readInterfaces: ifs });
    t.match(!none.ok && none.reason, /has no IPv4 InternalIP/);
  },
);

t.test("can-reach in the process's own namespace (no netns path): UDP connect", async (t) => {
  t.equal(await reachSource('127.0.0.1', 4), '127.0.0.1');
  t.equal(await reachSource('localhost', 4), '127.0.0.1', 'a hostname is resolved first');
  t.equal(await reachSource('no-such-host.invalid', 4), undefined, 'unresolvable: no source, a reason later');
});
