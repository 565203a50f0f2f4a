// Pod ↔ pod across two nodes over vxlan.calico (and over tunl0 where the kernel has ipip): devices
// from ensure*Tunnel, per-peer neighbour + FDB from NeighFdbReconciler, block routes from
// RouteReconciler, pods from wireWorkload. Traffic is checked with ping and the tunnel's counters.
import t from 'tap';
import {
  RouteReconciler,
  NeighFdbReconciler,
  ensureVxlanTunnel,
  ensureIpipTunnel,
  vxlanMacForNode,
  kernelHasIpip,
  wireWorkload,
  workloadIfName,
  decodeVxlanInfo,
} from '../../../src/dataplane/index.js';
import { isRoot, ipIn, makeNetns, ping, twoNodes, waitUntil, type TestNode } from '../../helpers/dataplane-netns.js';
import { execFileSync } from 'node:child_process';

const skip = isRoot() ? false : 'needs root (network namespaces)';

function txPackets(ns: string, dev: string): number {
  const j = JSON.parse(ipIn(ns, '-s', '-j', 'link', 'show', dev)) as { stats64: { tx: { packets: number }; rx: { packets: number } } }[];
  return j[0]!.stats64.tx.packets;
}

t.test('vxlan.calico between two nodes', { skip }, async (t) => {
  const [n1, n2] = await twoNodes(t, 'x');
  const blocks = new Map<TestNode, { block: string; tunnel: string; pod: string }>([
    [n1, { block: '10.66.1.0/26', tunnel: '10.66.1.0', pod: '10.66.1.2' }],
    [n2, { block: '10.66.2.0/26', tunnel: '10.66.2.0', pod: '10.66.2.2' }],
  ]);
  const pods: { name: string }[] = [];
  const recs: { routes: RouteReconciler; peers: NeighFdbReconciler }[] = [];
  t.teardown(() => {
    for (const r of recs) {
      r.routes.stop();
      r.peers.stop();
    }
  });

  for (const [node, other] of [
    [n1, n2],
    [n2, n1],
  ] as const) {
    const me = blocks.get(node)!;
    const them = blocks.get(other)!;
    const vx = await ensureVxlanTunnel(node.nl, { localIp: node.ip, mac: vxlanMacForNode(node.name), address: me.tunnel });
    t.equal(vx.mtu, 1450);
    const peers = new NeighFdbReconciler(node.nl, { debounceMs: 10, resyncIntervalMs: 0 });
    peers.setPeers([{ tunnelIp: them.tunnel, mac: vxlanMacForNode(other.name), nodeIp: other.ip }]);
    const routes = new RouteReconciler(node.nl, { debounceMs: 10, resyncIntervalMs: 0 });
    routes.setDesired([
      { dst: me.block, type: 'blackhole' },
      { dst: them.block, gateway: them.tunnel, dev: 'vxlan.calico', onlink: true },
    ]);
    recs.push({ routes, peers });
    await peers.start();
    await routes.start();
    const pod = makeNetns(t, `x${node === n1 ? 'p1' : 'p2'}`);
    pods.push(pod);
    await wireWorkload({
      hostIfName: workloadIfName('default', `x-${pod.name}`),
      containerNetnsPath: pod.path,
      hostNetnsPath: node.path,
      ipv4: me.pod,
      mtu: 1410,
    });
  }

  t.test('device as Calico makes it', async (t) => {
    const d = ipIn(n1.name, '-d', 'link', 'show', 'vxlan.calico');
    t.match(d, /mtu 1450/);
    t.match(d, new RegExp(`link/ether ${vxlanMacForNode(n1.name)}`));
    t.match(d, /vxlan id 4096 local 172\.31\.0\.1 .*dstport 4789 nolearning/);
    t.match(ipIn(n1.name, '-4', 'addr', 'show', 'vxlan.calico'), /inet 10\.66\.1\.0\/32/);
    const again = await ensureVxlanTunnel(n1.nl, { localIp: n1.ip, mac: vxlanMacForNode(n1.name), address: '10.66.1.0' });
    t.same(decodeVxlanInfo(again.infoData).vni, 4096, 'idempotent');
  });

  t.test('neighbour, FDB and route per peer', async (t) => {
    t.match(
      ipIn(n1.name, 'neigh', 'show', 'dev', 'vxlan.calico'),
      new RegExp(`10\\.66\\.2\\.0 lladdr ${vxlanMacForNode(n2.name)} PERMANENT`),
    );
    const fdb = execFileSync('bridge', ['-netns', n1.name, 'fdb', 'show', 'dev', 'vxlan.calico'], { encoding: 'utf8' });
    t.match(fdb, new RegExp(`${vxlanMacForNode(n2.name)} dst 172\\.31\\.0\\.2 self permanent`));
    t.match(ipIn(n1.name, 'route', 'show'), /10\.66\.2\.0\/26 via 10\.66\.2\.0 dev vxlan\.calico proto 81 onlink/);
    t.match(ipIn(n1.name, 'route', 'show'), /blackhole 10\.66\.1\.0\/26 proto 81/);
    // a full resync of the converged state changes nothing
    recs[0]!.peers.neigh.markResync();
    recs[0]!.peers.fdb.markResync();
    const again = await recs[0]!.peers.apply();
    t.same([again.neigh.added, again.neigh.removed, again.fdb.added, again.fdb.removed], [0, 0, 0, 0], 'no neighbour/FDB churn');
    const r = await recs[0]!.routes.resync();
    t.same([r.added, r.removed], [0, 0], 'no route churn');
  });

  t.test('pod to pod over VXLAN', async (t) => {
    const before = txPackets(n1.name, 'vxlan.calico');
    t.ok(ping(`${pods[0]!.name}`, '10.66.2.2'), 'pod 1 → pod 2');
    t.ok(txPackets(n1.name, 'vxlan.calico') > before, 'the packets went out through vxlan.calico');
  });

  t.test('neighbour / FDB deleted by hand come back', async (t) => {
    ipIn(n1.name, 'neigh', 'del', '10.66.2.0', 'dev', 'vxlan.calico');
    execFileSync('bridge', ['-netns', n1.name, 'fdb', 'del', vxlanMacForNode(n2.name), 'dev', 'vxlan.calico', 'dst', '172.31.0.2']);
    t.ok(await waitUntil(() => /10\.66\.2\.0 lladdr/.test(ipIn(n1.name, 'neigh', 'show', 'dev', 'vxlan.calico')), 1000), 'neighbour back');
    t.ok(
      await waitUntil(
        () =>
          execFileSync('bridge', ['-netns', n1.name, 'fdb', 'show', 'dev', 'vxlan.calico'], { encoding: 'utf8' }).includes(
            'dst 172.31.0.2',
          ),
        1000,
      ),
      'FDB entry back',
    );
    t.ok(ping(pods[0]!.name, '10.66.2.2'), 'still works');
  });

  t.test('peer removed: its entries go', async (t) => {
    recs[0]!.peers.setPeers([]);
    await recs[0]!.peers.apply();
    t.notMatch(
      ipIn(n1.name, 'neigh', 'show', 'dev', 'vxlan.calico'),
      /10\.66\.2\.0 lladdr/,
      'no resolved entry (a deleted one may linger as FAILED)',
    );
    t.notMatch(
      execFileSync('bridge', ['-netns', n1.name, 'fdb', 'show', 'dev', 'vxlan.calico'], { encoding: 'utf8' }),
      /dst 172\.31\.0\.2/,
    );
  });
});

