import t from 'tap';
import {
  validateResource,
  withDefaults,
  parseAsn,
  formatAsnDot,
  ValidationError,
  parseDuration,
} from '../../../src/datastore/resources.js';

const pool = (spec: Record<string, unknown>, name = 'p1') => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name },
  spec,
});
const problems = (doc: unknown): string[] => {
  try {
    validateResource(doc);
  } catch (e) {
    if (e instanceof ValidationError) return e.problems;
    throw e;
  }
  return [];
};

t.test('AS numbers: plain, 4-byte, asdot', async (t) => {
  t.equal(parseAsn(64512), 64512);
  t.equal(parseAsn('4200000000'), 4200000000);
  t.equal(parseAsn('64512.100'), 64512 * 65536 + 100);
  t.equal(parseAsn('1.0'), 65536);
  t.equal(formatAsnDot(64512 * 65536 + 100), '64512.100');
  for (const bad of [0, -1, 4294967296, 1.5, '65536.1', 'AS1', '', '1.2.3', null])
    t.throws(() => parseAsn(bad), { code: 'EINVALIDASN' }, String(bad));
});

t.test('durations', async (t) => {
  t.equal(parseDuration('120s'), 120000);
  t.equal(parseDuration('1m30s'), 90000);
  t.equal(parseDuration('500ms'), 500);
  t.equal(parseDuration('2x'), undefined);
  t.equal(parseDuration(''), undefined);
});

t.test('IPPool defaults (Calico v3)', async (t) => {
  const p = validateResource(pool({ cidr: '10.244.1.7/16' }));
  t.same(p, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'p1' },
    spec: {
      cidr: '10.244.0.0/16',
      blockSize: 26,
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: false,
      disabled: false,
      nodeSelector: 'all()',
      allowedUses: ['Workload', 'Tunnel'],
    },
  });
  const v6 = validateResource(pool({ cidr: 'fd00:0:0::/48', vxlanMode: 'always' }, 'v6'));
  t.equal((v6.spec as { blockSize: number }).blockSize, 122);
  t.equal((v6.spec as { cidr: string }).cidr, 'fd00::/48');
  t.equal((v6.spec as { vxlanMode: string }).vxlanMode, 'Always', 'mode case normalized');
  t.same(withDefaults(p as never), p, 'idempotent');
});

t.test('IPPool: precise messages, every problem at once', async (t) => {
  t.same(problems(pool({ cidr: '10.0.0.0/16', blockSize: 33 })), ['spec.blockSize 33 is out of range 20..32 for IPv4']);
  let msg = '';
  try {
    validateResource(pool({ cidr: '10.0.0.0/16', blockSize: 33 }));
  } catch (e) {
    msg = (e as Error).message;
  }
  t.equal(msg, 'IPPool "p1": spec.blockSize 33 is out of range 20..32 for IPv4');
  t.same(problems(pool({ cidr: 'fd00::/64', blockSize: 64 })), ['spec.blockSize 64 is out of range 116..128 for IPv6']);
  t.match(problems(pool({ cidr: '10.0.0.300/16' }))[0], /^spec.cidr "10.0.0.300\/16" is not a valid CIDR/);
  t.match(problems(pool({ cidr: '10.0.0.0' }))[0], /missing "\/prefix-length"/);
  t.match(problems(pool({ cidr: '10.0.0.0/28' }))[0], /smaller than one block: its prefix length 28 must be at most spec.blockSize 26/);
  t.match(problems(pool({ cidr: '169.254.0.0/16' }))[0], /link-local/);
  const many = problems(
    pool({ cidr: '10.0.0.0/16', ipipMode: 'Always', vxlanMode: 'Always', natOutgoing: 'yes', nodeSelector: 'role ==', cidrr: 1 }),
  );
  t.equal(many.length, 4, many.join(' | '));
  t.ok(many.includes('unknown field spec.cidrr'));
  t.ok(many.includes('spec.natOutgoing must be true or false, got "yes"'));
  t.ok(many.includes('spec.ipipMode Always and spec.vxlanMode Always cannot both be enabled'));
  t.ok(many.some((m) => m.startsWith('spec.nodeSelector "role ==" is not a valid selector')));
  t.same(problems(pool({ cidr: 'fd00::/48', ipipMode: 'Always' }, 'v6')), [
    'spec.ipipMode Always is not supported for an IPv6 pool (IPIP carries IPv4 only)',
  ]);
  t.same(problems({ apiVersion: 'v1', kind: 'IPPool', metadata: { name: 'Bad_Name' }, spec: { cidr: '10.0.0.0/16' } }), [
    'apiVersion "v1" must be "projectcalico.org/v3"',
    'metadata.name "Bad_Name" must be lowercase letters, digits, "-" and "." (at most 253 characters)',
  ]);
  t.match(problems({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: {}, spec: {} }), [
    'metadata.name is required',
    'spec.cidr is required',
  ]);
  t.throws(
    () => validateResource({ apiVersion: 'projectcalico.org/v3', kind: 'HostEndpoint', metadata: { name: 'x' } }),
    /unknown kind "HostEndpoint"/,
  );
});

