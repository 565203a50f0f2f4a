// route explain's "why this path" for the VXLAN devices: vxlan.calico and vxlan-v6.calico (the IPv6
// pool's VTEP) both name the pool and its vxlanMode, with the subnet reason for CrossSubnet.
import t from 'tap';
import { whyPath } from '../../../src/agent/route-explain.js';

t.test('VXLAN paths: IPv4 and IPv6 devices both explained by the pool', async (t) => {
  t.equal(
    whyPath(
      { name: 'v4', cidr: '10.244.0.0/16', vxlanMode: 'Always' },
      { dst: '10.244.2.0/26', gateway: '10.244.2.0', dev: 'vxlan.calico', onlink: true },
      '172.31.1.11/24',
    ),
    'via vxlan.calico: pool v4 vxlanMode Always',
  );
  t.equal(
    whyPath(
      { name: 'v6', cidr: 'fd00:10:244::/64', vxlanMode: 'Always' },
      { dst: 'fd00:10:244::40/122', gateway: 'fd00:10:244::40', dev: 'vxlan-v6.calico', onlink: true },
      'fd00:31:1::b/64',
    ),
    'via vxlan-v6.calico: pool v6 vxlanMode Always',
  );
  t.match(
    whyPath(
      { name: 'v6', cidr: 'fd00:10:244::/64', vxlanMode: 'CrossSubnet' },
      { dst: 'fd00:10:244::80/122', gateway: 'fd00:10:244::80', dev: 'vxlan-v6.calico', onlink: true },
      'fd00:31:1::b/64',
    ),
    /^via vxlan-v6\.calico: pool v6 vxlanMode CrossSubnet \(next hop .* outside this node's subnet/,
  );
});
