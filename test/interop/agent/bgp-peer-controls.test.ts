// BGPConfiguration and BGPPeer controls checked the way a user would, on real tabby-node processes
// (2-node lab) and a BIRD 2 peer in the lab's router namespace:
//   - listenPort 1790 + bindMode NodeIP: `ss -ltn` in each node shows the BGP socket on the node's own
//     address and port 1790 only (nothing on *:179), and the mesh comes back up on the new port;
//   - BGPPeer reachableBy: node-1 has no default route and the peer (172.31.200.1, on the router's lo)
//     is not on its subnet; `ip route` shows `172.31.200.1 via 172.31.1.1` and the session comes up;
//   - maxRestartTime 45s: BIRD shows restart time 45 in the graceful restart capability tabby sent;
//   - numAllowedLocalASNumbers: a route whose AS path holds tabby's AS (64512) is dropped as a loop
//     until numAllowedLocalASNumbers: 1 on the live session — then it is in the kernel;
//   - removing reachableBy removes the route to the peer from the kernel.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, routeTo, until, nodeIp, statusOf } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';

const skip = labSkipReason() ?? (haveBird() ? false : 'bird2 not installed (bird, birdc)');
const PEER = '172.31.200.1';
const GW = '172.31.1.1';
const LOOPED = '198.51.100.0/24';
const PLAIN = '203.0.113.0/24';

/** Listening TCP sockets in a namespace as `address:port` (ss -ltn). */
function listening(netns: string): string[] {
  const out = execFileSync('ip', ['netns', 'exec', netns, 'ss', '-ltnH'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.trim().split(/\s+/)[3]!);
}

t.test('bindMode, listenPort, reachableBy, maxRestartTime, numAllowedLocalASNumbers as a user sees them', { skip }, async (t) => {
  const lab = await agentLab(t, 'pc', { nodes: 2, mode: 'routed' });
  t.ok((await lab.waitForBgp(40_000)).ok, 'mesh Established');
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const store = new ResourceStore(ds);
  const apply = (doc: object) => store.apply(doc as never);
  const n1 = lab.node('node-1').netns;

  await t.test('listenPort 1790 + bindMode NodeIP: bound to the node address only, mesh up on 1790', async (t) => {
    await apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPConfiguration',
      metadata: { name: 'default' },
      spec: { listenPort: 1790, bindMode: 'NodeIP' },
    });
    for (const n of ['node-1', 'node-2']) {
      const want = `${nodeIp(lab, n)}:1790`;
      const socks = await until(() => {
        const l = listening(lab.node(n).netns);
        return l.includes(want) ? l : undefined;
      }, 30_000);
      t.ok(socks, `${n}: ss -ltn shows ${want}`);
      t.notOk(
        socks?.some((a) => /:(179|1790)$/.test(a) && a !== want),
        `${n}: no other BGP listener (${socks?.filter((a) => /:(179|1790)$/.test(a)).join(' ')})`,
      );
    }
    const up = await until(async () => {
      for (const n of ['node-1', 'node-2']) {
        const st = await statusOf(lab, n);
        if (!st?.peers.length || !st.peers.every((p) => p.state === 'Established')) return false;
      }
      return true;
    }, 40_000);
    t.ok(up, 'mesh Established again, each node dialling the other on 1790');
  });

  // The peer lives on the router's lo, off node-1's subnet; node-1 loses its default route.
  const router = lab.state.routerNetns!;
  execFileSync('ip', ['-n', router, 'addr', 'add', `${PEER}/32`, 'dev', 'lo']);
  execFileSync('ip', ['-n', n1, 'route', 'del', 'default']);
  const bird = await startBird(t, {
    netns: router,
    config: `router id ${PEER};
protocol device {}
protocol static tor { ipv4; route ${PLAIN} blackhole; route ${LOOPED} blackhole; }
protocol bgp tabby1 {
  local ${PEER} as 65000;
  neighbor ${nodeIp(lab, 'node-1')} port 1790 as 64512;
  multihop;
  graceful restart on;
  ipv4 {
    import all;
    next hop address ${GW};
    export filter { if proto != "tor" then reject; if net = ${LOOPED} then bgp_path.prepend(64512); accept; };
  };
}
`,
  });

  await t.test('reachableBy: the route to the peer via the gateway, the session up', async (t) => {
    t.equal(routeTo(n1, PEER), undefined, `node-1 has no route to ${PEER} before the BGPPeer`);
    await apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { node: 'node-1', peerIP: PEER, asNumber: 65000, reachableBy: GW, maxRestartTime: '45s' },
    });
    const r = await until(() => routeTo(n1, PEER), 20_000);
    t.match(r, { dst: PEER, gateway: GW, protocol: '81' }, `ip route: ${PEER} via ${GW} (tabby's protocol)`);
    t.ok(await bird.waitEstablished('tabby1', 40_000), 'BIRD: session with node-1 Established');
  });

  await t.test('maxRestartTime: the restart time tabby advertises', async (t) => {
    const out = await bird.birdc('show protocols all tabby1');
    const neighbor = out.slice(out.indexOf('Neighbor capabilities'));
    t.match(
      neighbor,
      /Graceful restart[\s\S]*?Restart time:\s+45\b/,
      `BIRD: neighbor GR capability with restart time 45\n${neighbor.slice(0, 600)}`,
    );
  });

  await t.test('numAllowedLocalASNumbers: own AS in the path dropped, then accepted', async (t) => {
    const ok = await until(() => routeTo(n1, PLAIN), 20_000);
    t.match(ok, { gateway: GW }, `${PLAIN} via ${GW} in node-1's kernel`);
    await new Promise((r) => setTimeout(r, 1000)); // both came in BIRD's first batch; give the loop a moment to show
    t.equal(routeTo(n1, LOOPED), undefined, `${LOOPED} (AS path 65000 64512) is not in the kernel`);
    await apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { node: 'node-1', peerIP: PEER, asNumber: 65000, reachableBy: GW, maxRestartTime: '45s', numAllowedLocalASNumbers: 1 },
    });
    const looped = await until(() => routeTo(n1, LOOPED), 30_000);
    t.match(looped, { gateway: GW, protocol: '81' }, `${LOOPED} installed once our AS may appear once`);
  });

  await t.test('reachableBy removed: the route to the peer goes', async (t) => {
    await apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { node: 'node-1', peerIP: PEER, asNumber: 65000, numAllowedLocalASNumbers: 1 },
    });
    t.ok(await until(() => routeTo(n1, PEER) === undefined, 20_000), `node-1: ${PEER} route removed`);
  });
});
