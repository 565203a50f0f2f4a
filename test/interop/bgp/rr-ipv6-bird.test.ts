// tabby as a route reflector over IPv6 sessions with two BIRD 2 clients (IPv6 unicast in
// MP_REACH_NLRI): each client learns the other's IPv6 route with ORIGINATOR_ID, CLUSTER_LIST and
// the originator's (global) next hop; tabby's own IPv6 route arrives with tabby's next hop.
import t from 'tap';
import { BgpSpeaker, tcpSessions } from '../../../src/bgp/index.js';
import { isRoot, waitFor } from '../../helpers/netns.js';
import { haveBird, startBird } from '../../helpers/bird.js';
import { makeStar, birdConfig } from './rr-lab.js';

const skip = !isRoot() ? 'needs root (network namespaces)' : !haveBird() ? 'bird2 not installed' : false;

t.test('tabby RR over IPv6 with two BIRD 2 clients', { skip }, async (t) => {
  const [n1, n2, n3] = makeStar(t, 'r6', 75, 3, { ipv6: true });
  const rr = n1!,
    c1 = n2!,
    c2 = n3!;
  const birds = await Promise.all(
    [
      [c1, 'fd00:151::/48'],
      [c2, 'fd00:152::/48'],
    ].map(([c, route]) => {
      const x = c as typeof c1;
      return startBird(t, {
        netns: x.name,
        config: birdConfig({
          routerId: x.address,
          asn: 65000,
          local: x.address6,
          family: 'ipv6',
          neighbors: [{ address: rr.address6, asn: 65000 }],
          routes: [route as string],
        }),
      });
    }),
  );
  const s = new BgpSpeaker({
    asn: 65000,
    routerId: rr.address,
    clusterId: '10.75.75.75',
    listenAddress: rr.address6,
    sessions: tcpSessions({ netns: rr.path }),
  });
  for (const c of [c1, c2])
    s.addPeer({ address: c.address6, asn: 65000, localAddress: rr.address6, routeReflectorClient: true, families: ['ipv6'], holdTime: 30 });
  t.teardown(() => s.stop());
  await s.start();
  s.originate('fd00:150::/48');
  for (const b of birds) t.ok(await b.waitEstablished('p1', 30_000), 'BIRD client Established over IPv6');
  const out = await waitFor(
    async () => {
      const o = await birds[1]!.birdc('show route all fd00:151::/48').catch(() => '');
      return o.includes('cluster_list') ? o : '';
    },
    20_000,
    200,
  );
  t.match(out, /via fd00:75::2/, 'client 2: next hop = client 1 (unchanged by reflection)');
  t.match(out, /BGP\.originator_id:\s+10\.75\.0\.2/, 'client 2: ORIGINATOR_ID = client 1');
  t.match(out, /BGP\.cluster_list:\s+10\.75\.75\.75/, 'client 2: CLUSTER_LIST = tabby cluster');
  t.match(await birds[0]!.birdc('show route all fd00:152::/48'), /via fd00:75::3/, "client 1 has client 2's route");
  t.match(await birds[0]!.birdc('show route all fd00:150::/48'), /via fd00:75::1/, "tabby's own IPv6 route, next hop tabby");
  t.ok(s.locRib().get('fd00:151::/48') && s.locRib().get('fd00:152::/48'), "both in tabby's Loc-RIB");
});
