// BGPPeer sourceAddress as the peer sees it: node-1 gets a second address (172.31.1.99) and a host
// route that makes the kernel pick it as the source toward BIRD (172.31.1.1). BIRD has two passive
// protocols, one per possible source, so the one that comes up names the address tabby connected from:
//   - UseNodeIP (default): tabby binds the node address → `fromnode` Established;
//   - None: the kernel chooses → `fromother` Established, `fromnode` down.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, until, nodeIp } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';

const skip = labSkipReason() ?? (haveBird() ? false : 'bird2 not installed (bird, birdc)');
const BIRD_IP = '172.31.1.1';
const OTHER = '172.31.1.99';

t.test('sourceAddress UseNodeIP / None: the address tabby connects from', { skip }, async (t) => {
  const lab = await agentLab(t, 'sa', { nodes: 1, mode: 'routed' });
  const ns = lab.node('node-1').netns;
  const n1 = nodeIp(lab, 'node-1');
  const addrs = JSON.parse(execFileSync('ip', ['-j', '-n', ns, 'addr', 'show'], { encoding: 'utf8' })) as {
    ifname: string;
    addr_info: { local: string }[];
  }[];
  const dev = addrs.find((l) => l.addr_info.some((a) => a.local === n1))!.ifname;
  execFileSync('ip', ['-n', ns, 'addr', 'add', `${OTHER}/32`, 'dev', dev]);
  execFileSync('ip', ['-n', ns, 'route', 'add', `${BIRD_IP}/32`, 'dev', dev, 'src', OTHER]);
  const proto = (name: string, neighbor: string) => `protocol bgp ${name} {
  local ${BIRD_IP} as 65000;
  neighbor ${neighbor} as 64512;
  direct;
  passive on;
  ipv4 { import all; export none; };
}`;
  const bird = await startBird(t, {
    netns: lab.state.routerNetns!,
    config: `router id ${BIRD_IP};
protocol device {}
${proto('fromnode', n1)}
${proto('fromother', OTHER)}
`,
  });
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const store = new ResourceStore(ds);
  const peer = (spec: object) =>
    store.apply({ apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'tor' }, spec } as never);

  await peer({ peerIP: BIRD_IP, asNumber: 65000 });
  t.ok(await bird.waitEstablished('fromnode', 40_000), `UseNodeIP (default): BIRD sees the session from ${n1}`);
  t.notMatch(await bird.protocolState('fromother'), /Established/, `nothing from ${OTHER}`);

  await peer({ peerIP: BIRD_IP, asNumber: 65000, sourceAddress: 'None' });
  t.ok(await bird.waitEstablished('fromother', 40_000), `None: the kernel's choice, ${OTHER}`);
  t.ok(await until(async () => !(await bird.protocolState('fromnode')).includes('Established'), 20_000), `the session from ${n1} is gone`);
});
