// BGPFilter resource: Calico's sample YAML validates unchanged and normalises; every rule Calico's CRD
// enforces is a precise problem; BGPPeer.filters and BGPConfiguration communities are checked too.
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { validateResource, ValidationError, resolveKind, PLURALS } from '../../../src/datastore/resources.js';

const filter = (spec: Record<string, unknown>, name = 'f1') => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'BGPFilter',
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

const CALICO_SAMPLE = `
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata:
  name: my-filter
spec:
  exportV4:
    - action: Accept
      matchOperator: In
      cidr: 77.0.0.0/16
      source: RemotePeers
    - action: Reject
      interface: '*.calico'
  importV4:
    - action: Accept
      matchOperator: In
      cidr: 55.0.0.0/16
      prefixLength:
        min: 30
    - action: Reject
      matchOperator: NotIn
      cidr: 44.0.0.0/16
  exportV6:
    - action: Reject
      source: RemotePeers
    - action: Reject
      interface: '*.calico'
  importV6:
    - action: Accept
      matchOperator: Equal
      cidr: 5000::0/64
    - action: Reject
`;

t.test("Calico's sample BGPFilter validates unchanged", async (t) => {
  const doc = parseYaml(CALICO_SAMPLE);
  const r = validateResource(doc);
  t.equal(r.kind, 'BGPFilter');
  t.same(
    (r.spec as Record<string, unknown>).importV6,
    [{ action: 'Accept', cidr: '5000::/64', matchOperator: 'Equal' }, { action: 'Reject' }],
    'cidr canonical',
  );
  t.same((r.spec as Record<string, unknown>).importV4, [
    { action: 'Accept', cidr: '55.0.0.0/16', matchOperator: 'In', prefixLength: { min: 30 } },
    { action: 'Reject', cidr: '44.0.0.0/16', matchOperator: 'NotIn' },
  ]);
  t.same(validateResource(r), r, 'idempotent');
  t.equal(resolveKind('bgpfilters'), 'BGPFilter');
  t.equal(resolveKind('BGPFilter'), 'BGPFilter');
  t.equal(PLURALS.BGPFilter, 'bgpfilters');
});

t.test('3.32 fields: peerType, communities, asPathPrefix, priority, operations', async (t) => {
  const r = validateResource(
    filter({
      exportV4: [
        {
          action: 'Accept',
          matchOperator: 'In',
          cidr: '10.0.0.0/8',
          peerType: 'eBGP',
          communities: { values: ['65000:100'] },
          asPathPrefix: [65001, '64512.1'],
          priority: 512,
          operations: [
            { addCommunity: { value: '65000:10:20' } },
            { prependASPath: { prefix: [65000, 65000] } },
            { setPriority: { value: 100 } },
          ],
        },
      ],
    }),
  );
  const rule = (r.spec as { exportV4: Record<string, unknown>[] }).exportV4[0]!;
  t.same(rule.asPathPrefix, [65001, 64512 * 65536 + 1], 'asdot AS numbers become numbers');
  t.same(rule.operations, [
    { addCommunity: { value: '65000:10:20' } },
    { prependASPath: { prefix: [65000, 65000] } },
    { setPriority: { value: 100 } },
  ]);
});

