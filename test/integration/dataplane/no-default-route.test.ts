// Pods on nodes with NO default route (air-gapped nodes that only peer BGP with a top-of-rack router):
// the pod's view stays Calico's (`default via 169.254.1.1`, `default via fe80::ecee:eeff:feee:eeee`),
// and pods still reach their node, a pod on the same node and a pod on the other node, over IPv4 and
// IPv6. Before: the pod ARPed for 169.254.1.1 and proxy ARP stayed silent (the host had no route to it).
import t from 'tap';
import { wireWorkload, checkWorkload, workloadIfName, ensureForwarding, RTPROT_TABBY } from '../../../src/dataplane/index.js';
import { isRoot, ipIn, makeNetns, ping, twoNodes, waitUntil } from '../../helpers/dataplane-netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

t.test('pods on nodes without a default route', { skip }, async (t) => {
  const [n1, n2] = await twoNodes(t, 'g');
  for (const [n, mine, other, far4, far6] of [
    [n1, 'fd31::1', 'fd31::2', '10.65.2.0/26', 'fd66:0:0:2::/64'],
    [n2, 'fd31::2', 'fd31::1', '10.65.1.0/26', 'fd66:0:0:1::/64'],
  ] as const) {
    ipIn(n.name, 'route', 'del', 'default');
    ipIn(n.name, 'addr', 'add', `${mine}/64`, 'dev', 'up0', 'nodad');
    ensureForwarding({ netnsPath: n.path });
    await n.nl.addRoute({ dst: far4, gateway: other === 'fd31::2' ? n2.ip : n1.ip, oif: n.uplinkIndex, protocol: RTPROT_TABBY });
    await n.nl.addRoute({ dst: far6, gateway: other, oif: n.uplinkIndex, protocol: RTPROT_TABBY });
    t.notMatch(ipIn(n.name, '-4', 'route'), /default/, `${n.name}: no IPv4 default route`);
    t.notMatch(ipIn(n.name, '-6', 'route'), /default/, `${n.name}: no IPv6 default route`);
  }
  const pa = makeNetns(t, 'gpa');
  const pb = makeNetns(t, 'gpb');
  const pc = makeNetns(t, 'gpc');
  const wa = {
    hostIfName: workloadIfName('ns', 'ga'),
    containerNetnsPath: pa.path,
    hostNetnsPath: n1.path,
    ipv4: '10.65.1.5',
    ipv6: 'fd66:0:0:1::5',
  };
  const wb = {
    hostIfName: workloadIfName('ns', 'gb'),
    containerNetnsPath: pb.path,
    hostNetnsPath: n1.path,
    ipv4: '10.65.1.6',
    ipv6: 'fd66:0:0:1::6',
  };
  const wc = {
    hostIfName: workloadIfName('ns', 'gc'),
    containerNetnsPath: pc.path,
    hostNetnsPath: n2.path,
    ipv4: '10.65.2.5',
    ipv6: 'fd66:0:0:2::5',
  };
  for (const w of [wa, wb, wc]) await wireWorkload(w);

  t.match(ipIn(pa.name, '-4', 'route'), /default via 169\.254\.1\.1 dev eth0/, "the pod's view is unchanged (IPv4)");
  t.match(ipIn(pa.name, '-6', 'route'), /default via fe80::ecee:eeff:feee:eeee dev eth0/, 'and IPv6');
  t.match(
    ipIn(pa.name, '-4', 'neigh'),
    /169\.254\.1\.1 dev eth0 lladdr ee:ee:ee:ee:ee:ee PERMANENT/,
    'the gateway is a permanent neighbour in the pod',
  );
  t.match(ipIn(pa.name, '-6', 'neigh'), /fe80::ecee:eeff:feee:eeee dev eth0 lladdr ee:ee:ee:ee:ee:ee (router )?PERMANENT/, 'also for IPv6');
  t.same(await checkWorkload(wa), [], 'CHECK finds the wiring complete');
  for (const w of [wa, wb, wc]) {
    const ns = w.hostNetnsPath === n1.path ? n1.name : n2.name;
    t.ok(await waitUntil(() => !/tentative/.test(ipIn(ns, '-6', 'addr', 'show', w.hostIfName)), 5000), 'host-side link-local ready');
  }
  t.ok(ping(pa.name, n1.ip), 'pod → its node (IPv4)');
  t.ok(ping(pa.name, '10.65.1.6'), 'pod → pod on the same node (IPv4)');
  t.ok(ping(pa.name, '10.65.2.5'), 'pod → pod on the other node (IPv4)');
  t.ok(ping(pa.name, 'fd31::1', 5), 'pod → its node (IPv6)');
  t.ok(ping(pa.name, 'fd66:0:0:1::6', 5), 'pod → pod on the same node (IPv6)');
  t.ok(ping(pa.name, 'fd66:0:0:2::5', 5), 'pod → pod on the other node (IPv6)');
  // Deleting the pod's neighbour entry (an admin, a flush) is repaired by CHECK + a retried ADD.
  ipIn(pa.name, 'neigh', 'del', '169.254.1.1', 'dev', 'eth0');
  t.ok(
    (await checkWorkload(wa)).some((p) => p.includes('169.254.1.1')),
    'CHECK notices the missing neighbour',
  );
  await wireWorkload(wa);
  t.same(await checkWorkload(wa), []);
});
