import t from 'tap';
import {
  parseIp,
  formatIp,
  parseCidr,
  formatCidr,
  formatIpWithPrefix,
  cidrContains,
  cidrContainsCidr,
  cidrsOverlap,
  cidrSize,
  nthIp,
  ipToBuffer,
  bufferToIp,
  canonicalIp,
  InvalidAddress,
  formatIpv6Groups,
} from '../../../src/common/ip.js';
import { log } from '../../../src/common/log.js';

t.test('IPv4 and IPv6 parse and format round trip, canonical text', async (t) => {
  for (const [input, want] of [
    ['10.0.0.1', '10.0.0.1'],
    ['255.255.255.255', '255.255.255.255'],
    ['0.0.0.0', '0.0.0.0'],
    ['fe80:0:0:0:0:0:0:1', 'fe80::1'],
    ['2001:db8::', '2001:db8::'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
    ['FE80::ECEE:EEFF:FEEE:EEEE', 'fe80::ecee:eeff:feee:eeee'],
  ] as const) {
    t.equal(canonicalIp(input), want, input);
  }
  t.equal(parseIp('10.0.0.1').value, 0x0a000001n);
  t.equal(parseIp('::1').family, 6);
});

t.test('bad addresses are rejected with the input named', async (t) => {
  for (const bad of ['10.0.0', '10.0.0.256', 'abc', '1::2::3', '', '10.0.0.01']) {
    t.throws(() => parseIp(bad), InvalidAddress, bad);
  }
  t.throws(() => parseCidr('10.0.0.0/33'), /prefix length 33 is out of range 0\.\.32 for IPv4/);
  t.throws(() => parseCidr('fd00::/129'), /out of range 0\.\.128 for IPv6/);
  t.throws(() => parseCidr('10.0.0.0/x'), /is not a number/);
  t.throws(() => parseCidr('10.0.0.0', { requirePrefix: true }), /missing "\/prefix-length"/);
});

t.test('CIDRs: network, containment, overlap, size, nth address', async (t) => {
  const c = parseCidr('192.168.26.71/24');
  t.equal(formatCidr(c), '192.168.26.0/24');
  t.equal(formatIpWithPrefix(c), '192.168.26.71/24');
  t.ok(cidrContains(c, parseIp('192.168.26.255')));
  t.notOk(cidrContains(c, parseIp('192.168.27.0')));
  t.notOk(cidrContains(c, parseIp('::1')), 'family mismatch never contains');
  t.ok(cidrContainsCidr(parseCidr('10.244.0.0/16'), parseCidr('10.244.3.64/26')));
  t.notOk(cidrContainsCidr(parseCidr('10.244.3.64/26'), parseCidr('10.244.0.0/16')));
  t.ok(cidrsOverlap(parseCidr('10.244.3.64/26'), parseCidr('10.244.0.0/16')));
  t.notOk(cidrsOverlap(parseCidr('10.244.3.64/26'), parseCidr('10.244.3.128/26')));
  t.equal(cidrSize(parseCidr('10.0.0.0/26')), 64n);
  t.equal(cidrSize(parseCidr('fd00::/122')), 64n);
  t.equal(formatIp(nthIp(parseCidr('10.0.0.0/26'), 63)), '10.0.0.63');
  t.equal(parseCidr('10.0.0.7').prefixLen, 32, 'a bare address is a host route');
});

t.test('bytes round trip and the RFC 5952 group formatter', async (t) => {
  for (const s of ['10.1.2.3', 'fd00::1:2', '::']) {
    const ip = parseIp(s);
    const b = ipToBuffer(ip);
    t.equal(b.length, ip.family === 4 ? 4 : 16);
    t.same(bufferToIp(b), ip, s);
  }
  t.throws(() => bufferToIp(new Uint8Array(5)), InvalidAddress);
  t.equal(formatIpv6Groups([0, 0, 1, 0, 0, 0, 0, 1]), '0:0:1::1', 'longest zero run wins');
  t.equal(formatIpv6Groups([1, 0, 0, 2, 0, 0, 3, 4]), '1::2:0:0:3:4', 'leftmost on ties');
  t.equal(formatIpv6Groups([1, 0, 2, 3, 4, 5, 6, 7]), '1:0:2:3:4:5:6:7', 'a single zero group is not compressed');
});

t.test('logger: component-scoped child loggers', async (t) => {
  const l = log('test', { peer: '10.0.0.1' });
  t.equal(l.bindings().component, 'test');
  t.equal(l.bindings().peer, '10.0.0.1');
});