t.test('each problem named, all at once', async (t) => {
  const rows: [Record<string, unknown>, RegExp][] = [
    [{ importV4: [{ matchOperator: 'In', cidr: '10.0.0.0/8' }] }, /spec\.importV4\[0\]\.action is required/],
    [{ importV4: [{ action: 'Drop' }] }, /spec\.importV4\[0\]\.action "Drop" is not one of Accept, Reject/],
    [{ importV4: [{ action: 'Reject', cidr: '10.0.0.0/8' }] }, /cidr and spec\.importV4\[0\]\.matchOperator must both be set/],
    [{ importV4: [{ action: 'Reject', matchOperator: 'In' }] }, /must both be set or both be empty/],
    [{ importV4: [{ action: 'Reject', prefixLength: { min: 24 } }] }, /cidr is required when spec\.importV4\[0\]\.prefixLength is set/],
    [{ importV4: [{ action: 'Reject', cidr: 'fd00::/8', matchOperator: 'In' }] }, /is not an IPv4 CIDR/],
    [{ importV6: [{ action: 'Reject', cidr: '10.0.0.0/8', matchOperator: 'In' }] }, /is not an IPv6 CIDR/],
    [
      { importV4: [{ action: 'Reject', cidr: '10.0.0.0/8', matchOperator: 'In', prefixLength: { min: 33 } }] },
      /prefixLength\.min 33 is out of range 0\.\.32/,
    ],
    [
      { importV4: [{ action: 'Reject', cidr: '10.0.0.0/8', matchOperator: 'In', prefixLength: { min: 28, max: 24 } }] },
      /min 28 is greater than max 24/,
    ],
    [{ importV4: [{ action: 'Reject', source: 'Local' }] }, /source "Local" is not one of RemotePeers/],
    [{ importV4: [{ action: 'Reject', peerType: 'confed' }] }, /peerType "confed" is not one of eBGP, iBGP/],
    [{ importV4: [{ action: 'Reject', communities: { values: ['65000:100', '65000:101'] } }] }, /exactly one community/],
    [{ importV4: [{ action: 'Reject', communities: { values: ['70000:1'] } }] }, /"70000:1" is not a community/],
    [{ importV4: [{ action: 'Reject', asPathPrefix: ['AS1'] }] }, /asPathPrefix\[0\] "AS1" is not a valid AS number/],
    [{ importV4: [{ action: 'Reject', priority: 0 }] }, /priority 0 is out of range 1\.\.2147483646/],
    [{ importV4: [{ action: 'Reject', operations: [{ setPriority: { value: 5 } }] }] }, /operations may only be used with action Accept/],
    [
      { importV4: [{ action: 'Accept', operations: [{ setPriority: { value: 5 }, addCommunity: { value: '1:1' } }] }] },
      /exactly one of addCommunity, prependASPath, setPriority \(has 2\)/,
    ],
    [{ importV4: [{ action: 'Accept', operations: [{ prependASPath: { prefix: [] } }] }] }, /prefix must list 1\.\.10 AS numbers/],
    [{ importV4: [{ action: 'Accept', operations: [] }] }, /operations must hold 1\.\.10 entries/],
    [{ importV4: [{ action: 'Reject', interface: 'eth0; rm' }] }, /interface "eth0; rm" is not an interface name/],
    [{ importV4: [{ action: 'Reject', bogus: 1 }] }, /unknown field spec\.importV4\[0\]\.bogus/],
    [{ importv4: [] }, /unknown field spec\.importv4/],
  ];
  for (const [spec, re] of rows) t.match(problems(filter(spec)).join('; '), re, JSON.stringify(spec));
  // export Accept with interface: the node's interface routes that match it are advertised
  t.same(
    problems(filter({ exportV4: [{ action: 'Accept', interface: 'eth*' }], exportV6: [{ action: 'Accept', interface: 'br-?' }] })),
    [],
  );
  const many = problems(
    filter({
      importV4: [{ action: 'Drop' }, { action: 'Reject', priority: 0 }],
      exportV6: [{ action: 'Reject', cidr: '1.2.3.0/24', matchOperator: 'In' }],
    }),
  );
  t.equal(many.length, 3, 'every problem in one pass');
});

t.test('BGPPeer.filters and BGPConfiguration communities', async (t) => {
  const peer = (spec: Record<string, unknown>) => ({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerIP: '192.0.2.1', asNumber: 65001, ...spec },
  });
  t.same(problems(peer({ filters: ['my-filter', 'other'] })), []);
  t.match(problems(peer({ filters: ['My Filter'] })).join(), /spec\.filters\[0\] "My Filter" is not a BGPFilter name/);
  t.same(problems(peer({ localASNumber: '64512.7', nextHopMode: 'Keep' })), [], 'localASNumber (asdot) and nextHopMode accepted');
  t.match(problems(peer({ localASNumber: 0 })).join(), /spec\.localASNumber 0 is not a valid AS number/);
  const cfg = (spec: Record<string, unknown>) => ({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec,
  });
  const good = cfg({
    communities: [{ name: 'bgp-large-community', value: '63400:300:100' }],
    prefixAdvertisements: [{ cidr: '172.218.4.0/26', communities: ['bgp-large-community', '63400:120'] }],
    serviceLoadBalancerAggregation: 'Disabled',
  });
  t.same(problems(good), [], "Calico's sample");
  t.match(problems(cfg({ communities: [{ name: 'x', value: '63400:70000' }] })).join(), /value "63400:70000" is not a community/);
  t.match(problems(cfg({ communities: [{ value: '1:1' }] })).join(), /communities\[0\]\.name is required/);
  t.match(
    problems(cfg({ prefixAdvertisements: [{ cidr: '10.0.0.0/8', communities: ['nope'] }] })).join(),
    /communities\[0\] "nope" is neither a name from spec\.communities nor a community value/,
  );
  t.match(problems(cfg({ serviceLoadBalancerAggregation: 'Sometimes' })).join(), /not one of Enabled, Disabled/);
});
