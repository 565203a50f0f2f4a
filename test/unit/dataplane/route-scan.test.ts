// The in-place route dump decoder (RouteScanner): for every kind of route it reads what decodeRoute
// reads, from a payload anywhere in a datagram, into one reused object that keeps nothing of the
// route before; copyRoute keeps one.
import t from 'tap';
import { NlWriter, splitMessages } from '../../../src/dataplane/netlink/wire.js';
import { encodeRoute, decodeRoute, type KernelRoute } from '../../../src/dataplane/netlink/messages.js';
import { RouteScanner, copyRoute } from '../../../src/dataplane/netlink/route-scan.js';
import { RTM, NLM_F, RT_SCOPE } from '../../../src/dataplane/netlink/constants.js';

const cases: Parameters<typeof encodeRoute>[1][] = [
  { dst: '10.65.1.0/26', gateway: '172.16.0.2', oif: 7, onlink: true, protocol: 80, table: 1000 },
  { dst: '10.65.0.5/32', oif: 3, scope: RT_SCOPE.LINK, protocol: 81 },
  { dst: '10.65.0.0/26', type: 'blackhole', protocol: 81 },
  { dst: '0.0.0.0/0', gateway: '192.0.2.1', oif: 2, priority: 100, table: 100 },
  { dst: '11.0.0.0/24', gateway: '10.75.0.1', oif: 4, protocol: 81 },
  { dst: '11.0.1.0/24', gateway: '10.75.0.1', oif: 4, protocol: 81 },
  { dst: '10.66.0.0/16', oif: 2, prefsrc: '10.0.0.1', scope: RT_SCOPE.LINK },
  {
    dst: '10.67.0.0/16',
    multipath: [
      { gateway: '192.0.2.1', oif: 2, weight: 1 },
      { gateway: '192.0.2.2', oif: 3, weight: 2, onlink: true },
    ],
  },
  { dst: 'fd00:0:0:1::/64', gateway: 'fd00::1', oif: 2, protocol: 81 },
  { dst: 'fd00:0:0:2::/64', type: 'blackhole' },
  { dst: '10.68.0.0/24', type: 'unreachable', protocol: 81 },
];

t.test('RouteScanner reads what decodeRoute reads, in place, into one reused object', async (t) => {
  // all routes in one datagram: payloads at offsets other than 0
  const w = new NlWriter(64);
  for (const r of cases) {
    const s = w.beginMessage(RTM.NEWROUTE, NLM_F.MULTI, 1, 0);
    encodeRoute(w, r as KernelRoute & { dst: string }, false);
    w.endMessage(s);
  }
  const buf = w.finish();
  const scan = new RouteScanner();
  let seen: KernelRoute | undefined;
  let reused = 0;
  const kept: KernelRoute[] = [];
  let o = 0;
  for (const m of splitMessages(buf)) {
    const off = m.data.byteOffset - buf.byteOffset;
    const r = scan.scan(buf, off, off + m.data.length);
    t.same(copyRoute(r), decodeRoute(m.data), `${m.data.length} bytes at ${off}: ${r.dst}`);
    if (r === seen) reused++;
    seen = r;
    kept.push(copyRoute(r));
    o++;
  }
  t.equal(o, cases.length);
  t.ok(reused >= 5, `the IPv4 routes without multipath share one object (${reused} reuses)`);
  t.equal(kept[4]!.dst, '11.0.0.0/24', 'a copy keeps its route after the next scan');
  t.equal(kept[5]!.gateway, kept[4]!.gateway, 'the same gateway text for the same next hop');
  t.equal(kept[6]!.gateway, undefined, 'nothing of the route before (its gateway) is left');
  t.equal(kept[6]!.prefsrc, '10.0.0.1');
  t.equal(kept[10]!.prefsrc, undefined);
  t.equal(kept[10]!.oif, undefined);
});
