import t from 'tap';
import { workloadIfName, vxlanMacForNode, natOutgoingScript, sameRoute, normalizeDst } from '../../../src/dataplane/index.js';

t.test('workload interface names as Calico', async (t) => {
  t.equal(workloadIfName('default', 'nginx'), 'calic440f455693');
  t.equal(workloadIfName('kube-system', 'coredns-abc').length, 15);
});

t.test('VTEP MAC: 66 + first 5 bytes of SHA-1(node name)', async (t) => {
  // sha1("node1") = f937c37e94…
  t.equal(vxlanMacForNode('node1'), '66:f9:37:c3:7e:94');
  // the IPv6 VTEP (vxlan-v6.calico): sha1("node1-v6") = 0f35f260df…
  t.equal(vxlanMacForNode('node1', 6), '66:0f:35:f2:60:df');
});

t.test('NAT script: one transaction, own table, only natOutgoing pools masquerade', async (t) => {
  const s = natOutgoingScript([
    { cidr: '10.65.0.0/16', natOutgoing: true },
    { cidr: '10.66.0.0/16', natOutgoing: false },
    { cidr: 'fd00:10::/48', natOutgoing: true },
    { cidr: '10.67.0.0/16', natOutgoing: true, disabled: true },
  ]);
  t.match(s, /^table ip tabby\ndelete table ip tabby\ntable ip tabby \{/);
  t.match(
    s,
    /set all-pools \{\n {4}type ipv4_addr; flags interval;\n {4}elements = \{ 10\.65\.0\.0\/16, 10\.66\.0\.0\/16, 10\.67\.0\.0\/16 \}/,
  );
  t.match(s, /set masq-pools \{\n {4}type ipv4_addr; flags interval;\n {4}elements = \{ 10\.65\.0\.0\/16 \}/);
  t.match(s, /table ip6 tabby \{[\s\S]*ip6 saddr @masq-pools ip6 daddr != @all-pools masquerade/);
  const none = natOutgoingScript([{ cidr: '10.65.0.0/16', natOutgoing: false }]);
  t.equal(none, 'table ip tabby\ndelete table ip tabby\ntable ip6 tabby\ndelete table ip6 tabby\n', 'no pool wants NAT: tables removed');
});

t.test('route equality and destination normalisation', async (t) => {
  t.equal(normalizeDst('10.65.1.7/26'), '10.65.1.0/26');
  t.equal(normalizeDst('10.65.1.7'), '10.65.1.7/32');
  const a = {
    family: 4 as const,
    dst: '10.0.0.0/26',
    table: 254,
    protocol: 81,
    scope: 0,
    type: 'unicast' as const,
    gateway: '1.2.3.4',
    oif: 2,
  };
  t.ok(sameRoute(a, { ...a }));
  t.notOk(sameRoute(a, { ...a, gateway: '1.2.3.5' }));
  t.notOk(sameRoute(a, { ...a, onlink: true }));
  t.ok(
    sameRoute({ ...a, family: 6, dst: 'fd00::/64', scope: 253 }, { ...a, family: 6, dst: 'fd00::/64', scope: 0, priority: 1024 }),
    'v6: scope and default metric ignored',
  );
});

t.test('blackholes compare without next hop (IPv6 dumps them with dev lo)', async (t) => {
  const want = { family: 6 as const, dst: 'fd70::/64', table: 254, protocol: 81, scope: 0, type: 'blackhole' as const };
  t.ok(sameRoute(want, { ...want, oif: 1, priority: 1024 }));
  t.notOk(sameRoute(want, { ...want, type: 'unicast', oif: 1 }));
});
