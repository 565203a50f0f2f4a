// A real BIRD 2 as an external global BGPPeer of a tabby lab (eBGP, AS 65000, in the lab's router
// namespace at 172.31.1.1): it learns every node's block with that node as next hop, and a ToR prefix
// it announces reaches every node's kernel (`via 172.31.1.1`, outside every pool → plain route).
import t from 'tap';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, routeTo, until, blockOf, nodeIp, tabbyctl } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';

const skip = labSkipReason() ?? (haveBird() ? false : 'bird2 not installed (bird, birdc)');
const TOR = '198.51.100.0/24';

t.test('BIRD 2 as an external global BGPPeer learns every block', { skip }, async (t) => {
  const lab = await agentLab(t, 'b', { nodes: 2, mode: 'routed' });
  t.ok((await lab.waitForBgp(40_000)).ok, 'mesh Established');
  const routerIp = '172.31.1.1';
  const nodes = ['node-1', 'node-2'];
  const neighbors = nodes
    .map(
      (n, i) => `protocol bgp tabby${i + 1} {
  local ${routerIp} as 65000;
  neighbor ${nodeIp(lab, n)} as 64512;
  direct;
  ipv4 { import all; export where proto = "tor"; };
}`,
    )
    .join('\n');
  const bird = await startBird(t, {
    netns: lab.state.routerNetns!,
    config: `router id ${routerIp};
protocol device {}
protocol static tor { ipv4; route ${TOR} blackhole; }
${neighbors}
`,
  });
  // The BGPPeer, written by "another writer" while the agents run: picked up live.
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  try {
    await new ResourceStore(ds).create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: routerIp, asNumber: 65000 },
    } as never);
  } finally {
    await ds.close();
  }

  for (const i of [1, 2]) t.ok(await bird.waitEstablished(`tabby${i}`, 30_000), `BIRD: tabby${i} Established`);
  for (const n of nodes) {
    const blk = await blockOf(lab, n);
    const seen = await until(async () => {
      const out = await bird.birdc(`show route ${blk} all`);
      return out.includes(blk) && out.includes(`via ${nodeIp(lab, n)}`) ? out : undefined;
    }, 15_000);
    t.ok(seen, `BIRD has ${blk} via ${nodeIp(lab, n)}`);
    t.match(seen ?? '', /BGP\.as_path: 64512/, 'AS path is the cluster AS');
    const tor = await until(() => routeTo(lab.node(n).netns, TOR), 15_000);
    t.match(tor, { gateway: routerIp, protocol: '81' }, `${n}: ToR prefix ${TOR} via ${routerIp} in the kernel`);
  }
  const all = await bird.birdc('show route protocol tabby1');
  const prefixes = [...all.matchAll(/^(\d+\.\d+\.\d+\.\d+\/\d+)/gm)].map((m) => m[1]!);
  t.ok(prefixes.length >= 2, `tabby1 sent ${prefixes.join(', ')}`);
  t.same(
    prefixes.filter((p) => !p.startsWith('10.244.')),
    [],
    'only pool prefixes exported: no host subnet',
  );
  const st = await tabbyctl(lab, 'node-1', 'node', 'status');
  t.match(
    st.stdout,
    new RegExp(`\\| ${routerIp.replace(/\./g, '\\.')} +\\| global +\\| up +\\|`),
    'node status: the BIRD peer is a global peer, up',
  );
});
