// Interface (device) routes on the wire, as BIRD 2 sees them: a 1-node tabby lab (real tabby-node)
// with BIRD 2 (AS 65000) in the lab's router namespace, configured only through Calico resources.
// In node-1's namespace two veth pairs (this kernel has no dummy) carry 192.168.77.1/24 on `lan0`
// and 192.168.78.1/24 on `lanign0`; BGPConfiguration ignoredInterfaces names `lanign*`; BGPFilter
// `lans` on the BIRD peer accepts exportV4 `interface: lan*`. BIRD must see 192.168.77.0/24 via the
// node and not 192.168.78.0/24 (ignored) nor the node's own uplink subnet (no rule accepts it);
// deleting the address withdraws the route.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, until, nodeIp, blockOf } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';

const skip = labSkipReason() ?? (haveBird() ? false : 'bird2 not installed (bird, birdc)');
const BIRD_IP = '172.31.1.1';
const LAN = '192.168.77.0/24';
const IGNORED = '192.168.78.0/24';

t.test('BGPFilter export interface Accept: BIRD 2 sees the matching device route, not the ignored one', { skip }, async (t) => {
  const lab = await agentLab(t, 'if', { nodes: 1, mode: 'routed' });
  const ns = lab.node('node-1').netns;
  const ip = (...a: string[]) => execFileSync('ip', ['-n', ns, ...a]);
  ip('link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'lan0p');
  ip('link', 'add', 'lanign0', 'type', 'veth', 'peer', 'name', 'lanign0p');
  for (const l of ['lan0', 'lan0p', 'lanign0', 'lanign0p']) ip('link', 'set', l, 'up');
  ip('addr', 'add', '192.168.77.1/24', 'dev', 'lan0');
  ip('addr', 'add', '192.168.78.1/24', 'dev', 'lanign0');
  const node = nodeIp(lab, 'node-1');
  const uplinkNet = `${node.split('.').slice(0, 3).join('.')}.0/${lab.node('node-1').address.split('/')[1]}`;

  const bird = await startBird(t, {
    netns: lab.state.routerNetns!,
    config: `router id ${BIRD_IP};
protocol device {}
protocol bgp tabby1 {
  local ${BIRD_IP} as 65000;
  strict bind yes;
  neighbor ${node} as 64512;
  direct;
  ipv4 { import all; export none; };
}
`,
  });
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const store = new ResourceStore(ds);
  const apply = (doc: object) => store.apply(doc as never);
  await apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { ignoredInterfaces: ['lanign*'] },
  });
  await apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPFilter',
    metadata: { name: 'lans' },
    spec: { exportV4: [{ action: 'Accept', interface: 'lan*' }] },
  });
  await apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerIP: BIRD_IP, asNumber: 65000, filters: ['lans'] },
  });
  t.ok(await bird.waitEstablished('tabby1', 30_000), 'BIRD: tabby1 Established');

  const lan = await until(async () => (await bird.routes(LAN)).find((r) => r.via === node), 20_000);
  t.ok(lan, `BIRD has ${LAN} via ${node} (lan0 matches lan*)`);
  const block = await blockOf(lab, 'node-1');
  t.ok(await until(async () => (await bird.routes(block)).length > 0, 20_000), `BIRD has the pool block ${block} too`);
  t.same(await bird.routes(IGNORED), [], `${IGNORED} (lanign0, in ignoredInterfaces) is not advertised`);
  t.same(await bird.routes(uplinkNet), [], `the uplink subnet ${uplinkNet} (no rule accepts it) is not advertised`);

  const t0 = Date.now();
  ip('addr', 'del', '192.168.77.1/24', 'dev', 'lan0');
  const gone = await until(async () => ((await bird.routes(LAN)).length === 0 ? true : undefined), 20_000, 50);
  t.ok(gone, `${LAN} withdrawn from BIRD ${Date.now() - t0} ms after the address was deleted`);
  t.comment(`address deleted → withdrawn in BIRD: ${Date.now() - t0} ms (periodic list every 2 s)`);
});
