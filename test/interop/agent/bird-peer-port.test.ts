// BGPPeer peerIP with a port ("172.31.1.1:1179", Calico's syntax) dials that port: a passive BIRD 2
// listening on 1179 only reaches Established when tabby-node connects there.
import t from 'tap';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, nodeIp, until } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';

const skip = labSkipReason() ?? (haveBird() ? false : 'bird2 not installed (bird, birdc)');

t.test('peerIP ip:port: tabby dials the peer on that port', { skip }, async (t) => {
  const lab = await agentLab(t, 'pp', { nodes: 1, mode: 'routed' });
  const routerIp = '172.31.1.1';
  const bird = await startBird(t, {
    netns: lab.state.routerNetns!,
    config: `router id ${routerIp};
protocol device {}
protocol bgp tabby {
  local ${routerIp} port 1179 as 65000;
  neighbor ${nodeIp(lab, 'node-1')} as 64512;
  direct;
  passive on;
  ipv4 { import all; export none; };
}
`,
  });
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  try {
    await new ResourceStore(ds).create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: `${routerIp}:1179`, asNumber: 65000 },
    } as never);
  } finally {
    await ds.close();
  }
  t.ok(await bird.waitEstablished('tabby', 30_000), 'BIRD (passive, port 1179): Established');
  t.ok(
    await until(async () => (await lab.agentStatus('node-1'))?.peers.find((p) => p.address === routerIp)?.state === 'Established', 10_000),
    'tabby: Established with 172.31.1.1 (port 1179)',
  );
});
