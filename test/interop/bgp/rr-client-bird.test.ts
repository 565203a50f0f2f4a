// tabby as a route-reflector client of a BIRD 2 route reflector: two tabby speakers (own netns each)
// and BIRD as RR (`rr client`, `rr cluster id`). A route originated by one tabby reaches the other
// through BIRD with ORIGINATOR_ID/CLUSTER_LIST set and the originator's next hop; BIRD shows both.
import t from 'tap';
import { BgpSpeaker, tcpSessions } from '../../../src/bgp/index.js';
import { isRoot, waitFor } from '../../helpers/netns.js';
import { haveBird, startBird } from '../../helpers/bird.js';
import { makeStar, birdConfig } from './rr-lab.js';

const skip = !isRoot() ? 'needs root (network namespaces)' : !haveBird() ? 'bird2 not installed' : false;

t.test('tabby speakers as clients of a BIRD 2 route reflector', { skip }, async (t) => {
  const [n1, n2, n3] = makeStar(t, 'rc', 67, 3);
  const a = n1!,
    b = n2!,
    r = n3!;
  const bird = await startBird(t, {
    netns: r.name,
    config: birdConfig({
      routerId: r.address,
      asn: 65000,
      local: r.address,
      rrClusterId: '10.9.9.9',
      neighbors: [
        { address: a.address, asn: 65000, rrClient: true },
        { address: b.address, asn: 65000, rrClient: true },
      ],
      routes: ['10.113.0.0/24'],
    }),
  });
  const speakers = [a, b].map((x) => {
    const s = new BgpSpeaker({ asn: 65000, routerId: x.address, listenAddress: x.address, sessions: tcpSessions({ netns: x.path }) });
    s.addPeer({ address: r.address, asn: 65000, localAddress: x.address, families: ['ipv4'], holdTime: 30 });
    return s;
  });
  t.teardown(() => Promise.all(speakers.map((s) => s.stop())));
  for (const s of speakers) await s.start();
  const [sa, sb] = speakers as [BgpSpeaker, BgpSpeaker];
  sa.originate('10.111.0.0/24');
  sb.originate('10.112.0.0/24');
  t.ok((await bird.waitEstablished('p1', 30_000)) && (await bird.waitEstablished('p2', 30_000)), 'BIRD: both clients Established');
  t.ok(
    await waitFor(() => sb.locRib().get('10.111.0.0/24') && sa.locRib().get('10.112.0.0/24') && sa.locRib().get('10.113.0.0/24'), 20_000),
    'routes reflected to both tabby clients',
  );
  const atB = sb.locRib().get('10.111.0.0/24')!;
  t.equal(atB.attrs.originatorId, a.address, 'ORIGINATOR_ID = the originating tabby');
  t.same(atB.attrs.clusterList, ['10.9.9.9'], "CLUSTER_LIST = BIRD's cluster ID");
  t.same(atB.nextHops, [a.address], 'next hop = the originator');
  t.equal(atB.source, r.address, 'learned from the reflector');
  t.equal(sa.locRib().get('10.111.0.0/24')?.source, '', 'own route stays local (a reflected copy would be dropped by ORIGINATOR_ID)');
  const out = await bird.birdc('show route all 10.111.0.0/24');
  t.match(out, /via 10\.67\.0\.1/, 'BIRD: tabby route with tabby next hop');
  t.match(await bird.birdc('show route all 10.112.0.0/24'), /via 10\.67\.0\.2/);
  t.equal(sa.peers()[0]!.prefixesReceived, 2, "a receives b's route and BIRD's, not its own back");
});
