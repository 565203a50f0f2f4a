// The pure matcher on tables of interfaces: every method, Calico's reverse-index walk, regex
// anchoring, the default exclusion list, address qualification, IPv4 and IPv6.
import t from 'tap';
import { matchAddress, isGlobalUnicast, walkOrder, type InterfaceAddresses, type MatchResult } from '../../../src/autodetect/match.js';
import { parseAutodetectionMethod, DEFAULT_INTERFACES_TO_EXCLUDE } from '../../../src/autodetect/method.js';
import { parseIp, type Family } from '../../../src/common/ip.js';

type A = [string, number];
const iface = (index: number, name: string, ...addrs: A[]): InterfaceAddresses => ({
  index,
  name,
  addresses: addrs.map(([address, prefixLen]) => ({ address, prefixLen, family: address.includes(':') ? 6 : 4 })),
});

// The seed's vms71: ens32 192.168.26.0/24 and ens33 192.168.30.0/24, plus the usual noise.
const vms71 = [
  iface(1, 'lo', ['127.0.0.1', 8], ['::1', 128]),
  iface(2, 'ens32', ['192.168.26.71', 24], ['fe80::20c:29ff:fe00:71', 64], ['2001:db8:26::71', 64]),
  iface(3, 'ens33', ['192.168.30.71', 24], ['fe80::20c:29ff:fe00:171', 64], ['2001:db8:30::71', 64]),
  iface(4, 'docker0', ['172.17.0.1', 16]),
  iface(5, 'tunl0', ['10.244.118.192', 32]),
  iface(6, 'cali1234567890a'),
];
// The seed's vms72, NICs renamed: eth0 on 192.168.30.0/24, eth1 on 192.168.26.0/24.
const vms72 = [iface(1, 'lo', ['127.0.0.1', 8]), iface(2, 'eth0', ['192.168.30.72', 24]), iface(3, 'eth1', ['192.168.26.72', 24])];

const pick = (ifs: InterfaceAddresses[], method: string, family: Family = 4, facts = {}): string => {
  const r: MatchResult = matchAddress(ifs, parseAutodetectionMethod(method, family), family, facts);
  return r.ok ? `${r.choice.interface} ${r.choice.address}` : `FAIL ${r.reason}`;
};

t.test("the seed's five settings on both nodes", async (t) => {
  const rows: [string, string, string, Record<string, string>?, Record<string, string>?][] = [
    ['interface=ens33,eth0', 'ens33 192.168.30.71/24', 'eth0 192.168.30.72/24'],
    ['interface=ens32,eth1', 'ens32 192.168.26.71/24', 'eth1 192.168.26.72/24'],
    ['skip-interface=eth1,ens32', 'ens33 192.168.30.71/24', 'eth0 192.168.30.72/24'],
    [
      'can-reach=192.168.30.1',
      'ens33 192.168.30.71/24',
      'eth0 192.168.30.72/24',
      { reachSource: '192.168.30.71' },
      { reachSource: '192.168.30.72' },
    ],
    ['cidr=192.168.26.0/24', 'ens32 192.168.26.71/24', 'eth1 192.168.26.72/24'],
  ];
  for (const [m, want71, want72, f71, f72] of rows) {
    t.equal(pick(vms71, m, 4, f71), want71, `vms71 ${m}`);
    t.equal(pick(vms72, m, 4, f72), want72, `vms72 ${m}`);
  }
});

t.test('first-found walks interfaces in reverse kernel index order', async (t) => {
  t.equal(pick(vms71, 'first-found'), 'ens33 192.168.30.71/24', 'docker0, tunl0, cali* excluded; highest remaining index wins');
  t.equal(pick(vms72, 'first-found'), 'eth1 192.168.26.72/24');
  const shuffled = [vms72[2]!, vms72[0]!, vms72[1]!];
  t.equal(pick(shuffled, 'first-found'), 'eth1 192.168.26.72/24', 'order of the input list does not matter, the index does');
  t.same(
    walkOrder(vms72).map((i) => i.name),
    ['eth1', 'eth0', 'lo'],
  );
});

t.test('within an interface the first qualifying address wins, in kernel order', async (t) => {
  const ifs = [iface(2, 'eth0', ['169.254.3.3', 16], ['10.1.0.5', 24], ['10.2.0.5', 24])];
  t.equal(pick(ifs, 'first-found'), 'eth0 10.1.0.5/24');
});

