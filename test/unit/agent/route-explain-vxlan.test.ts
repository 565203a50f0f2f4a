// route explain's "why this path" for the VXLAN devices: vxlan.calico and vxlan-v6.calico (the IPv6
// pool's VTEP) both name the pool and its vxlanMode, with the subnet reason for CrossSubnet.
import t from 'tap';
import { whyPath } from '../../../src/agent/route-explain.js';

t.test('VXLAN paths: IPv4 and IPv6 devices both explained by the pool', async (t) => {
  const v4 = { name: 'v4', cidr: '10.244.0.0/16' };
  const v6 = { name: 'v6', cidr: 'fd00:10:244::/64' };
  const cases: [Parameters<typeof whyPath>[0], string, string, string, RegExp][] = [
    [{ ...v4, vxlanMode: 'Always' }, '10.244.2.0', 'vxlan.calico', '172.31.1.11/24', /^via vxlan\.calico: pool v4 vxlanMode Always$/],
    [
      { ...v6, vxlanMode: 'Always' },
      'fd00:10:244::40',
      'vxlan-v6.calico',
      'fd00:31:1::b/64',
      /^via vxlan-v6\.calico: pool v6 vxlanMode Always$/,
    ],
    [
      { ...v6, vxlanMode: 'CrossSubnet' },
      'fd00:10:244::80',
      'vxlan-v6.calico',
      'fd00:31:1::b/64',
      /^via vxlan-v6\.calico: pool v6 vxlanMode CrossSubnet \(next hop .* outside this node's subnet/,
    ],
  ];
  for (const [pool, gw, dev, here, want] of cases) {
    const dst = `${gw}/${gw.includes(':') ? 122 : 26}`;
    t.match(whyPath(pool, { dst, gateway: gw, dev, onlink: true }, here), want, `${dev} toward ${dst}`);
  }
});
