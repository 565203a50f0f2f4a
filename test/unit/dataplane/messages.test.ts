import t from 'tap';
import { NlWriter, splitMessages, ipText, ipBytes } from '../../../src/dataplane/netlink/wire.js';
import {
  encodeRoute,
  encodeRouteAny,
  encodeRouteTo,
  encodeRouteToV4,
  decodeRoute,
  encodeNeigh,
  decodeNeigh,
  encodeAddr,
  decodeAddr,
  encodeSetLink,
  encodeNeighTblParms,
} from '../../../src/dataplane/netlink/messages.js';
import { RTM, NLM_F, RT_SCOPE, NUD, NTF, IPV4_DEVCONF } from '../../../src/dataplane/netlink/constants.js';

function roundTrip<T>(enc: (w: NlWriter) => void, dec: (b: Buffer) => T): T {
  const w = new NlWriter(8);
  const s = w.beginMessage(RTM.NEWROUTE, NLM_F.REQUEST, 7, 0);
  enc(w);
  w.endMessage(s);
  const [m] = splitMessages(w.finish());
  return dec(m!.data);
}

t.test('ipText formats v4 and RFC 5952 v6', async (t) => {
  t.equal(ipText(ipBytes('10.1.2.3')), '10.1.2.3');
  t.equal(ipText(ipBytes('fe80:0:0:0:ecee:eeff:feee:eeee')), 'fe80::ecee:eeff:feee:eeee');
  t.equal(ipText(ipBytes('fd00:0:0:1::')), 'fd00:0:0:1::');
  t.equal(ipText(ipBytes('::')), '::');
});

t.test('route: unicast via gateway, onlink, own table and protocol', async (t) => {
  const r = roundTrip(
    (w) => encodeRoute(w, { dst: '10.65.1.0/26', gateway: '172.16.0.2', oif: 7, onlink: true, protocol: 80, table: 1000 }),
    decodeRoute,
  );
  t.same(r, {
    family: 4,
    dst: '10.65.1.0/26',
    table: 1000,
    protocol: 80,
    scope: RT_SCOPE.UNIVERSE,
    type: 'unicast',
    onlink: true,
    gateway: '172.16.0.2',
    oif: 7,
  });
});

t.test('route: the bulk IPv4 encoder writes the same bytes as the general one', async (t) => {
  const cases: Parameters<typeof encodeRoute>[1][] = [
    { dst: '11.0.0.0/24', gateway: '10.0.0.1', protocol: 81, table: 254, scope: 0, type: 'unicast' },
    { dst: '11.0.255.0/24', gateway: '10.0.0.1', oif: 3, onlink: true, protocol: 81, priority: 20 },
    { dst: '10.65.0.5/32', oif: 3 },
    { dst: '10.65.0.0/26', type: 'blackhole', protocol: 81 },
    { dst: '0.0.0.0/0', gateway: '192.168.1.254', table: 100 },
    { dst: '255.255.255.255/32', gateway: '1.2.3.4', priority: 0 },
    { dst: '1.2.3.0/24' },
  ];
  for (const r of cases)
    for (const del of [false, true]) {
      const a = new NlWriter(8);
      const b = new NlWriter(8);
      encodeRoute(a, r, del);
      encodeRouteAny(b, r, del);
      t.same([...a.view()], [...b.view()], `${r.dst}${del ? ' (del)' : ''}`);
      const c = new NlWriter(8);
      encodeRouteTo(c, { ...r, dst: '' }, r.dst, del);
      t.same([...c.view()], [...b.view()], `${r.dst}${del ? ' (del)' : ''}, the destination given apart`);
      // and as numbers (the route reconciler's IPv4 keys): signed or unsigned network
      const [addr, len] = r.dst.split('/');
      const net = addr!.split('.').reduce((v, o) => v * 256 + Number(o), 0);
      for (const n of [net, net | 0]) {
        const d = new NlWriter(8);
        encodeRouteToV4(d, { ...r, dst: '' }, n, Number(len), del);
        t.same([...d.view()], [...b.view()], `${r.dst}${del ? ' (del)' : ''}, the destination as numbers (${n})`);
      }
    }
  // a route the bulk encoder does not take (IPv6 gateway on an IPv4 route: RFC 5549) falls back with the text
  const v6gw = { dst: '11.1.0.0/16', gateway: 'fe80::1', oif: 2 };
  const e = new NlWriter(8);
  const f = new NlWriter(8);
  encodeRouteAny(e, v6gw, false);
  encodeRouteToV4(f, { ...v6gw, dst: '' }, (11 << 24) | (1 << 16), 16, false);
  t.same([...f.view()], [...e.view()], 'fallback: the same bytes as the general encoder');
});