t.test('address qualification: loopback, link-local, multicast, unspecified never; RFC 1918 and ULA do', async (t) => {
  const no = [
    '127.0.0.1',
    '127.1.2.3',
    '169.254.1.1',
    '224.0.0.1',
    '239.1.1.1',
    '0.0.0.0',
    '255.255.255.255',
    '::',
    '::1',
    'fe80::1',
    'febf::1',
    'ff02::1',
    '::ffff:127.0.0.1',
  ];
  const yes = ['10.0.0.1', '172.16.5.4', '192.168.1.1', '100.64.0.1', '8.8.8.8', 'fd00::1', '2001:db8::1', 'fec0::1', '::ffff:10.0.0.1'];
  for (const a of no) t.notOk(isGlobalUnicast(parseIp(a)), `${a} does not qualify`);
  for (const a of yes) t.ok(isGlobalUnicast(parseIp(a)), `${a} qualifies`);
  const onlyBad = [iface(2, 'eth0', ['169.254.9.9', 16]), iface(3, 'eth1', ['224.1.1.1', 4])];
  t.match(pick(onlyBad, 'first-found'), /^FAIL first-found: no global-unicast IPv4 address/);
  t.equal(pick([iface(2, 'eth0', ['fe80::1', 64], ['fd12::7', 64])], 'first-found', 6), 'eth0 fd12::7/64');
});

t.test('the default exclusion list, name by name', async (t) => {
  const excluded = [
    'docker0',
    'cbr0',
    'dummy0',
    'podman0',
    'virbr0',
    'lxcbr0',
    'veth1234',
    'lo',
    'loopy',
    'br-abc123',
    'cali12345',
    'tunl0',
    'flannel.1',
    'kube-ipvs0',
    'cni0',
    'vxlan.calico',
    'vxlan-v6.calico',
    'wireguard.cali',
    'wg-v6.cali',
    'nodelocaldns',
  ];
  t.equal(DEFAULT_INTERFACES_TO_EXCLUDE.length, 19);
  for (const name of excluded) {
    t.match(pick([iface(7, name, ['10.9.9.9', 24])], 'first-found'), /^FAIL/, `${name} is excluded by first-found`);
    t.match(pick([iface(7, name, ['10.9.9.9', 24])], 'skip-interface=zzz'), /^FAIL/, `${name} is excluded by skip-interface too`);
    t.equal(pick([iface(7, name, ['10.9.9.9', 24])], 'interface=.*'), `${name} 10.9.9.9/24`, `${name} is allowed by interface=`);
    t.equal(pick([iface(7, name, ['10.9.9.9', 24])], 'cidr=10.0.0.0/8'), `${name} 10.9.9.9/24`, `${name} is allowed by cidr=`);
  }
  for (const name of ['eth0', 'ens3', 'bond0', 'br0', 'vxlan0', 'wlan0', 'mybr-x', 'xdocker0']) {
    t.equal(
      pick([iface(7, name, ['10.9.9.9', 24])], 'first-found'),
      `${name} 10.9.9.9/24`,
      `${name} is not excluded (patterns are anchored at the start)`,
    );
  }
});

t.test('interface= regexes are unanchored, as in Calico', async (t) => {
  const ifs = [iface(2, 'eth0', ['10.0.0.2', 24]), iface(9, 'veth0', ['10.99.0.2', 24])];
  t.equal(pick(ifs, 'interface=eth0'), 'veth0 10.99.0.2/24', 'eth0 matches veth0 too, and veth0 has the higher index');
  t.equal(pick(ifs, 'interface=^eth0$'), 'eth0 10.0.0.2/24', 'anchored pattern picks only eth0');
  t.equal(pick(ifs, 'interface=eth'), 'veth0 10.99.0.2/24');
  t.equal(pick(ifs, 'interface=^eth.*'), 'eth0 10.0.0.2/24');
  t.match(
    pick(ifs, 'interface=^ens'),
    /^FAIL interface=\^ens: no global-unicast IPv4 address on an interface whose name matches; interfaces seen \(reverse index order\): veth0\[10.99.0.2\/24\], eth0\[10.0.0.2\/24\]/,
  );
});

t.test('interface= with several regexes: index order decides, not list order', async (t) => {
  t.equal(pick(vms71, 'interface=ens32,ens33'), 'ens33 192.168.30.71/24');
  t.equal(pick(vms71, 'interface=ens33,ens32'), 'ens33 192.168.30.71/24');
  t.equal(pick(vms71, 'interface=ens3[2]'), 'ens32 192.168.26.71/24');
});