t.test('tunl0 (IPIP) between two nodes', { skip: skip || (kernelHasIpip() ? false : 'kernel has no ipip support') }, async (t) => {
  const [n1, n2] = await twoNodes(t, 'i');
  const recs: RouteReconciler[] = [];
  t.teardown(() => {
    for (const r of recs) r.stop();
  });
  const podNs: string[] = [];
  for (const [node, other, mine, theirs] of [
    [n1, n2, '10.67.1', '10.67.2'],
    [n2, n1, '10.67.2', '10.67.1'],
  ] as const) {
    const l = await ensureIpipTunnel(node.nl, { address: `${mine}.0`, mtu: 1480 });
    t.equal(l.mtu, 1480);
    const rr = new RouteReconciler(node.nl, { debounceMs: 10, resyncIntervalMs: 0 });
    rr.setDesired([{ dst: `${theirs}.0/26`, gateway: other.ip, dev: 'tunl0', onlink: true }]);
    recs.push(rr);
    await rr.start();
    const pod = makeNetns(t, `i${node === n1 ? 'p1' : 'p2'}`);
    podNs.push(pod.name);
    await wireWorkload({
      hostIfName: workloadIfName('default', `i-${pod.name}`),
      containerNetnsPath: pod.path,
      hostNetnsPath: node.path,
      ipv4: `${mine}.2`,
      mtu: 1440,
    });
  }
  t.match(ipIn(n1.name, 'route', 'show'), /10\.67\.2\.0\/26 via 172\.31\.0\.2 dev tunl0 proto 81 onlink/);
  t.ok(ping(podNs[0]!, '10.67.2.2'), 'pod 1 → pod 2 over IPIP');
});
