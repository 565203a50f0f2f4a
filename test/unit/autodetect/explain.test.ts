// autodetect --explain: each candidate's verdict and rule, the result equal to matchAddress's, and the
// warnings (/32, bridge-like interface, another Node's address).
import t from 'tap';
import { explainAutodetect } from '../../../src/autodetect/explain.js';
import { matchAddress } from '../../../src/autodetect/match.js';
import { parseAutodetectionMethod } from '../../../src/autodetect/method.js';

const ifs = [
  { index: 1, name: 'lo', addresses: [{ address: '127.0.0.1', prefixLen: 8, family: 4 as const }] },
  { index: 2, name: 'eth0', addresses: [{ address: '192.168.26.71', prefixLen: 24, family: 4 as const }] },
  { index: 3, name: 'docker0', kind: 'bridge', addresses: [{ address: '172.17.0.1', prefixLen: 16, family: 4 as const }] },
  {
    index: 4,
    name: 'eth1',
    addresses: [
      { address: 'fe80::1', prefixLen: 64, family: 6 as const },
      { address: '10.0.0.9', prefixLen: 32, family: 4 as const },
    ],
  },
];

t.test('first-found: reverse index order, exclusions, the /32 warning', async (t) => {
  const m = parseAutodetectionMethod('first-found', 4);
  const e = explainAutodetect(ifs, m, 4, {}, [{ node: 'other', address: '10.0.0.9/32' }]);
  t.same(
    e.candidates.map((c) => [c.interface, c.verdict]),
    [
      ['eth1', 'chosen'],
      ['docker0', 'not reached'],
      ['eth0', 'not reached'],
      ['lo', 'not reached'],
    ],
  );
  t.same(e.result, matchAddress(ifs, m, 4));
  t.match(e.warnings[0], /10\.0\.0\.9\/32 is a \/32: .*CrossSubnet.*calico#4254/);
  t.match(e.warnings[1], /already Node other's address/);
});

t.test('skip-interface and interface=: which rule skipped each', async (t) => {
  const skip = explainAutodetect(ifs, parseAutodetectionMethod('skip-interface=eth1', 4), 4);
  t.same(
    skip.candidates.map((c) => [c.interface, c.verdict, c.why]),
    [
      ['eth1', 'skipped', 'skip-interface=eth1'],
      ['docker0', 'skipped', 'default exclusion ^docker.*'],
      ['eth0', 'chosen', 'first global-unicast address on a kept interface'],
      ['lo', 'not reached', 'an earlier interface was chosen (reverse kernel index order)'],
    ],
  );
  t.same(skip.warnings, []);
  const br = explainAutodetect(ifs, parseAutodetectionMethod('interface=docker', 4), 4);
  t.equal(br.result.ok && br.result.choice.interface, 'docker0');
  t.match(br.candidates[0]!.why, /name matches no interface= regex \(docker\)/);
  t.match(br.warnings[0], /docker0 looks like a bridge interface/);
});

t.test('cidr= and can-reach', async (t) => {
  const c = explainAutodetect(ifs, parseAutodetectionMethod('cidr=192.168.0.0/16', 4), 4);
  t.match(c.candidates.find((x) => x.interface === 'eth1')?.why, /outside cidr=192\.168\.0\.0\/16/);
  t.equal(c.result.ok && c.result.choice.address, '192.168.26.71/24');
  const r = explainAutodetect(ifs, parseAutodetectionMethod('can-reach=192.168.26.1', 4), 4, { reachSource: '192.168.26.71' });
  t.same(
    r.candidates.filter((x) => x.verdict === 'chosen').map((x) => x.interface),
    ['eth0'],
  );
  const none = explainAutodetect(ifs, parseAutodetectionMethod('interface=^wlan', 4), 4);
  t.notOk(none.result.ok);
  t.ok(none.candidates.every((x) => x.verdict === 'skipped'));
});