t.test('BGPConfiguration defaults and rules', async (t) => {
  const d = validateResource({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { asNumber: '64512.7', serviceClusterIPs: [{ cidr: '10.96.0.0/12' }] },
  });
  t.same(d.spec, {
    logSeverityScreen: 'Info',
    nodeToNodeMeshEnabled: true,
    asNumber: 64512 * 65536 + 7,
    listenPort: 179,
    serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
  });
  const empty = validateResource({ apiVersion: 'projectcalico.org/v3', kind: 'BGPConfiguration', metadata: { name: 'default' } });
  t.same(empty.spec, { logSeverityScreen: 'Info', nodeToNodeMeshEnabled: true, asNumber: 64512, listenPort: 179 });
  t.same(
    problems({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'node.n1' },
      spec: { nodeToNodeMeshEnabled: false, listenPort: 70000 },
    }),
    ['spec.listenPort 70000 is out of range 1..65535', 'spec.nodeToNodeMeshEnabled can only be set on the "default" BGPConfiguration'],
  );
  t.same(problems({ apiVersion: 'projectcalico.org/v3', kind: 'BGPConfiguration', metadata: { name: 'other' }, spec: {} }), [
    'metadata.name must be "default" or "node.<nodename>" for a BGPConfiguration',
  ]);
});

t.test('BGPPeer rules', async (t) => {
  const peer = (spec: Record<string, unknown>) => ({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'rr' }, spec });
  t.same(validateResource(peer({ peerIP: '192.0.2.1:1179', asNumber: 65001, nodeSelector: "role == 'rr'" })).spec, {
    peerIP: '192.0.2.1:1179',
    asNumber: 65001,
    nodeSelector: "role == 'rr'",
  });
  t.same(validateResource(peer({ peerIP: 'FD00::0:1', asNumber: '1.1' })).spec, { peerIP: 'fd00::1', asNumber: 65537 });
  t.same(problems(peer({ peerIP: '192.0.2.1' })), ['spec.asNumber is required with spec.peerIP']);
  t.same(problems(peer({})), ['one of spec.peerIP or spec.peerSelector is required']);
  t.same(problems(peer({ peerSelector: 'all()', asNumber: 1, node: 'a', nodeSelector: 'all()' })), [
    'spec.node and spec.nodeSelector cannot both be set',
    "spec.asNumber must be empty with spec.peerSelector (the peers' own AS numbers are used)",
  ]);
  t.match(problems(peer({ peerIP: '192.0.2.999', asNumber: 'x' })), [
    /spec.peerIP "192.0.2.999" is not an IP address/,
    /spec.asNumber "x" is not a valid AS number/,
  ]); // reachableBy: the gateway of the route to peerIP — needs it, in its family
  t.same(
    (validateResource(peer({ peerIP: '192.0.2.1:1179', asNumber: 65001, reachableBy: '10.0.0.1' })).spec as { reachableBy?: string })
      .reachableBy,
    '10.0.0.1',
  );
  t.same(
    (validateResource(peer({ peerIP: '[fd00::1]:1179', asNumber: 65001, reachableBy: 'fd00::2' })).spec as { reachableBy?: string })
      .reachableBy,
    'fd00::2',
  );
  t.same(problems(peer({ peerSelector: 'all()', reachableBy: '10.0.0.1' })), [
    'spec.reachableBy needs spec.peerIP (it is the gateway of a route to that address)',
  ]);
  t.same(problems(peer({ localWorkloadSelector: "app == 'lb'", asNumber: 65001 })), [
    'one of spec.peerIP or spec.peerSelector is required',
    'spec.localWorkloadSelector (BGP sessions with local workloads) is not supported by tabby: no such session would be made',
  ]);
  t.same(
    (validateResource(peer({ peerSelector: 'all()', reversePeering: 'Manual' })).spec as { reversePeering?: string }).reversePeering,
    'Manual',
  );
  t.same(problems(peer({ peerIP: '192.0.2.1', asNumber: 65001, reachableBy: 'fd00::2' })), [
    'spec.reachableBy fd00::2 is not in the address family of spec.peerIP 192.0.2.1 (it is the gateway of the route to the peer)',
  ]);
});

