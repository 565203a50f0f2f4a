// BGPPeer nextHopMode on routes a tabby route reflector reflects, seen in the clients' own RIBs: a lab
// with node-1 and rr-1 (tabby-node in route-reflector mode), BIRD 2 (172.31.1.1) and GoBGP (172.31.1.2)
// as iBGP clients of rr-1 (AS 64512), configured only through BGPPeers:
//   - `nextHopMode: Keep` toward BIRD: node-1's block reaches BIRD with node-1's address as next hop
//     (the originator's);
//   - `nextHopMode: Self` toward GoBGP: the same block, and BIRD's 203.0.113.0/24, reach GoBGP with
//     rr-1's address as next hop (BIRD's `next hop self`, which Calico writes for Self);
//   - node-1 (Auto) gets BIRD's route with BIRD's next hop (RFC 4456 §10: reflection keeps it);
//   - switching BIRD's peer to Self moves BIRD's next hop to rr-1 without resetting the session.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, routeTo, until, blockOf, nodeIp, statusOf } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';
import { startGobgp, haveGobgp, gobgpConfig } from '../../helpers/gobgp.js';

const skip = labSkipReason() ?? (haveBird() ? (haveGobgp() ? false : 'gobgpd not installed') : 'bird2 not installed (bird, birdc)');
const BIRD_IP = '172.31.1.1';
const GOBGP_IP = '172.31.1.2';
const BIRD_NET = '203.0.113.0/24';

t.test('nextHopMode Keep and Self on reflected routes (tabby route reflector; BIRD 2 and GoBGP clients)', { skip }, async (t) => {
  const lab = await agentLab(t, 'nh', { nodes: 1, routeReflectors: 1, mode: 'routed' });
  t.ok((await lab.waitForBgp(40_000)).ok, 'node-1 — rr-1 Established');
  const router = lab.state.routerNetns!;
  const rr = nodeIp(lab, 'rr-1');
  const n1 = nodeIp(lab, 'node-1');
  execFileSync('ip', ['-n', router, 'addr', 'add', `${GOBGP_IP}/24`, 'dev', 'r-a']);
  const bird = await startBird(t, {
    netns: router,
    config: `router id ${BIRD_IP};
protocol device {}
protocol static tor { ipv4; route ${BIRD_NET} blackhole; }
protocol bgp refl {
  local ${BIRD_IP} as 64512;
  strict bind yes;
  neighbor ${rr} as 64512;
  direct;
  ipv4 { import all; export where proto = "tor"; };
}
`,
  });
  const gobgp = await startGobgp(t, {
    netns: router,
    config: gobgpConfig({
      asn: 64512,
      routerId: GOBGP_IP,
      localAddressList: [GOBGP_IP],
      neighbors: [{ address: rr, peerAs: 64512, localAddress: GOBGP_IP }],
    }),
  });
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const store = new ResourceStore(ds);
  const peer = (name: string, peerIP: string, nextHopMode: string) =>
    store.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name },
      spec: { node: 'rr-1', peerIP, asNumber: 64512, nextHopMode },
    } as never);
  await peer('bird', BIRD_IP, 'Keep');
  await peer('gobgp', GOBGP_IP, 'Self');
  t.ok(await bird.waitEstablished('refl', 40_000), 'BIRD: rr-1 Established');
  t.ok(await gobgp.waitEstablished(rr, 40_000), 'GoBGP: rr-1 established');
  const blk = await blockOf(lab, 'node-1');

  await t.test('Keep: BIRD sees the originator (node-1) as next hop', async (t) => {
    const r = await until(async () => (await bird.routes(blk))[0], 30_000);
    t.equal(r?.via, n1, `BIRD: ${blk} via ${n1} (node-1), reflected by ${rr}`);
  });

  await t.test("Self: GoBGP sees the reflector's address as next hop", async (t) => {
    const p = await until(async () => (await gobgp.rib()).find((x) => x.prefix === blk), 30_000);
    t.equal(p?.nextHop, rr, `GoBGP: ${blk} next hop ${rr} (rr-1)`);
    const b = await until(async () => (await gobgp.rib()).find((x) => x.prefix === BIRD_NET), 30_000);
    t.equal(b?.nextHop, rr, `GoBGP: BIRD's ${BIRD_NET} next hop ${rr} (rr-1)`);
  });

  await t.test('Auto: a client node gets the reflected route with its original next hop', async (t) => {
    const k = await until(() => routeTo(lab.node('node-1').netns, BIRD_NET), 30_000);
    t.match(k, { gateway: BIRD_IP }, `node-1 kernel: ${BIRD_NET} via ${BIRD_IP}`);
  });

  await t.test('Keep → Self on the live session: BIRD now sees rr-1, no reset', async (t) => {
    const birdBefore = await bird.protocolState('refl');
    const since = (await statusOf(lab, 'rr-1'))?.peers.find((p) => p.address === BIRD_IP)?.since;
    await peer('bird', BIRD_IP, 'Self');
    const r = await until(async () => {
      const x = (await bird.routes(blk))[0];
      return x?.via === rr ? x : undefined;
    }, 20_000);
    t.equal(r?.via, rr, `BIRD: ${blk} via ${rr} now`);
    t.equal(await bird.protocolState('refl'), birdBefore, 'BIRD: session unchanged (same state and since)');
    t.equal((await statusOf(lab, 'rr-1'))?.peers.find((p) => p.address === BIRD_IP)?.since, since, 'tabby: session not reset');
  });
});
