// TCP MD5 (RFC 2385) and GTSM (RFC 5082) against a real BIRD 2: the right key reaches Established,
// a wrong key never gets as far as an OPEN (the kernel drops the unsigned/mis-signed segments);
// `ttl security on` in BIRD establishes with tabby's ttlSecurity.
import t from 'tap';
import { BgpListener, BgpSession } from '../../../src/bgp/session.js';
import type { BgpState } from '../../../src/bgp/fsm.js';
import { haveBird, startBird } from '../../helpers/bird.js';
import { isRoot, makeNsPair } from '../../helpers/netns.js';

const skip = !isRoot() ? 'needs root (netns)' : !haveBird() ? 'needs bird2 (bird, birdc)' : false;

const conf = (p: string): string => `
router id 10.79.0.2;
protocol device {}
protocol bgp good { local 10.79.0.2 as 65000; neighbor 10.79.0.1 as 65000; password "${p}"; hold time 9; connect delay time 1; connect retry time 1; error wait time 1,2; ipv4 { import all; export none; }; }
protocol bgp bad { local 10.79.0.12 as 65000; neighbor 10.79.0.11 as 65000; password "${p}"; hold time 9; connect delay time 1; connect retry time 1; error wait time 1,2; ipv4 { import all; export none; }; }
protocol bgp gtsm { local 10.79.0.22 as 65000; neighbor 10.79.0.21 as 65000; ttl security on; hold time 9; connect delay time 1; connect retry time 1; error wait time 1,2; ipv4 { import all; export none; }; }
`;

t.test('TCP MD5 and GTSM with BIRD 2', { skip, timeout: 60_000 }, async (t) => {
  const pair = makeNsPair(t, 'md', {
    a4: ['10.79.0.1/24', '10.79.0.11/24', '10.79.0.21/24'],
    b4: ['10.79.0.2/24', '10.79.0.12/24', '10.79.0.22/24'],
  });
  const listener = new BgpListener({ address: '0.0.0.0', port: 179, netns: pair.a.path });
  await listener.start();
  t.teardown(() => listener.stop());
  const mk = (address: string, localAddress: string, sec: { password?: string; ttlSecurity?: number }) => {
    const s = new BgpSession({
      address,
      localAddress,
      localAsn: 65000,
      peerAsn: 65000,
      routerId: '10.79.0.1',
      holdTime: 9,
      connectRetryTime: 1,
      idleHoldTime: 1,
      netns: pair.a.path,
      ...sec,
    });
    const states = new Set<BgpState>();
    s.on('state', (st: BgpState) => states.add(st));
    listener.add(s);
    t.teardown(() => s.stop());
    return { s, states };
  };
  const good = mk('10.79.0.2', '10.79.0.1', { password: 's3cret' });
  const bad = mk('10.79.0.12', '10.79.0.11', { password: 'wrong' });
  const gtsm = mk('10.79.0.22', '10.79.0.21', { ttlSecurity: 1 });
  const bird = await startBird(t, { netns: pair.b.name, config: conf('s3cret') });
  for (const p of [good, bad, gtsm]) p.s.start();

  t.ok(await bird.waitEstablished('good', 15_000), 'right key: BIRD Established');
  t.ok(good.s.established, 'right key: tabby Established');
  t.ok(await bird.waitEstablished('gtsm', 15_000), 'GTSM: BIRD (ttl security on) Established');
  t.ok(gtsm.s.established, 'GTSM: tabby Established');
  // Give the wrong-key session several connect attempts both ways.
  await new Promise((r) => setTimeout(r, 4000));
  t.notOk(
    bad.states.has('OpenSent') || bad.states.has('OpenConfirm') || bad.states.has('Established'),
    `wrong key: tabby never reached OpenSent (states seen: ${[...bad.states].join(', ')})`,
  );
  t.notMatch(await bird.protocolState('bad'), /Established|OpenSent|OpenConfirm/, 'wrong key: BIRD never past Connect/Active');
  t.match(bad.s.status().info, /^(Connect|Active)/);
});
