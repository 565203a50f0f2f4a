// Per-peer eBGP controls and pool export as BIRD 2 sees them: a 2-node lab (mesh), node-1 peers with
// BIRD (AS 65000, 172.31.1.1) through one node-specific BGPPeer:
//   - localASNumber 65100: BIRD, configured for AS 65100, accepts the session; node-1's block arrives
//     with AS path 65100;
//   - nextHopMode Keep: node-2's block (learned over the mesh) reaches BIRD via node-2, the original
//     next hop; switched to Auto it comes via node-1;
//   - IPPool disableBGPExport: BIRD loses both blocks.
import t from 'tap';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, until, blockOf, nodeIp } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';

const skip = labSkipReason() ?? (haveBird() ? false : 'bird2 not installed (bird, birdc)');
const BIRD_IP = '172.31.1.1';

t.test('localASNumber, nextHopMode Keep toward eBGP, disableBGPExport (BIRD view)', { skip }, async (t) => {
  const lab = await agentLab(t, 'eb', { nodes: 2, mode: 'routed' });
  t.ok((await lab.waitForBgp(40_000)).ok, 'mesh Established');
  const n1 = nodeIp(lab, 'node-1');
  const n2 = nodeIp(lab, 'node-2');
  const bird = await startBird(t, {
    netns: lab.state.routerNetns!,
    config: `router id ${BIRD_IP};
protocol device {}
protocol bgp n1 {
  local ${BIRD_IP} as 65000;
  neighbor ${n1} as 65100;
  direct;
  ipv4 { import all; export none; };
}
`,
  });
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const store = new ResourceStore(ds);
  const peer = (nextHopMode: string) =>
    store.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { node: 'node-1', peerIP: BIRD_IP, asNumber: 65000, localASNumber: 65100, nextHopMode },
    } as never);
  await peer('Keep');
  t.ok(await bird.waitEstablished('n1', 40_000), 'BIRD (expecting AS 65100): Established');
  const [b1, b2] = [await blockOf(lab, 'node-1'), await blockOf(lab, 'node-2')];

  await t.test('localASNumber: our AS on this session is 65100', async (t) => {
    const r = await until(async () => (await bird.routes(b1))[0], 20_000);
    t.same(r?.asPath, [65100], `${b1}: AS path 65100`);
    t.equal(r?.via, n1);
  });

  await t.test("nextHopMode Keep: node-2's block via node-2; Auto: via node-1", async (t) => {
    const k = await until(async () => (await bird.routes(b2))[0], 20_000);
    t.equal(k?.via, n2, `Keep: ${b2} via ${n2} (node-2, the original next hop)`);
    t.same(k?.asPath, [65100], 'through node-1: AS path 65100');
    await peer('Auto');
    const a = await until(async () => {
      const x = (await bird.routes(b2))[0];
      return x?.via === n1 ? x : undefined;
    }, 20_000);
    t.equal(a?.via, n1, `Auto: ${b2} via ${n1} (node-1, next hop self toward eBGP)`);
  });

  await t.test('IPPool disableBGPExport: the blocks are withdrawn', async (t) => {
    const pools = await store.list('IPPool');
    const pool = pools.items.find((p) => p.spec.cidr.includes('.'))!;
    await store.update({ ...pool, spec: { ...pool.spec, disableBGPExport: true } } as never);
    const gone = await until(
      async () => ((await bird.routes(b1)).length === 0 && (await bird.routes(b2)).length === 0 ? true : undefined),
      20_000,
    );
    t.ok(gone, `BIRD no longer has ${b1} nor ${b2}`);
  });
});
