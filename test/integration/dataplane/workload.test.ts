// Workload wiring in real network namespaces: two nodes, one pod each, plain routes between the
// nodes' blocks; ping pod → pod; ADD retried converges; half-wired state repaired; DEL leaves nothing.
import t from 'tap';
import { wireWorkload, unwireWorkload, checkWorkload, workloadIfName, RTPROT_TABBY } from '../../../src/dataplane/index.js';
import { isRoot, ipIn, makeNetns, ping, twoNodes } from '../../helpers/dataplane-netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

t.test('workload wiring', { skip }, async (t) => {
  const [n1, n2] = await twoNodes(t, 'w');
  const p1 = makeNetns(t, 'wp1');
  const p2 = makeNetns(t, 'wp2');
  // plain routing between the two nodes' blocks
  await n1.nl.addRoute({ dst: '10.65.2.0/26', gateway: n2.ip, oif: n1.uplinkIndex, protocol: RTPROT_TABBY });
  await n2.nl.addRoute({ dst: '10.65.1.0/26', gateway: n1.ip, oif: n2.uplinkIndex, protocol: RTPROT_TABBY });

  const if1 = workloadIfName('default', 'pod-a');
  const if2 = workloadIfName('default', 'pod-b');
  const w1 = { hostIfName: if1, containerNetnsPath: p1.path, hostNetnsPath: n1.path, ipv4: '10.65.1.2', mtu: 1440 };
  const w2 = { hostIfName: if2, containerNetnsPath: p2.path, hostNetnsPath: n2.path, ipv4: '10.65.2.2/32', mtu: 1440 };

  t.test('wire and ping across nodes', async (t) => {
    const r1 = await wireWorkload(w1);
    await wireWorkload(w2);
    t.equal(r1.hostMac, 'ee:ee:ee:ee:ee:ee');
    t.equal(r1.containerIfName, 'eth0');
    t.match(ipIn(n1.name, 'route', 'show', '10.65.1.2'), new RegExp(`10\\.65\\.1\\.2 dev ${if1} proto 81 scope link`));
    t.match(ipIn(p1.name, 'route'), /default via 169\.254\.1\.1 dev eth0/);
    t.match(ipIn(p1.name, 'route'), /169\.254\.1\.1 dev eth0 scope link/);
    t.match(ipIn(p1.name, '-4', 'addr', 'show', 'eth0'), /inet 10\.65\.1\.2\/32 .*scope global eth0/);
    t.match(ipIn(p1.name, 'link', 'show', 'eth0'), /mtu 1440/);
    t.same(await checkWorkload(w1), []);
    t.ok(ping(p1.name, '10.65.2.2'), 'pod 1 reaches pod 2 across the nodes');
  });

  t.test('a retried ADD converges and keeps the pair', async (t) => {
    const before = ipIn(n1.name, '-o', 'link', 'show', if1).split(':')[0];
    await wireWorkload(w1);
    const after = ipIn(n1.name, '-o', 'link', 'show', if1).split(':')[0];
    t.equal(after, before, 'same interface index');
    t.same(await checkWorkload(w1), []);
  });

  t.test('half-wired state is repaired', async (t) => {
    ipIn(n1.name, 'route', 'del', '10.65.1.2/32');
    ipIn(p1.name, 'addr', 'del', '10.65.1.2/32', 'dev', 'eth0');
    const problems = await checkWorkload(w1);
    t.ok(
      problems.some((p) => p.includes('lacks 10.65.1.2/32')),
      'check sees the missing address',
    );
    t.ok(
      problems.some((p) => p.includes('host lacks route')),
      'check sees the missing host route',
    );
    await wireWorkload(w1);
    t.same(await checkWorkload(w1), []);
    t.ok(ping(p1.name, '10.65.2.2'), 'works again');
  });

  t.test('host side gone: ADD recreates the pair', async (t) => {
    ipIn(n1.name, 'link', 'del', if1);
    t.match(await checkWorkload(w1), [/missing/]);
    await wireWorkload(w1);
    t.same(await checkWorkload(w1), []);
  });

  t.test('DEL leaves no link, route or neighbour; a second DEL is a no-op', async (t) => {
    t.ok(ping(n1.name, '10.65.1.2'), 'node talks to its pod (creates a neighbour entry)');
    t.equal(await unwireWorkload({ ...w1 }), true);
    t.equal(ipIn(n1.name, 'link', 'show', 'type', 'veth').includes(if1), false, 'no host link');
    t.equal(ipIn(n1.name, 'route', 'show', 'table', 'all').includes('10.65.1.2'), false, 'no route');
    t.equal(ipIn(n1.name, 'neigh', 'show').includes('10.65.1.2'), false, 'no neighbour');
    t.equal(ipIn(p1.name, 'link', 'show').includes('eth0'), false, 'no pod interface');
    t.equal(await unwireWorkload({ ...w1 }), false);
    t.equal(
      await unwireWorkload({ hostIfName: if1, containerNetnsPath: '/var/run/netns/tb-none-such', hostNetnsPath: n1.path }),
      false,
      'pod netns already gone is fine',
    );
  });

  t.test('pod side left over (host side gone): DEL removes it', async (t) => {
    await unwireWorkload(w2);
    ipIn(p2.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'leftover');
    t.equal(await unwireWorkload(w2), true, 'the lone eth0 was removed');
    t.equal(ipIn(p2.name, 'link', 'show').includes('eth0'), false, 'no pod interface');
    t.equal(await unwireWorkload(w2), false, 'nothing left');
  });
});
