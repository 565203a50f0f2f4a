// IP / IP6 settings, the address decision (stored, detected, explicit, none), conflicts, env reading.
import t from 'tap';
import {
  parseIpSetting,
  decideAddress,
  needsDetection,
  findAddressConflict,
  AddressConflictError,
  NoAddressError,
  autodetectConfigFromEnv,
  parseDurationSetting,
} from '../../../src/autodetect/settings.js';
import { parseAutodetectionMethod, AutodetectConfigError } from '../../../src/autodetect/method.js';
import type { InterfaceAddresses, MatchResult } from '../../../src/autodetect/match.js';

const ifs: InterfaceAddresses[] = [
  {
    index: 2,
    name: 'eth0',
    addresses: [
      { address: '10.0.0.5', prefixLen: 24, family: 4 },
      { address: 'fd00::5', prefixLen: 64, family: 6 },
    ],
  },
];
const ff = parseAutodetectionMethod('first-found', 4);
const detected = (address: string, prefixLen: number): MatchResult => ({
  ok: true,
  choice: { family: 4, address: `${address}/${prefixLen}`, ip: address, prefixLen, interface: 'eth0' },
});
const failed: MatchResult = { ok: false, reason: 'first-found: nothing; interfaces seen: eth0[]' };

t.test('parseIpSetting', async (t) => {
  t.same(parseIpSetting(undefined, 4), { kind: 'unset' });
  t.same(parseIpSetting('', 4), { kind: 'unset' });
  t.same(parseIpSetting('autodetect', 4), { kind: 'autodetect' });
  t.same(parseIpSetting('none', 6), { kind: 'none' });
  t.same(parseIpSetting('10.0.0.5', 4), { kind: 'address', address: '10.0.0.5' });
  t.same(parseIpSetting('10.0.0.5/24', 4), { kind: 'address', address: '10.0.0.5', prefixLen: 24 });
  t.same(parseIpSetting('2001:0db8::0005/64', 6), { kind: 'address', address: '2001:db8::5', prefixLen: 64 });
  t.throws(() => parseIpSetting('10.0.0.5/33', 4), AutodetectConfigError);
  t.throws(() => parseIpSetting('fd00::1', 4), /IP="fd00::1": is an IPv6 address; IP takes IPv4/);
  t.throws(() => parseIpSetting('10.0.0.1/8', 6), /IP6="10.0.0.1\/8": is an IPv4 address/);
  t.throws(() => parseIpSetting('auto', 4), /IP="auto": not "autodetect", "none" or an IPv4 address/);
});

t.test('needsDetection', async (t) => {
  t.ok(needsDetection({ kind: 'unset' }, 4, undefined), 'IP unset, nothing stored → detect');
  t.notOk(needsDetection({ kind: 'unset' }, 4, '10.0.0.5/24'), 'IP unset, stored → keep');
  t.ok(needsDetection({ kind: 'autodetect' }, 4, '10.0.0.5/24'), 'autodetect → always');
  t.notOk(needsDetection({ kind: 'unset' }, 6, undefined), 'IPv6 is detected only with IP6=autodetect');
  t.ok(needsDetection({ kind: 'autodetect' }, 6, undefined));
  t.notOk(needsDetection({ kind: 'none' }, 4, undefined));
  t.notOk(needsDetection({ kind: 'address', address: '10.0.0.5' }, 4, undefined));
});

t.test('decideAddress', async (t) => {
  const d1 = decideAddress({ family: 4, setting: { kind: 'unset' }, method: ff, stored: '10.0.0.5/24', interfaces: ifs });
  t.same([d1.source, d1.choice?.address, d1.choice?.interface], ['stored', '10.0.0.5/24', 'eth0'], 'unset keeps stored');
  const d2 = decideAddress({ family: 4, setting: { kind: 'unset' }, method: ff, interfaces: ifs, detected: detected('10.0.0.5', 24) });
  t.same([d2.source, d2.choice?.address], ['detected', '10.0.0.5/24'], 'unset, nothing stored → detected');
  const d3 = decideAddress({
    family: 4,
    setting: { kind: 'autodetect' },
    method: ff,
    stored: '10.9.9.9/16',
    interfaces: ifs,
    detected: detected('10.0.0.5', 24),
  });
  t.same([d3.source, d3.choice?.address], ['detected', '10.0.0.5/24'], 'autodetect replaces stored');
  const d4 = decideAddress({
    family: 4,
    setting: { kind: 'autodetect' },
    method: ff,
    stored: '10.9.9.9/16',
    interfaces: ifs,
    detected: failed,
  });
  t.same([d4.source, d4.choice?.address], ['stored', '10.9.9.9/16'], 'detection failed → keep stored');
  t.match(d4.warnings[0], /autodetection of the IPv4 address failed .*keeping the stored address 10.9.9.9\/16/);
  const noAddr = t.throws(() =>
    decideAddress({ family: 4, setting: { kind: 'autodetect' }, method: ff, interfaces: ifs, detected: failed }),
  );
  t.ok(noAddr instanceof NoAddressError, 'nothing found, nothing stored → NoAddressError');
  t.match(
    (noAddr as Error).message,
    /failed to autodetect an IPv4 address with IP_AUTODETECTION_METHOD=first-found: first-found: nothing; interfaces seen: eth0\[\]\. Choose another autodetection method or set IP explicitly/,
  );
  const d5 = decideAddress({ family: 4, setting: { kind: 'none' }, method: ff, stored: '10.0.0.5/24', interfaces: ifs });
  t.same([d5.source, d5.choice], ['none', undefined], 'none → no IPv4');
  const d6 = decideAddress({ family: 4, setting: { kind: 'address', address: '10.0.0.5' }, method: ff, interfaces: ifs });
  t.same([d6.source, d6.choice?.address, d6.choice?.interface], ['explicit', '10.0.0.5/24', 'eth0'], 'prefix recovered from the interface');
  const d7 = decideAddress({ family: 4, setting: { kind: 'address', address: '10.7.7.7' }, method: ff, interfaces: ifs });
  t.same([d7.choice?.address, d7.choice?.interface], ['10.7.7.7/32', undefined]);
  t.match(d7.warnings[0], /not assigned to any interface of this host; using \/32/);
  const d8 = decideAddress({ family: 4, setting: { kind: 'address', address: '10.0.0.5', prefixLen: 16 }, method: ff, interfaces: ifs });
  t.same([d8.choice?.address, d8.warnings.length], ['10.0.0.5/16', 0], 'explicit prefix wins');
  const d9 = decideAddress({ family: 6, setting: { kind: 'unset' }, method: ff, interfaces: ifs });
  t.same([d9.source, d9.choice], ['none', undefined], 'IP6 unset, nothing stored → no IPv6');
  const d10 = decideAddress({ family: 6, setting: { kind: 'address', address: 'fd00::5' }, method: ff, interfaces: ifs });
  t.equal(d10.choice?.address, 'fd00::5/64');
  t.throws(() => decideAddress({ family: 4, setting: { kind: 'autodetect' }, method: ff, interfaces: ifs }), /detection result required/);
});

