import t from 'tap';
import { computeRoutes, type RouteInput } from '../../../src/agent/routes.js';

const base: RouteInput = {
  nodeAddress4: '10.0.0.1/24',
  pools: [{ cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Never' }],
  ownBlocks: [
    { cidr: '192.168.1.0/26', state: 'confirmed' },
    { cidr: '192.168.1.64/26', state: 'pending' },
  ],
  learned: [],
  kernelHasIpip: true,
};

t.test('own confirmed blocks: blackhole + export; pending ones nothing; borrowed /32 exported', async (t) => {
  const r = computeRoutes({ ...base, borrowed: ['192.168.7.5', '192.168.1.3'] });
  t.same(r.routes, [{ dst: '192.168.1.0/26', type: 'blackhole' }]);
  t.same(r.exports, ['192.168.1.0/26', '192.168.7.5/32']);
  t.same(r.problems, []);
  t.equal(r.needsIpip, false);
  t.equal(r.needsVxlan, false);
});

t.test('plain routed (Never) and outside all pools: via N', async (t) => {
  const r = computeRoutes({
    ...base,
    uplink: 'eth0',
    learned: [
      { prefix: '192.168.2.0/26', nextHops: ['10.0.0.2'] },
      { prefix: '0.0.0.0/0', nextHops: ['10.0.0.254'] },
      { prefix: '172.16.0.0/24', nextHops: ['10.9.0.1'] },
      { prefix: '192.168.3.0/26', nextHops: ['10.0.0.1'] }, // next hop is ourselves: ignored
      { prefix: '192.168.1.0/26', nextHops: ['10.0.0.2'] }, // our own block: the blackhole wins
    ],
  });
  t.same(r.routes, [
    { dst: '0.0.0.0/0', gateway: '10.0.0.254', dev: 'eth0' },
    { dst: '172.16.0.0/24', gateway: '10.9.0.1' },
    { dst: '192.168.1.0/26', type: 'blackhole' },
    { dst: '192.168.2.0/26', gateway: '10.0.0.2', dev: 'eth0' },
  ]);
});

t.test('IPIP Always: via N dev tunl0 onlink; CrossSubnet: tunnel only across subnets', async (t) => {
  const always = computeRoutes({
    ...base,
    pools: [{ cidr: '192.168.0.0/16', ipipMode: 'Always', vxlanMode: 'Never' }],
    learned: [
      { prefix: '192.168.2.0/26', nextHops: ['10.0.0.2'] },
      { prefix: '192.168.3.0/26', nextHops: ['10.1.0.2'] },
    ],
  });
  t.same(
    always.routes.filter((x) => x.type !== 'blackhole'),
    [
      { dst: '192.168.2.0/26', gateway: '10.0.0.2', dev: 'tunl0', onlink: true },
      { dst: '192.168.3.0/26', gateway: '10.1.0.2', dev: 'tunl0', onlink: true },
    ],
  );
  t.equal(always.needsIpip, true);
  const cross = computeRoutes({
    ...base,
    pools: [{ cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', vxlanMode: 'Never' }],
    learned: [
      { prefix: '192.168.2.0/26', nextHops: ['10.0.0.2'] },
      { prefix: '192.168.3.0/26', nextHops: ['10.1.0.2'] },
    ],
  });
  t.same(
    cross.routes.filter((x) => x.type !== 'blackhole'),
    [
      { dst: '192.168.2.0/26', gateway: '10.0.0.2' },
      { dst: '192.168.3.0/26', gateway: '10.1.0.2', dev: 'tunl0', onlink: true },
    ],
  );
  t.same(cross.exports, ['192.168.1.0/26']);
});

t.test('IPIP pool on a kernel without ipip: reported, no tunnel route at all', async (t) => {
  const r = computeRoutes({
    ...base,
    kernelHasIpip: false,
    pools: [
      { cidr: '192.168.0.0/16', ipipMode: 'CrossSubnet', vxlanMode: 'Never' },
      { cidr: '172.20.0.0/16', ipipMode: 'Never', vxlanMode: 'Never' },
    ],
    learned: [
      { prefix: '192.168.2.0/26', nextHops: ['10.0.0.2'] },
      { prefix: '192.168.3.0/26', nextHops: ['10.1.0.2'] },
      { prefix: '172.20.1.0/26', nextHops: ['10.1.0.2'] },
    ],
  });
  t.equal(r.problems.length, 1);
  t.match(r.problems[0], /^kernel has no ipip support: use vxlanMode or ipipMode Never/);
  t.notOk(
    r.routes.some((x) => x.dev === 'tunl0'),
    'no route through a tunnel that cannot exist',
  );
  t.ok(
    r.routes.some((x) => x.dst === '172.20.1.0/26'),
    'other pools unaffected',
  );
});

t.test('VXLAN: no BGP export, routes from the datastore with neighbour + FDB', async (t) => {
  const r = computeRoutes({
    ...base,
    pools: [{ cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Always' }],
    borrowed: ['192.168.9.9'],
    learned: [{ prefix: '192.168.2.0/26', nextHops: ['10.0.0.2'] }],
    remoteBlocks: [
      { cidr: '192.168.2.0/26', node: 'b' },
      { cidr: '192.168.3.0/26', node: 'c' },
      { cidr: '192.168.4.0/26', node: 'ghost' },
    ],
    vteps: [
      { node: 'b', address: '10.0.0.2', vtepIp: '192.168.2.0', vtepMac: '66:00:00:00:00:02' },
      { node: 'c', address: '10.1.0.3', vtepIp: '192.168.3.0', vtepMac: '66:00:00:00:00:03' },
    ],
  });
  t.same(r.exports, [], 'never VXLAN-pool routes over BGP');
  t.same(r.routes, [
    { dst: '192.168.1.0/26', type: 'blackhole' },
    { dst: '192.168.2.0/26', gateway: '192.168.2.0', dev: 'vxlan.calico', onlink: true },
    { dst: '192.168.3.0/26', gateway: '192.168.3.0', dev: 'vxlan.calico', onlink: true },
  ]);
  t.same(r.neighbors, [
    { dev: 'vxlan.calico', ip: '192.168.2.0', mac: '66:00:00:00:00:02' },
    { dev: 'vxlan.calico', ip: '192.168.3.0', mac: '66:00:00:00:00:03' },
  ]);
  t.same(r.fdb, [
    { dev: 'vxlan.calico', mac: '66:00:00:00:00:02', dst: '10.0.0.2' },
    { dev: 'vxlan.calico', mac: '66:00:00:00:00:03', dst: '10.1.0.3' },
  ]);
  t.equal(r.needsVxlan, true);
  const cross = computeRoutes({
    ...base,
    pools: [{ cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'CrossSubnet' }],
    learned: [],
    remoteBlocks: [
      { cidr: '192.168.2.0/26', node: 'b' },
      { cidr: '192.168.3.0/26', node: 'c' },
    ],
    vteps: [
      { node: 'b', address: '10.0.0.2', vtepIp: '192.168.2.0', vtepMac: '66:00:00:00:00:02' },
      { node: 'c', address: '10.1.0.3', vtepIp: '192.168.3.0', vtepMac: '66:00:00:00:00:03' },
    ],
  });
  t.same(
    cross.routes.filter((x) => x.type !== 'blackhole'),
    [
      { dst: '192.168.2.0/26', gateway: '10.0.0.2' },
      { dst: '192.168.3.0/26', gateway: '192.168.3.0', dev: 'vxlan.calico', onlink: true },
    ],
  );
  t.same(cross.fdb, [{ dev: 'vxlan.calico', mac: '66:00:00:00:00:03', dst: '10.1.0.3' }]);
});

t.test(
  'VXLAN over IPv6: v6 blocks via the v6 VTEP on vxlan-v6.calico, FDB toward the node v6 address; CrossSubnet by the v6 subnet',
  async (t) => {
    const dual = (v6Mode: 'Always' | 'CrossSubnet') =>
      computeRoutes({
        ...base,
        nodeAddress6: 'fd00:31:1::a/64',
        pools: [
          { cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Always' },
          { cidr: 'fd00:10:244::/64', ipipMode: 'Never', vxlanMode: v6Mode },
        ],
        ownBlocks: [...base.ownBlocks, { cidr: 'fd00:10:244::/122', state: 'confirmed' }],
        learned: [],
        remoteBlocks: [
          { cidr: '192.168.2.0/26', node: 'b' },
          { cidr: 'fd00:10:244::40/122', node: 'b' },
          { cidr: 'fd00:10:244::80/122', node: 'c' },
        ],
        vteps: [
          { node: 'b', address: '10.0.0.2', vtepIp: '192.168.2.0', vtepMac: '66:00:00:00:00:02' },
          { node: 'b', address: 'fd00:31:1::b', vtepIp: 'fd00:10:244::40', vtepMac: '66:00:00:00:06:02' },
          { node: 'c', address: 'fd00:31:2::c', vtepIp: 'fd00:10:244::80', vtepMac: '66:00:00:00:06:03' },
        ],
      });
    const r = dual('Always');
    t.same(r.exports, [], 'neither family of a VXLAN pool over BGP');
    t.same(r.routes, [
      { dst: '192.168.1.0/26', type: 'blackhole' },
      { dst: '192.168.2.0/26', gateway: '192.168.2.0', dev: 'vxlan.calico', onlink: true },
      { dst: 'fd00:10:244::/122', type: 'blackhole' },
      { dst: 'fd00:10:244::40/122', gateway: 'fd00:10:244::40', dev: 'vxlan-v6.calico', onlink: true },
      { dst: 'fd00:10:244::80/122', gateway: 'fd00:10:244::80', dev: 'vxlan-v6.calico', onlink: true },
    ]);
    t.same(r.neighbors, [
      { dev: 'vxlan.calico', ip: '192.168.2.0', mac: '66:00:00:00:00:02' },
      { dev: 'vxlan-v6.calico', ip: 'fd00:10:244::40', mac: '66:00:00:00:06:02' },
      { dev: 'vxlan-v6.calico', ip: 'fd00:10:244::80', mac: '66:00:00:00:06:03' },
    ]);
    t.same(r.fdb, [
      { dev: 'vxlan.calico', mac: '66:00:00:00:00:02', dst: '10.0.0.2' },
      { dev: 'vxlan-v6.calico', mac: '66:00:00:00:06:02', dst: 'fd00:31:1::b' },
      { dev: 'vxlan-v6.calico', mac: '66:00:00:00:06:03', dst: 'fd00:31:2::c' },
    ]);
    const cross = dual('CrossSubnet');
    t.same(
      cross.routes.filter((x) => x.dst.includes(':') && x.type !== 'blackhole'),
      [
        { dst: 'fd00:10:244::40/122', gateway: 'fd00:31:1::b' },
        { dst: 'fd00:10:244::80/122', gateway: 'fd00:10:244::80', dev: 'vxlan-v6.calico', onlink: true },
      ],
      'same IPv6 subnet: plain via the node; across: the v6 tunnel',
    );
    t.same(
      cross.fdb.filter((f) => f.dev === 'vxlan-v6.calico'),
      [{ dev: 'vxlan-v6.calico', mac: '66:00:00:00:06:03', dst: 'fd00:31:2::c' }],
    );
  },
);

t.test('disabled pools: their learned routes map as outside any pool; own blocks keep their blackhole', async (t) => {
  const r = computeRoutes({
    ...base,
    pools: [{ cidr: '192.168.0.0/16', ipipMode: 'Always', vxlanMode: 'Never', disabled: true }],
    learned: [{ prefix: '192.168.2.0/26', nextHops: ['10.0.0.2'] }],
  });
  t.same(r.routes, [
    { dst: '192.168.1.0/26', type: 'blackhole' },
    { dst: '192.168.2.0/26', gateway: '10.0.0.2' },
  ]);
  t.equal(r.needsIpip, false);
});

t.test('service CIDRs (BGPConfiguration serviceClusterIPs…) are exported, with no kernel route', async (t) => {
  const r = computeRoutes({ ...base, advertise: ['10.96.0.0/12', '10.96.0.1/12'] });
  t.same(r.exports, ['10.96.0.0/12', '192.168.1.0/26']);
  t.notOk(r.routes.some((x) => x.dst.startsWith('10.96.')));
});

t.test('IPv6: own v6 block blackholed and exported, learned v6 routes via the v6 next hop only', async (t) => {
  const r = computeRoutes({
    nodeAddress4: '10.0.0.1/24',
    nodeAddress6: 'fd00::1/64',
    pools: [
      { cidr: '192.168.0.0/16', ipipMode: 'Always', vxlanMode: 'Never' },
      { cidr: 'fd00:10::/48', ipipMode: 'Never', vxlanMode: 'Never' },
    ],
    ownBlocks: [{ cidr: 'fd00:10::/122', state: 'confirmed' }],
    learned: [
      { prefix: 'fd00:10::40/122', nextHops: ['10.0.0.2', 'fd00::2'] },
      { prefix: 'fd00:10::80/122', nextHops: ['fd00::1'] },
    ],
    kernelHasIpip: true,
  });
  t.same(r.routes, [
    { dst: 'fd00:10::/122', type: 'blackhole' },
    { dst: 'fd00:10::40/122', gateway: 'fd00::2' },
  ]);
  t.same(r.exports, ['fd00:10::/122']);
});

t.test('IPPool disableBGPExport: blocks and borrowed /32s keep their kernel routes but are not exported', async (t) => {
  const r = computeRoutes({
    ...base,
    pools: [
      { cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Never', disableBGPExport: true },
      { cidr: '172.20.0.0/16', ipipMode: 'Never', vxlanMode: 'Never' },
    ],
    borrowed: ['192.168.7.5', '172.20.3.4'],
  });
  t.same(r.routes, [{ dst: '192.168.1.0/26', type: 'blackhole' }]);
  t.same(r.exports, ['172.20.3.4/32']);
});
