// Dual-stack workloads: the pod's IPv6 default route goes via fe80::ecee:eeff:feee:eeee (the host
// side's EUI-64 link-local address from MAC ee:ee:ee:ee:ee:ee), pod ↔ pod over IPv6 across nodes.
import t from 'tap';
import {
  wireWorkload,
  checkWorkload,
  unwireWorkload,
  workloadIfName,
  ensureForwarding,
  RTPROT_TABBY,
} from '../../../src/dataplane/index.js';
import { isRoot, ipIn, makeNetns, ping, twoNodes, waitUntil } from '../../helpers/dataplane-netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

t.test('dual-stack workloads', { skip }, async (t) => {
  const [n1, n2] = await twoNodes(t, 's');
  for (const [n, mine, other] of [
    [n1, 'fd31::1', 'fd31::2'],
    [n2, 'fd31::2', 'fd31::1'],
  ] as const) {
    ipIn(n.name, 'addr', 'add', `${mine}/64`, 'dev', 'up0', 'nodad');
    ensureForwarding({ netnsPath: n.path });
    await n.nl.addRoute({
      dst: n === n1 ? 'fd66:0:0:2::/64' : 'fd66:0:0:1::/64',
      gateway: other,
      oif: n.uplinkIndex,
      protocol: RTPROT_TABBY,
    });
  }
  await n1.nl.addRoute({ dst: '10.65.2.0/26', gateway: n2.ip, oif: n1.uplinkIndex, protocol: RTPROT_TABBY });
  await n2.nl.addRoute({ dst: '10.65.1.0/26', gateway: n1.ip, oif: n2.uplinkIndex, protocol: RTPROT_TABBY });
  const p1 = makeNetns(t, 'sp1');
  const p2 = makeNetns(t, 'sp2');
  const w1 = {
    hostIfName: workloadIfName('ns', 'a6'),
    containerNetnsPath: p1.path,
    hostNetnsPath: n1.path,
    ipv4: '10.65.1.3',
    ipv6: 'fd66:0:0:1::3',
  };
  const w2 = {
    hostIfName: workloadIfName('ns', 'b6'),
    containerNetnsPath: p2.path,
    hostNetnsPath: n2.path,
    ipv4: '10.65.2.3',
    ipv6: 'fd66:0:0:2::3',
  };
  await wireWorkload(w1);
  await wireWorkload(w2);

  t.match(ipIn(p1.name, '-6', 'route'), /default via fe80::ecee:eeff:feee:eeee dev eth0/);
  t.match(ipIn(p1.name, '-6', 'addr', 'show', 'eth0'), /inet6 fd66:0:0:1::3\/128 scope global/);
  t.match(ipIn(n1.name, '-6', 'route', 'show', 'fd66:0:0:1::3'), new RegExp(`fd66:0:0:1::3 dev ${w1.hostIfName} proto 81`));
  t.same(await checkWorkload(w1), []);
  // the host side's link-local address finishes DAD within about a second
  t.ok(
    await waitUntil(
      () =>
        /fe80::ecee:eeff:feee:eeee\/64 scope link\s*$/m.test(ipIn(n1.name, '-6', 'addr', 'show', w1.hostIfName)) &&
        !/tentative/.test(ipIn(n1.name, '-6', 'addr', 'show', w1.hostIfName)),
      5000,
    ),
    'gateway address ready on the host side',
  );
  t.ok(ping(p1.name, 'fd66:0:0:2::3', 5), 'pod 1 → pod 2 over IPv6');
  t.ok(ping(p1.name, '10.65.2.3'), 'and over IPv4');
  t.equal(await unwireWorkload(w1), true);
  t.equal(ipIn(n1.name, '-6', 'route', 'show', 'table', 'all').includes('fd66:0:0:1::3'), false, 'no v6 route left');
});
