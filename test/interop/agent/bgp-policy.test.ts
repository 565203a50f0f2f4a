// BGP policy on the wire, seen by the peers themselves: a 2-node tabby lab (real tabby-node
// processes) with BIRD 2 (AS 65000, 172.31.1.1) and GoBGP (AS 65001, 172.31.1.2) in the lab's
// router namespace, both global BGPPeers, configured only through Calico resources:
//   - BGPConfiguration: serviceClusterIPs 10.96.0.0/12 (advertised by every node) and
//     prefixAdvertisements giving the pool a standard and a large community;
//   - BGPFilter `tor-in` on the BIRD peer: importV4 rejects 198.51.100.0/24 — absent from every
//     node's kernel while BIRD's other prefix, 203.0.113.0/24, is installed;
//   - BGPFilter `fabric-out` on the GoBGP peer: exportV4 prepends 64512 64512 and adds 65001:5 to
//     pool routes — seen in `gobgp global rib -j`;
//   - then `tor-out` attached to the BIRD peer rejects the service range: BIRD withdraws it from
//     both nodes, timed, and neither side's session flaps.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import type { PeerStatusJson } from '../../../src/agent/status-types.js';
import { agentLab, labSkipReason, routeTo, until, blockOf, nodeIp, tabbyctl, statusOf } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';
import { startGobgp, haveGobgp, gobgpConfig } from '../../helpers/gobgp.js';

const skip = labSkipReason() ?? (haveBird() ? (haveGobgp() ? false : 'gobgpd not installed') : 'bird2 not installed (bird, birdc)');
const BIRD_IP = '172.31.1.1';
const GOBGP_IP = '172.31.1.2';
const REJECTED = '198.51.100.0/24';
const ALLOWED = '203.0.113.0/24';
const SERVICES = '10.96.0.0/12';
const COMM = (64512 * 65536 + 100) >>> 0;