t.test('skip-interface adds to the default exclusions', async (t) => {
  t.equal(pick(vms71, 'skip-interface=ens33'), 'ens32 192.168.26.71/24');
  t.match(
    pick(vms71, 'skip-interface=ens'),
    /^FAIL skip-interface=ens: no global-unicast IPv4 address on an interface left after skipping/,
  );
  t.equal(pick(vms71, 'skip-interface=^ens33$,^nothing'), 'ens32 192.168.26.71/24');
});

t.test('cidr= takes the first address inside any CIDR; no name exclusions', async (t) => {
  t.equal(pick(vms71, 'cidr=172.16.0.0/12'), 'docker0 172.17.0.1/16', 'cidr does not apply the exclusion list (as Calico)');
  t.equal(pick(vms71, 'cidr=10.0.0.0/8,192.168.26.0/24'), 'tunl0 10.244.118.192/32');
  t.equal(pick(vms71, 'cidr=192.168.0.0/16'), 'ens33 192.168.30.71/24', 'reverse order again');
  t.equal(pick(vms71, 'cidr=2001:db8:26::/48', 6), 'ens32 2001:db8:26::71/64');
  t.match(pick(vms71, 'cidr=203.0.113.0/24'), /^FAIL cidr=203.0.113.0\/24: no global-unicast IPv4 address inside the CIDRs/);
  t.match(pick(vms71, 'cidr=2001:db8::/32', 4), /^FAIL/, 'a v6 CIDR never matches a v4 address');
});

t.test('can-reach maps the kernel source address to its interface and prefix (any interface)', async (t) => {
  t.equal(pick(vms71, 'can-reach=8.8.8.8', 4, { reachSource: '192.168.26.71' }), 'ens32 192.168.26.71/24');
  t.equal(
    pick(vms71, 'can-reach=10.244.0.1', 4, { reachSource: '172.17.0.1' }),
    'docker0 172.17.0.1/16',
    'no exclusions: the kernel decided',
  );
  t.equal(pick(vms71, 'can-reach=2001:db8:30::1', 6, { reachSource: '2001:db8:30::71' }), 'ens33 2001:db8:30::71/64');
  t.match(pick(vms71, 'can-reach=8.8.8.8', 4, {}), /^FAIL can-reach=8.8.8.8: the kernel gave no IPv4 source address toward 8.8.8.8/);
  t.match(
    pick(vms71, 'can-reach=8.8.8.8', 4, { reachSource: '10.1.1.1' }),
    /source address 10.1.1.1 toward 8.8.8.8 is on no local interface/,
  );
});

t.test('kubernetes-internal-ip matches the InternalIP of the family to a local interface', async (t) => {
  t.equal(pick(vms72, 'kubernetes-internal-ip', 4, { internalIps: ['2001:db8::72', '192.168.26.72'] }), 'eth1 192.168.26.72/24');
  t.equal(pick(vms71, 'kubernetes-internal-ip', 6, { internalIps: ['192.168.26.71', '2001:db8:30::71'] }), 'ens33 2001:db8:30::71/64');
  t.match(pick(vms72, 'kubernetes-internal-ip', 4, {}), /has no IPv4 InternalIP \(seen: none\)/);
  t.match(pick(vms72, 'kubernetes-internal-ip', 4, { internalIps: ['10.0.0.1'] }), /InternalIP 10.0.0.1 is on no local interface/);
});

t.test('IPv4 and IPv6 are chosen independently', async (t) => {
  t.equal(pick(vms71, 'first-found', 6), 'ens33 2001:db8:30::71/64', 'link-local fe80 skipped, global v6 picked');
  t.match(pick(vms72, 'first-found', 6), /^FAIL first-found: no global-unicast IPv6 address.*eth1\[no IPv6\]/);
  t.equal(pick(vms71, 'interface=ens32', 6), 'ens32 2001:db8:26::71/64');
});

t.test('no interfaces at all', async (t) => {
  t.match(pick([], 'first-found'), /interfaces seen \(reverse index order\): no interfaces/);
});

t.test('addresses are reported canonically', async (t) => {
  t.equal(pick([iface(2, 'eth0', ['2001:0db8:0000::0001', 64])], 'first-found', 6), 'eth0 2001:db8::1/64');
});