t.test('conflict check names the other node', async (t) => {
  const nodes = [
    { metadata: { name: 'me' }, spec: { bgp: { ipv4Address: '10.0.0.5/24' } } },
    { metadata: { name: 'node-b' }, spec: { bgp: { ipv4Address: '172.17.0.1/16' } } },
    { metadata: { name: 'node-c' }, spec: { bgp: { ipv6Address: 'fd00::5/64' } } },
    { metadata: { name: 'node-d' } },
  ];
  t.equal(findAddressConflict('me', { ipv4: '10.0.0.5/24' }, nodes), undefined, 'own node is not a conflict');
  t.same(
    findAddressConflict('me', { ipv4: '172.17.0.1/24' }, nodes),
    { node: 'node-b', address: '172.17.0.1', family: 4 },
    'prefix ignored',
  );
  t.same(findAddressConflict('me', { ipv6: 'fd00:0::5/128' }, nodes), { node: 'node-c', address: 'fd00::5', family: 6 });
  const err = new AddressConflictError({ node: 'node-b', address: '172.17.0.1', family: 4 }, 'me');
  t.match(err.message, /172.17.0.1 chosen for node me is already used by node node-b; refusing to start/);
});

t.test('autodetectConfigFromEnv, with lower-case spellings', async (t) => {
  const c = autodetectConfigFromEnv({});
  t.same(
    [c.ip4, c.ip6, c.method4, c.method6, c.pollIntervalMs],
    [{ kind: 'unset' }, { kind: 'unset' }, { kind: 'first-found' }, { kind: 'first-found' }, 60_000],
  );
  const l = autodetectConfigFromEnv({
    ip_autodetection_method: 'cidr=10.0.0.0/8',
    ip6_autodetection_method: 'can-reach=fd00::1',
    ip6: 'autodetect',
    autodetect_poll_interval: '5m',
  });
  t.equal(l.method4.kind, 'cidr');
  t.equal(l.method6.kind, 'can-reach');
  t.equal(l.ip6.kind, 'autodetect');
  t.equal(l.pollIntervalMs, 300_000);
  const both = autodetectConfigFromEnv({ IP_AUTODETECTION_METHOD: 'interface=eth0', ip_autodetection_method: 'bogus' });
  t.equal(both.method4.kind, 'interface', 'upper case wins');
  t.throws(() => autodetectConfigFromEnv({ ip_autodetection_method: 'cidr=10.0.0.0/33' }), /^ip_autodetection_method="cidr=10.0.0.0\/33"/);
  t.same(autodetectConfigFromEnv({ TABBY_NODE_INTERNAL_IP: '10.0.0.5, fd00::5' }).internalIps, ['10.0.0.5', 'fd00::5']);
  t.throws(() => autodetectConfigFromEnv({ TABBY_NODE_INTERNAL_IP: 'x' }), /TABBY_NODE_INTERNAL_IP="x": "x" is not an IP address/);
});

t.test('parseDurationSetting', async (t) => {
  t.equal(parseDurationSetting('X', '60s'), 60_000);
  t.equal(parseDurationSetting('X', '1m30s'), 90_000);
  t.equal(parseDurationSetting('X', '500ms'), 500);
  t.equal(parseDurationSetting('X', '0'), 0);
  t.equal(parseDurationSetting('X', '45'), 45_000);
  t.throws(() => parseDurationSetting('AUTODETECT_POLL_INTERVAL', '1 minute'), /AUTODETECT_POLL_INTERVAL="1 minute": not a duration/);
  t.throws(() => parseDurationSetting('X', '5x'), /not a duration/);
});