t.test('BGPFilter, communities and service ranges as BIRD 2 and GoBGP see them', { skip }, async (t) => {
  const lab = await agentLab(t, 'p', { nodes: 2, mode: 'routed' });
  t.ok((await lab.waitForBgp(40_000)).ok, 'mesh Established');
  const nodes = ['node-1', 'node-2'];
  const router = lab.state.routerNetns!;
  // A second address on the router's leg for GoBGP (BIRD keeps .1; both bind only their own).
  execFileSync('ip', ['-n', router, 'addr', 'add', `${GOBGP_IP}/24`, 'dev', 'r-a']);

  const bird = await startBird(t, {
    netns: router,
    config: `router id ${BIRD_IP};
protocol device {}
protocol static tor { ipv4; route ${REJECTED} blackhole; route ${ALLOWED} blackhole; }
${nodes
  .map(
    (n, i) => `protocol bgp tabby${i + 1} {
  local ${BIRD_IP} as 65000;
  strict bind yes;
  neighbor ${nodeIp(lab, n)} as 64512;
  direct;
  ipv4 { import all; export where proto = "tor"; };
}`,
  )
  .join('\n')}
`,
  });
  const gobgp = await startGobgp(t, {
    netns: router,
    config: gobgpConfig({
      asn: 65001,
      routerId: GOBGP_IP,
      localAddressList: [GOBGP_IP],
      neighbors: nodes.map((n) => ({ address: nodeIp(lab, n), peerAs: 64512, localAddress: GOBGP_IP })),
    }),
  });

  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const store = new ResourceStore(ds);
  const apply = (doc: object) => store.apply(doc as never);
  await apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPFilter',
    metadata: { name: 'tor-in' },
    spec: { importV4: [{ action: 'Reject', matchOperator: 'Equal', cidr: REJECTED }] },
  });
  await apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPFilter',
    metadata: { name: 'fabric-out' },
    spec: {
      exportV4: [
        {
          action: 'Accept',
          matchOperator: 'In',
          cidr: '10.244.0.0/16',
          operations: [{ prependASPath: { prefix: [64512, 64512] } }, { addCommunity: { value: '65001:5' } }],
        },
      ],
    },
  });
  await apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: {
      serviceClusterIPs: [{ cidr: SERVICES }],
      communities: [{ name: 'pods', value: '64512:100' }],
      prefixAdvertisements: [{ cidr: '10.244.0.0/16', communities: ['pods', '64512:1:1'] }],
    },
  });
  await apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerIP: BIRD_IP, asNumber: 65000, filters: ['tor-in'] },
  });
  await apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'fabric' },
    spec: { peerIP: GOBGP_IP, asNumber: 65001, filters: ['fabric-out'] },
  });

  for (const i of [1, 2]) t.ok(await bird.waitEstablished(`tabby${i}`, 30_000), `BIRD: tabby${i} Established`);
  for (const n of nodes) t.ok(await gobgp.waitEstablished(nodeIp(lab, n), 30_000), `GoBGP: ${n} established`);

  await t.test('import filter: the rejected prefix is absent from every kernel, the other one installed', async (t) => {
    for (const n of nodes) {
      const ok = await until(() => routeTo(lab.node(n).netns, ALLOWED), 20_000);
      t.match(ok, { gateway: BIRD_IP, protocol: '81' }, `${n}: ${ALLOWED} via ${BIRD_IP} in the kernel`);
      t.equal(routeTo(lab.node(n).netns, REJECTED), undefined, `${n}: ${REJECTED} (rejected by tor-in importV4[0]) is not in the kernel`);
    }
    const rx = await tabbyctl(lab, 'node-1', 'bgp', 'routes', '--peer', BIRD_IP, '--received');
    t.equal(rx.code, 0, rx.stderr);
    t.match(
      rx.stdout,
      new RegExp(
        `\\| ${REJECTED.replace(/\./g, '\\.')} +\\| rejected +\\| ${BIRD_IP.replace(/\./g, '\\.')} +\\| 65000 +\\| +\\| tor-in importV4\\[0\\] Reject \\|`,
      ),
      'tabbyctl bgp routes --received names the rule',
    );
    // polled: the counts are the speaker's, read through /status (the last read is what is checked)
    let p: PeerStatusJson | undefined;
    await until(async () => {
      p = (await statusOf(lab, 'node-1'))?.peers.find((x) => x.address === BIRD_IP) ?? p;
      return p?.prefixesReceived === 2 && p.prefixesAccepted === 1;
    }, 20_000);
    t.match(p, { prefixesReceived: 2, prefixesAccepted: 1 }, 'node status: received 2, accepted 1');
    const text = await tabbyctl(lab, 'node-1', 'node', 'status');
    t.match(text.stdout, new RegExp(`\\| ${BIRD_IP.replace(/\./g, '\\.')} +\\| 2 +\\| 1 +\\| \\d+ +\\|`), 'node status prints the counts');
  });

  await t.test('communities on originated routes and the service range from every node (BIRD view)', async (t) => {
    for (const n of nodes) {
      const blk = await blockOf(lab, n);
      const r = await until(async () => (await bird.routes(blk)).find((x) => x.via === nodeIp(lab, n)), 20_000);
      t.ok(r, `BIRD has ${blk} from ${n}`);
      t.same(r?.communities, ['(64512,100)'], `${blk}: BGP.community (64512,100) from prefixAdvertisements`);
      t.same(r?.largeCommunities, ['(64512, 1, 1)'], `${blk}: BGP.large_community`);
    }
    const svc = await until(async () => {
      const rs = await bird.routes(SERVICES);
      return rs.length === 2 ? rs : undefined;
    }, 20_000);
    t.same(svc?.map((r) => r.via).sort(), nodes.map((n) => nodeIp(lab, n)).sort(), `BIRD learned ${SERVICES} from every node`);
    t.same(svc?.[0]?.communities, [], 'the service range is outside the pool: no pool community');
  });

  await t.test('export operations: prepended AS path and added community (GoBGP view)', async (t) => {
    for (const n of nodes) {
      const blk = await blockOf(lab, n);
      const p = await until(async () => (await gobgp.rib()).find((x) => x.prefix === blk && x.nextHop === nodeIp(lab, n)), 20_000);
      t.ok(p, `GoBGP has ${blk} from ${n}`);
      t.same(p?.asPath, [64512, 64512, 64512], 'fabric-out prepends 64512 64512, then the eBGP prepend of 64512');
      t.same([...(p?.communities ?? [])].sort(), [COMM, (65001 * 65536 + 5) >>> 0].sort(), 'pool community + the one fabric-out adds');
    }
    const svc = await until(async () => (await gobgp.rib()).filter((x) => x.prefix === SERVICES), 20_000);
    t.same(svc?.[0]?.asPath, [64512], 'outside the filter cidr: default Accept, plain eBGP path');
    const adv = await tabbyctl(lab, 'node-1', 'bgp', 'routes', '--peer', GOBGP_IP, '-o', 'json');
    const rows = (JSON.parse(adv.stdout) as { routes: { prefix: string; decidedBy: string; state: string }[] }[])[0]!.routes;
    t.match(
      rows.find((r) => r.prefix === SERVICES),
      { state: 'advertised', decidedBy: 'default Accept' },
    );
    t.match(
      rows.find((r) => r.prefix.startsWith('10.244.') && r.state === 'advertised'),
      { decidedBy: 'fabric-out exportV4[0] Accept' },
    );
  });

  await t.test('an export filter change is on the wire within a second, no session flap', async (t) => {
    const birdBefore = await Promise.all([1, 2].map((i) => bird.protocolState(`tabby${i}`)));
    const tabbyBefore = (await statusOf(lab, 'node-1'))?.peers.find((p) => p.address === BIRD_IP)?.since;
    await apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPFilter',
      metadata: { name: 'tor-out' },
      spec: { exportV4: [{ action: 'Reject', matchOperator: 'In', cidr: SERVICES }] },
    });
    const t0 = process.hrtime.bigint();
    await apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: BIRD_IP, asNumber: 65000, filters: ['tor-in', 'tor-out'] },
    });
    const gone = await until(async () => ((await bird.routes(SERVICES)).length === 0 ? true : undefined), 20_000, 20);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    t.ok(gone, `BIRD no longer has ${SERVICES}`);
    t.comment(
      `export filter change → WITHDRAW seen in BIRD from both nodes: ${ms.toFixed(0)} ms (datastore write to birdc view; load ${(await import('node:os')).loadavg()[0]!.toFixed(1)})`,
    );
    t.ok(ms < 5000, `within 5 s even under load (measured ${ms.toFixed(0)} ms)`);
    const birdAfter = await Promise.all([1, 2].map((i) => bird.protocolState(`tabby${i}`)));
    t.same(birdAfter, birdBefore, 'BIRD: both sessions unchanged (same state and since)');
    t.equal((await statusOf(lab, 'node-1'))?.peers.find((p) => p.address === BIRD_IP)?.since, tabbyBefore, 'tabby: session not reset');
    for (const n of nodes) t.ok((await bird.routes(await blockOf(lab, n))).length >= 1, `BIRD still has ${n}'s block`);
    const why = await tabbyctl(lab, 'node-2', 'bgp', 'routes', '--peer', BIRD_IP);
    t.match(
      why.stdout,
      /\| 10\.96\.0\.0\/12 +\| not-advertised .*\| tor-out exportV4\[0\] Reject +\|/,
      'tabbyctl bgp routes says which rule held it back',
    );
    // GoBGP is another peer: still has the service range.
    t.ok(
      (await gobgp.rib()).some((x) => x.prefix === SERVICES),
      'GoBGP unaffected',
    );
  });
});
