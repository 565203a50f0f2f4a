// Interface (device) routes on the wire, as BIRD 2 sees them: a 1-node tabby lab (real tabby-node)
// with BIRD 2 (AS 65000) in the lab's router namespace, configured only through Calico resources.
// In node-1's namespace two veth pairs (this kernel has no dummy) carry 192.168.77.1/24 on `lan0`
// and 192.168.78.1/24 on `lanign0`; BGPConfiguration ignoredInterfaces names `lanign*`; BGPFilter
// `lans` on the BIRD peer accepts exportV4 `interface: lan*`. BIRD must see 192.168.77.0/24 via the
// node and not 192.168.78.0/24 (ignored) nor the node's own uplink subnet (no rule accepts it);
// deleting the address withdraws the route. Import: BIRD sends 203.0.113.0/24 with itself (on the
// node's uplink subnet) as next hop; an importV4 Reject naming `lan*` leaves it in the kernel, the
// same rule naming the uplink interface takes it out.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, until, nodeIp, blockOf, routeTo } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';

const skip = labSkipReason() ?? (haveBird() ? false : 'bird2 not installed (bird, birdc)');
const BIRD_IP = '172.31.1.1';
const LAN = '192.168.77.0/24';
const IGNORED = '192.168.78.0/24';
const LEARNED = '203.0.113.0/24';

t.test(
  'BGPFilter interface: BIRD 2 sees the matching device route, not the ignored one; import by next-hop interface',
  { skip },
  async (t) => {
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
protocol static tor { ipv4; route ${LEARNED} blackhole; }
protocol bgp tabby1 {
  local ${BIRD_IP} as 65000;
  strict bind yes;
  neighbor ${node} as 64512;
  direct;
  ipv4 { import all; export where proto = "tor"; };
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

    // Import: the interface of a learned route is the one whose subnet holds its next hop (BIRD_IP).
    const addrs = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'addr', 'show']).toString()) as {
      ifname: string;
      addr_info: { local: string }[];
    }[];
    const uplink = addrs.find((l) => l.addr_info.some((x) => x.local === node))!.ifname;
    t.match(await until(() => routeTo(ns, LEARNED), 20_000), { gateway: BIRD_IP }, `${LEARNED} via ${BIRD_IP} in the kernel`);
    const importRule = async (glob: string) =>
      apply({
        apiVersion: 'projectcalico.org/v3',
        kind: 'BGPFilter',
        metadata: { name: 'tor-in' },
        spec: { importV4: [{ action: 'Reject', interface: glob }] },
      });
    await importRule('lan*');
    await apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: BIRD_IP, asNumber: 65000, filters: ['lans', 'tor-in'] },
    });
    await new Promise((r) => setTimeout(r, 3000)); // a resync and an address list later
    t.match(routeTo(ns, LEARNED), { gateway: BIRD_IP }, `importV4 Reject interface lan*: ${LEARNED} (next hop on ${uplink}) stays`);
    await importRule(uplink);
    const absent = await until(() => (routeTo(ns, LEARNED) === undefined ? true : undefined), 20_000);
    t.ok(absent, `importV4 Reject interface ${uplink}: ${LEARNED} is gone from the kernel`);
    t.match(await bird.protocolState('tabby1'), /Established/, 'BIRD session still up (route refresh, no reset)');
  },
);