t.test(
  'BGPConfiguration ignoredInterfaces: names and globs accepted (tabby reads no device routes, so they stay excluded), bad entries refused',
  async (t) => {
    const cfg = (spec: Record<string, unknown>) => ({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec,
    });
    t.same(problems(cfg({ ignoredInterfaces: ['eth1', 'ens*'] })), []);
    t.same((validateResource(cfg({ ignoredInterfaces: ['eth1', 'ens*'] })).spec as { ignoredInterfaces?: string[] }).ignoredInterfaces, [
      'eth1',
      'ens*',
    ]);
    t.same(problems(cfg({ ignoredInterfaces: ['eth 1', 7] })), [
      'spec.ignoredInterfaces[0] must be an interface name or glob (e.g. "eth1", "ens*")',
      'spec.ignoredInterfaces[1] must be an interface name or glob (e.g. "eth1", "ens*")',
    ]);
    t.same(problems(cfg({ ignoredInterfaces: [] })), []);
    t.same((validateResource(cfg({ bindMode: 'NodeIP', listenPort: 1790 })).spec as { bindMode?: string }).bindMode, 'NodeIP');
    t.match(problems(cfg({ bindMode: 'Host' })), [/spec.bindMode/]);
    t.same(problems(cfg({ localWorkloadPeeringIPV4: '169.254.0.179' })), [
      'spec.localWorkloadPeeringIPV4 is not supported by tabby: it makes no BGP sessions with local workloads (BGPPeer localWorkloadSelector)',
    ]);
  },
);

t.test('Node', async (t) => {
  const n = validateResource({
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: { name: 'n1', labels: { role: 'rr' } },
    spec: {
      bgp: { ipv4Address: '10.0.0.1/24', asNumber: 65000, routeReflectorClusterID: '224.0.0.1' },
      vxlanTunnelMACAddr: '66:D0:3B:1A:2C:4E',
    },
  });
  t.same(n.spec, {
    bgp: { ipv4Address: '10.0.0.1/24', asNumber: 65000, routeReflectorClusterID: '224.0.0.1' },
    vxlanTunnelMACAddr: '66:d0:3b:1a:2c:4e',
  });
  t.same(n.metadata.labels, { role: 'rr' });
  t.match(
    problems({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name: 'n1' },
      spec: { bgp: { ipv4Address: 'fd00::1/64', routeReflectorClusterID: 'x' } },
    }),
    [/spec.bgp.ipv4Address "fd00::1\/64" is not an IPv4 address/, /spec.bgp.routeReflectorClusterID "x" is not a valid IP address/],
  );
});
