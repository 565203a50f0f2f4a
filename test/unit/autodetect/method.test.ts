// Parsing IP_AUTODETECTION_METHOD / IP6_AUTODETECTION_METHOD: every method, list splitting, and each
// malformed input with the message a user sees.
import t from 'tap';
import { parseAutodetectionMethod, formatMethod, AutodetectConfigError } from '../../../src/autodetect/method.js';

t.test('every method parses for IPv4', async (t) => {
  t.same(parseAutodetectionMethod(undefined, 4), { kind: 'first-found' });
  t.same(parseAutodetectionMethod('', 4), { kind: 'first-found' });
  t.same(parseAutodetectionMethod('first-found', 4), { kind: 'first-found' });
  t.same(parseAutodetectionMethod('kubernetes-internal-ip', 4), { kind: 'kubernetes-internal-ip' });
  const i = parseAutodetectionMethod('interface=ens33,eth0', 4);
  t.equal(i.kind, 'interface');
  t.same(i.kind === 'interface' && i.include.map((p) => p.source), ['ens33', 'eth0']);
  const s = parseAutodetectionMethod('skip-interface=eth1, ens32', 4);
  t.same(s.kind === 'skip-interface' && s.exclude.map((p) => p.source), ['eth1', 'ens32'], 'spaces around commas are allowed');
  t.same(parseAutodetectionMethod('can-reach=192.168.30.1', 4), { kind: 'can-reach', destination: '192.168.30.1' });
  t.same(parseAutodetectionMethod('can-reach=www.example.com', 4), { kind: 'can-reach', destination: 'www.example.com' });
  const c = parseAutodetectionMethod('cidr=192.168.26.0/24 , 10.0.0.0/8', 4);
  t.same(c.kind === 'cidr' && c.text, ['192.168.26.0/24', '10.0.0.0/8']);
  t.equal(c.kind === 'cidr' && c.cidrs[1]!.prefixLen, 8);
});

t.test('IPv6 forms', async (t) => {
  t.same(parseAutodetectionMethod('can-reach=2001:db8::1', 6), { kind: 'can-reach', destination: '2001:db8::1' });
  t.same(parseAutodetectionMethod('can-reach=[2001:db8::1]', 6), { kind: 'can-reach', destination: '2001:db8::1' }, 'brackets stripped');
  const c = parseAutodetectionMethod('cidr=fd00::/8', 6);
  t.equal(c.kind === 'cidr' && c.cidrs[0]!.family, 6);
});

t.test('format round trip', async (t) => {
  for (const s of [
    'first-found',
    'interface=ens33,eth0',
    'skip-interface=eth1,ens32',
    'can-reach=192.168.30.1',
    'cidr=192.168.26.0/24',
    'kubernetes-internal-ip',
  ]) {
    t.equal(formatMethod(parseAutodetectionMethod(s, 4)), s);
  }
});

t.test('malformed input gives a typed error naming the variable and the fault', async (t) => {
  const rows: [string, 4 | 6, RegExp][] = [
    ['cidr=10.0.0.0/33', 4, /IP_AUTODETECTION_METHOD="cidr=10.0.0.0\/33": invalid CIDR "10.0.0.0\/33".*prefix length 33 is out of range/],
    ['cidr=10.0.0.0', 4, /invalid CIDR "10.0.0.0".*missing/],
    ['cidr=', 4, /cidr= needs at least one CIDR/],
    ['cidr=10.0.0.0/8,', 4, /empty element/],
    ['cidr=banana/8', 4, /invalid CIDR "banana\/8"/],
    ['interface=eth[0', 4, /invalid interface regex "eth\[0"/],
    ['interface=(', 4, /invalid interface regex/],
    ['interface=', 4, /interface= needs at least one interface-name regex/],
    ['interface=eth0,', 4, /empty regex at position 2/],
    ['skip-interface=*bad', 4, /invalid interface regex "\*bad"/],
    ['can-reach=', 4, /can-reach= needs a destination/],
    ['can-reach=2001:db8::1', 4, /is IPv6 but this setting detects the IPv4 address/],
    ['can-reach=8.8.8.8', 6, /IP6_AUTODETECTION_METHOD=.*is IPv4 but this setting detects the IPv6 address/],
    ['can-reach=no spaces allowed', 4, /neither an IP address nor a hostname/],
    ['first_found', 4, /unknown autodetection method/],
    ['interfaces=eth0', 4, /unknown autodetection method/],
    ['bogus', 6, /IP6_AUTODETECTION_METHOD="bogus": unknown autodetection method/],
  ];
  for (const [input, fam, re] of rows) {
    try {
      parseAutodetectionMethod(input, fam);
      t.fail(`${input} should be rejected`);
    } catch (err) {
      t.ok(err instanceof AutodetectConfigError, `${input}: typed error`);
      t.match((err as Error).message, re, input);
      t.equal((err as AutodetectConfigError).value, input);
    }
  }
});

t.test('the variable name given is the one reported (lower-case spelling)', async (t) => {
  t.throws(() => parseAutodetectionMethod('nope', 4, 'ip_autodetection_method'), /^ip_autodetection_method="nope"/);
});

t.test('regexes are unanchored, (?i) is honoured', async (t) => {
  const m = parseAutodetectionMethod('interface=eth0', 4);
  if (m.kind !== 'interface') throw new Error('kind');
  t.ok(m.include[0]!.regex.test('veth0'), 'eth0 matches veth0 (unanchored, as Calico)');
  t.ok(m.include[0]!.regex.test('eth0.100'));
  const a = parseAutodetectionMethod('interface=^eth0$', 4);
  if (a.kind !== 'interface') throw new Error('kind');
  t.notOk(a.include[0]!.regex.test('veth0'), 'anchors restrict it');
  const ci = parseAutodetectionMethod('interface=(?i)^ETH', 4);
  if (ci.kind !== 'interface') throw new Error('kind');
  t.ok(ci.include[0]!.regex.test('eth1'));
});
