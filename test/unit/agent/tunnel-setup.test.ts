// Which pools need which tunnel device (a pool both IPIP and VXLAN is VXLAN's, as in Calico; disabled
// pools none) and how the tunnel fields land in a Node (the IPIP address under spec.bgp, the rest in
// spec, the input left untouched).
import t from 'tap';
import { poolMode, tunnelPools, withTunnelFields } from '../../../src/agent/tunnel-setup.js';
import type { NodeRes, PoolRes } from '../../../src/agent/ports.js';

const pool = (name: string, cidr: string, spec: Partial<PoolRes['spec']> = {}): PoolRes =>
  ({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr, ...spec } }) as PoolRes;

t.test('tunnelPools: each device gets the enabled pools of its mode and family', async (t) => {
  const pools = [
    pool('ipip', '10.1.0.0/16', { ipipMode: 'Always' }),
    pool('both', '10.2.0.0/16', { ipipMode: 'Always', vxlanMode: 'CrossSubnet' }),
    pool('off', '10.3.0.0/16', { ipipMode: 'Always', disabled: true }),
    pool('v6', 'fd00:1::/64', { vxlanMode: 'Always' }),
    pool('v6ipip', 'fd00:2::/64', { ipipMode: 'Always' }),
    pool('plain', '10.4.0.0/16'),
  ];
  const w = tunnelPools(pools);
  t.same(
    w.ipip.map((p) => p.metadata.name),
    ['ipip'],
  );
  t.same(
    w.vxlan[4].map((p) => p.metadata.name),
    ['both'],
  );
  t.same(
    w.vxlan[6].map((p) => p.metadata.name),
    ['v6'],
  );
  t.equal(poolMode('Sometimes'), 'Never');
  t.equal(poolMode(undefined), 'Never');
});

t.test('withTunnelFields: IPIP address under spec.bgp, VXLAN fields in spec, input unchanged', async (t) => {
  const node = {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: { name: 'n1' },
    spec: { bgp: { ipv4Address: '192.0.2.1/24' } },
  } as NodeRes;
  const out = withTunnelFields(node, {
    ipv4IPIPTunnelAddr: '10.1.0.1',
    ipv4VXLANTunnelAddr: '10.2.0.1',
    vxlanTunnelMACAddr: '66:00:00:00:00:01',
  });
  t.same(out.spec.bgp, { ipv4Address: '192.0.2.1/24', ipv4IPIPTunnelAddr: '10.1.0.1' });
  t.equal(out.spec.ipv4VXLANTunnelAddr, '10.2.0.1');
  t.equal(out.spec.vxlanTunnelMACAddr, '66:00:00:00:00:01');
  t.same(node.spec, { bgp: { ipv4Address: '192.0.2.1/24' } });
});