t.test('route: dev-only route defaults to scope link; blackhole to universe', async (t) => {
  const a = roundTrip((w) => encodeRoute(w, { dst: '10.65.0.5/32', oif: 3 }), decodeRoute);
  t.equal(a.scope, RT_SCOPE.LINK);
  const b = roundTrip((w) => encodeRoute(w, { dst: '10.65.0.0/26', type: 'blackhole' }), decodeRoute);
  t.equal(b.scope, RT_SCOPE.UNIVERSE);
  t.equal(b.type, 'blackhole');
  t.equal(b.table, 254);
});

t.test('route: v6 default and multipath', async (t) => {
  const r = roundTrip(
    (w) =>
      encodeRoute(w, {
        dst: '::/0',
        multipath: [
          { gateway: 'fd00::1', oif: 2, weight: 1 },
          { gateway: 'fd00::2', oif: 3, weight: 5, onlink: true },
        ],
      }),
    decodeRoute,
  );
  t.equal(r.dst, '::/0');
  t.equal(r.family, 6);
  t.same(r.multipath, [
    { oif: 2, weight: 1, gateway: 'fd00::1' },
    { oif: 3, weight: 5, onlink: true, gateway: 'fd00::2' },
  ]);
});

t.test('neighbour and FDB entries', async (t) => {
  const n = roundTrip(
    (w) => encodeNeigh(w, { family: 4, ifindex: 9, state: NUD.PERMANENT, flags: 0, dst: '10.65.2.0', lladdr: '66:aa:bb:cc:dd:ee' }),
    decodeNeigh,
  );
  t.same(n, { family: 4, ifindex: 9, state: NUD.PERMANENT, flags: 0, dst: '10.65.2.0', lladdr: '66:aa:bb:cc:dd:ee' });
  const f = roundTrip(
    (w) =>
      encodeNeigh(w, {
        family: 'bridge',
        ifindex: 9,
        state: NUD.PERMANENT,
        flags: NTF.SELF,
        dst: '172.16.0.2',
        lladdr: '66:aa:bb:cc:dd:ee',
      }),
    decodeNeigh,
  );
  t.equal(f.family, 'bridge');
  t.equal(f.flags, NTF.SELF);
});

t.test('address', async (t) => {
  const a = roundTrip((w) => encodeAddr(w, { index: 4, address: 'fd00::5', prefixLen: 128 }), decodeAddr);
  t.same(a, { index: 4, family: 6, address: 'fd00::5', prefixLen: 128, scope: 0 });
});

t.test("an interface's IPv4 settings and its neighbour-table proxy delay, byte for byte", async (t) => {
  const w = new NlWriter(8);
  encodeSetLink(w, { index: 7, inetConf: [[IPV4_DEVCONF.PROXY_ARP, 1]] });
  // ifinfomsg (index 7), then IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { [3] = 1 } } }
  t.equal(w.view().toString('hex'), `00000000${'07000000'}0000000000000000${'14001a00'}${'10000200'}${'0c000100'}${'0800030001000000'}`);
  const n = new NlWriter(8);
  encodeNeighTblParms(n, { family: 4, ifindex: 5, proxyDelayMs: 0 });
  // ndtmsg (AF_INET), NDTA_NAME "arp_cache", NDTA_PARMS { NDTPA_IFINDEX 5, NDTPA_PROXY_DELAY u64 0 }
  t.equal(
    n.view().toString('hex'),
    `02000000${'0e000100'}${Buffer.from('arp_cache\0').toString('hex')}0000${'18000600'}${'0800010005000000'}${'0c000d00'}0000000000000000`,
  );
});
