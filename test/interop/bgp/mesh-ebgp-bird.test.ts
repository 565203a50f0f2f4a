// eBGP rules with a real BIRD 2: tabby A (AS 65001) peers eBGP with BIRD (AS 65002) and iBGP with
// tabby B. BIRD sees A's and B's routes with AS_PATH 65001 and next hop A (prepend + next-hop-self);
// B sees BIRD's route with next hop BIRD (unchanged on eBGP→iBGP), AS_PATH 65002, LOCAL_PREF 100;
// nothing BIRD sent is sent back to it.
import t from 'tap';
import { BgpSpeaker, tcpSessions } from '../../../src/bgp/index.js';
import { isRoot, waitFor } from '../../helpers/netns.js';
import { haveBird, startBird } from '../../helpers/bird.js';
import { makeStar, birdConfig } from './rr-lab.js';

const skip = !isRoot() ? 'needs root (network namespaces)' : !haveBird() ? 'bird2 not installed' : false;

t.test('eBGP with BIRD 2: prepend, next-hop-self, eBGP→iBGP next hop kept', { skip }, async (t) => {
  const [n1, n2, n3] = makeStar(t, 'eb', 74, 3);
  const a = n1!,
    b = n2!,
    br = n3!;
  const bird = await startBird(t, {
    netns: br.name,
    config: birdConfig({
      routerId: br.address,
      asn: 65002,
      local: br.address,
      neighbors: [{ address: a.address, asn: 65001 }],
      routes: ['10.142.0.0/24'],
    }),
  });
  const sa = new BgpSpeaker({ asn: 65001, routerId: a.address, listenAddress: a.address, sessions: tcpSessions({ netns: a.path }) });
  sa.addPeer({ address: br.address, asn: 65002, localAddress: a.address, families: ['ipv4'], holdTime: 30 });
  sa.addPeer({ address: b.address, asn: 65001, localAddress: a.address, families: ['ipv4'], holdTime: 30 });
  const sb = new BgpSpeaker({ asn: 65001, routerId: b.address, listenAddress: b.address, sessions: tcpSessions({ netns: b.path }) });
  sb.addPeer({ address: a.address, asn: 65001, localAddress: b.address, families: ['ipv4'], holdTime: 30 });
  t.teardown(() => Promise.all([sa.stop(), sb.stop()]));
  await sa.start();
  await sb.start();
  sa.originate('10.141.1.0/24');
  sb.originate('10.141.2.0/24');
  t.ok(await bird.waitEstablished('p1', 30_000), 'BIRD: eBGP Established');
  const seen = await waitFor(
    async () => {
      const o = await bird.birdc('show route all 10.141.2.0/24').catch(() => '');
      return o.includes('as_path') ? o : '';
    },
    20_000,
    200,
  );
  t.match(seen, /via 10\.74\.0\.1/, "BIRD: B's route via A (next-hop-self toward eBGP)");
  t.match(seen, /BGP\.as_path:\s+65001\s*\n/, 'BIRD: AS_PATH = 65001 (prepended once)');
  t.match(await bird.birdc('show route all 10.141.1.0/24'), /BGP\.as_path:\s+65001\s*\n/, "BIRD: A's own route, AS_PATH 65001");
  t.ok(await waitFor(() => !!sb.locRib().get('10.142.0.0/24'), 20_000), "B learned BIRD's route through A");
  const r = sb.locRib().get('10.142.0.0/24')!;
  t.same(r.nextHops, [br.address], 'eBGP → iBGP: next hop unchanged');
  t.same(r.attrs.asPath, [{ type: 2, asns: [65002] }]);
  t.equal(r.attrs.localPref, 100, 'LOCAL_PREF added toward iBGP');
  t.equal(sa.peers().find((p) => p.address === br.address)!.prefixesAdvertised, 2, "A sends BIRD only A's and B's routes, not BIRD's own");
});
