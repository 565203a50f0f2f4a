// tabby as a route reflector (RFC 4456) with a BIRD 2 client and a GoBGP client, each in its own
// network namespace on a bridge. Each client learns the other's route through tabby with
// ORIGINATOR_ID = the originating client and CLUSTER_LIST = tabby's cluster ID, and the next hop of
// the originator — checked with `birdc show route all` and `gobgp global rib -j`.
import t from 'tap';
import { BgpSpeaker, tcpSessions } from '../../../src/bgp/index.js';
import { isRoot, waitFor } from '../../helpers/netns.js';
import { haveBird, startBird } from '../../helpers/bird.js';
import { gobgpConfig, haveGobgp, startGobgp } from '../../helpers/gobgp.js';
import { makeStar, birdConfig } from './rr-lab.js';

const skip = !isRoot()
  ? 'needs root (network namespaces)'
  : !haveBird()
    ? 'bird2 not installed'
    : !haveGobgp()
      ? 'gobgpd not installed'
      : false;
const CLUSTER = '10.200.200.200';

t.test('tabby RR with BIRD 2 and GoBGP clients', { skip }, async (t) => {
  const [rrNs, birdNs, gobgpNs] = makeStar(t, 'rr', 66, 3);
  const rr = rrNs!,
    b = birdNs!,
    g = gobgpNs!;
  const bird = await startBird(t, {
    netns: b.name,
    config: birdConfig({
      routerId: b.address,
      asn: 65000,
      local: b.address,
      neighbors: [{ address: rr.address, asn: 65000 }],
      routes: ['10.102.0.0/24'],
    }),
  });
  const gobgp = await startGobgp(t, {
    netns: g.name,
    config: gobgpConfig({
      asn: 65000,
      routerId: g.address,
      localAddressList: [g.address],
      neighbors: [{ address: rr.address, peerAs: 65000, localAddress: g.address, connectRetry: 2, holdTime: 30, keepaliveInterval: 10 }],
    }),
  });
  const speaker = new BgpSpeaker({
    asn: 65000,
    routerId: rr.address,
    clusterId: CLUSTER,
    listenAddress: rr.address,
    sessions: tcpSessions({ netns: rr.path }),
  });
  for (const c of [b, g])
    speaker.addPeer({
      address: c.address,
      asn: 65000,
      localAddress: rr.address,
      routeReflectorClient: true,
      families: ['ipv4'],
      holdTime: 30,
    });
  t.teardown(() => speaker.stop());
  await speaker.start();
  speaker.originate('10.101.0.0/24');
  t.ok(await bird.waitEstablished('p1', 30_000), 'BIRD: Established with tabby');
  t.ok(await gobgp.waitEstablished(rr.address, 30_000), 'GoBGP: Established with tabby');
  await gobgp.gobgp('global', 'rib', 'add', '10.103.0.0/24', '-a', 'ipv4');

  // BIRD learns GoBGP's route, reflected.
  const birdRoute = await waitFor(
    async () => {
      const out = await bird.birdc('show route all 10.103.0.0/24').catch(() => '');
      return out.includes('BGP.cluster_list') ? out : '';
    },
    20_000,
    200,
  );
  t.match(birdRoute, /via 10\.66\.0\.3/, 'BIRD: next hop is GoBGP (unchanged by reflection)');
  t.match(birdRoute, /BGP\.originator_id:\s+10\.66\.0\.3/, 'BIRD: ORIGINATOR_ID = GoBGP');
  t.match(birdRoute, new RegExp(`BGP\\.cluster_list:\\s+${CLUSTER.replace(/\./g, '\\.')}`), 'BIRD: CLUSTER_LIST = tabby cluster ID');
  const birdOwn = await bird.birdc('show route all 10.101.0.0/24');
  t.match(birdOwn, /via 10\.66\.0\.1/, "BIRD: tabby's own route, next hop tabby");
  t.notMatch(birdOwn, /originator_id/, 'BIRD: no ORIGINATOR_ID on a route tabby originates');

  // GoBGP learns BIRD's route, reflected.
  type RibJson = Record<string, { attrs: { type: number; value?: unknown; nexthop?: string }[]; nexthop?: string }[]>;
  const rib = await waitFor(
    async () => {
      const j = await gobgp.gobgpJson<RibJson>('global', 'rib', '-a', 'ipv4').catch(() => ({}) as RibJson);
      return j['10.102.0.0/24'] ? j : undefined;
    },
    20_000,
    200,
  );
  const path = rib?.['10.102.0.0/24']?.[0];
  t.ok(path, "GoBGP has BIRD's route");
  const attr = (type: number) => path?.attrs.find((a) => a.type === type);
  t.equal(attr(9)?.value, '10.66.0.2', 'GoBGP: ORIGINATOR_ID = BIRD');
  t.same(attr(10)?.value, [CLUSTER], 'GoBGP: CLUSTER_LIST = tabby cluster ID');
  t.equal(attr(3)?.nexthop, '10.66.0.2', 'GoBGP: next hop is BIRD');
  t.ok(rib?.['10.101.0.0/24'], "GoBGP has tabby's own route");

  // tabby itself: both client routes in its Loc-RIB, counters per peer.
  t.ok(speaker.locRib().get('10.102.0.0/24') && speaker.locRib().get('10.103.0.0/24'));
  for (const st of speaker.peers()) t.equal(st.prefixesReceived, 1, `one route from ${st.address}`);
});
