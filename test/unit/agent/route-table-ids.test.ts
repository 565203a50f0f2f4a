// The route table and the route reconciler sharing one prefix id (RouteSink.prefixIds): routes handed
// over by id reach the kernel (IPv4 /0 … /32 as numbers, IPv6 as text), a withdrawn prefix's id is
// freed once both let go, a prefix removed and re-added comes back, a withdraw-all compacts the ids
// and the table still answers after the renumbering.
import t from 'tap';
import { RouteTable, type RouteSink } from '../../../src/agent/route-table.js';
import { compileRouteContext, type RouteInput } from '../../../src/agent/routes.js';
import { RouteReconciler } from '../../../src/dataplane/index.js';
import { FakeRouteDataplane } from '../../../src/dataplane/fake.js';

const base: Pick<RouteInput, 'pools' | 'nodeAddress4' | 'nodeAddress6' | 'uplink' | 'kernelHasIpip' | 'ownBlocks'> = {
  nodeAddress4: '10.0.0.1/24',
  nodeAddress6: 'fd00::1/64',
  kernelHasIpip: true,
  pools: [{ cidr: '192.168.0.0/16', ipipMode: 'Never', vxlanMode: 'Never' }],
  ownBlocks: [{ cidr: '192.168.1.0/26', state: 'confirmed' }],
};

function setUp() {
  const k = new FakeRouteDataplane();
  const rr = new RouteReconciler(k, { resyncIntervalMs: 0 });
  const sink: RouteSink = {
    setRoute: (r) => rr.set(r),
    deleteRoute: (d) => rr.delete(d),
    prefixIds: rr.prefixIds,
    setRouteAt: (id, r) => rr.setAt(id, r),
    deleteRouteAt: (id) => rr.deleteAt(id),
  };
  const tab = new RouteTable(compileRouteContext(base), sink);
  return { k, rr, tab, ids: rr.prefixIds };
}

const nh = Object.freeze(['10.0.0.2']);
const nh6 = Object.freeze(['fd00::2']);
const num = (a: number, b: number, c: number, d: number): number => (a << 24) | (b << 16) | (c << 8) | d | 0;

t.test('by id: v4 as numbers and as text, /0 and /32, v6 — one id held by both, routes in the kernel', async (t) => {
  const { k, rr, tab, ids } = setUp();
  tab.update4(num(172, 16, 0, 0), 24, nh, '10.0.0.2');
  tab.update4(0, 0, nh, '10.0.0.2');
  tab.update4(num(203, 0, 113, 9), 32, nh, '10.0.0.2');
  tab.update4(num(198, 51, 100, 77), 24, nh, '10.0.0.2'); // host bits: the prefix is its network
  tab.update('192.168.2.0/26', nh, '10.0.0.2');
  tab.update('fd00:5::/64', nh6, 'fd00::2');
  tab.update4(num(192, 168, 1, 0), 26, nh, '10.0.0.2'); // our own block: no route
  await rr.apply();
  for (const [dst, gw] of [
    ['172.16.0.0/24', '10.0.0.2'],
    ['0.0.0.0/0', '10.0.0.2'],
    ['203.0.113.9/32', '10.0.0.2'],
    ['198.51.100.0/24', '10.0.0.2'],
    ['192.168.2.0/26', '10.0.0.2'],
    ['fd00:5::/64', 'fd00::2'],
  ] as const) {
    t.equal(k.route(dst)?.gateway, gw, `${dst} in the kernel`);
    t.equal(ids.holders(ids.find(dst)), 2, `${dst}: one id, held by the table and the reconciler`);
  }
  t.notOk(k.route('192.168.1.0/26'), 'own block: no route');
  t.equal(ids.holders(ids.find('192.168.1.0/26')), 1, 'own block: held by the table only');
  t.equal(tab.lookup('203.0.113.9/32')?.route?.gateway, '10.0.0.2');
  t.equal(tab.explain('172.16.0.77')?.prefix, '172.16.0.0/24');
  t.equal(tab.explain('8.8.8.8')?.prefix, '0.0.0.0/0', 'the default route explains the rest');
  t.equal(tab.size, 7);
  t.equal(tab.routedCount, 6);
  t.equal(rr.desiredCount, 6);
  t.equal(tab.counts().byReason['own-block'], 1);
  const routes = tab.routes();
  t.equal(routes.length, 6, 'routes(): every kernel route, not the own block');
  t.same(
    routes.find((r) => r.dst === '0.0.0.0/0'),
    { dst: '0.0.0.0/0', gateway: '10.0.0.2' },
    'with its destination',
  );
  t.equal(tab.routes(2).length, 2, 'up to the limit');
});

t.test('withdrawn: gone from the kernel, its id freed; removed and re-added: back', async (t) => {
  const { k, rr, tab, ids } = setUp();
  tab.update4(num(172, 16, 0, 0), 24, nh, '10.0.0.2');
  tab.update('fd00:5::/64', nh6, 'fd00::2');
  await rr.apply();
  tab.remove4(num(172, 16, 0, 0), 24);
  tab.remove('fd00:5::/64');
  t.not(ids.find('172.16.0.0/24'), -1, 'the reconciler holds the id until the kernel route is gone');
  await rr.apply();
  t.notOk(k.route('172.16.0.0/24'));
  t.notOk(k.route('fd00:5::/64'));
  t.equal(ids.find('172.16.0.0/24'), -1, 'id freed');
  t.equal(ids.find('fd00:5::/64'), -1, 'id freed (v6)');
  t.equal(tab.lookup('172.16.0.0/24'), undefined);
  tab.update('172.16.0.0/24', nh, '10.0.0.2');
  tab.update4(num(172, 16, 0, 0), 24, nh, '10.0.0.2'); // the same prefix as numbers: nothing new
  await rr.apply();
  t.equal(k.route('172.16.0.0/24')?.gateway, '10.0.0.2', 're-added');
  t.equal(tab.size, 1);
  t.equal(ids.size, 1);
});

t.test('withdraw-all compacts the shared ids; both sides follow the renumbering', async (t) => {
  const { k, rr, tab, ids } = setUp();
  const n = 10_000;
  const net = (i: number): number => ((11 << 24) + i * 256) | 0;
  const keep = (i: number): boolean => i % 100 === 7;
  for (let i = 0; i < n; i++) tab.update4(net(i), 24, nh, '10.0.0.2');
  await rr.apply();
  t.equal(k.routes.size, n);
  const upper = ids.upper;
  for (let i = 0; i < n; i++) if (!keep(i)) tab.remove4(net(i), 24);
  // the reconciler renumbers once its passes have stopped for a while (its timer does not hold the process)
  const renumbered = new Promise<boolean>((r) => {
    const give = setTimeout(() => r(false), 20_000);
    ids.onRemap(() => {
      clearTimeout(give);
      r(true);
    });
  });
  await rr.apply();
  t.equal(k.routes.size, n / 100, 'the withdrawn routes are gone');
  t.ok(await renumbered, 'renumbered once changes were quiet');
  t.ok(ids.upper < upper / 10, `ids renumbered densely (${upper} → ${ids.upper})`);
  let bad = 0;
  for (let i = 0; i < n; i++) {
    const dst = `11.${(i >> 8) & 255}.${i & 255}.0/24`;
    const rec = tab.lookup(dst);
    if (keep(i) !== !!rec || (rec && rec.route?.gateway !== '10.0.0.2') || keep(i) !== !!k.route(dst)) bad++;
  }
  t.equal(bad, 0, 'the table answers for every prefix after the renumbering');
  // the kept ones still move as one: a withdraw of all of them empties the kernel
  for (let i = 0; i < n; i++) if (keep(i)) tab.remove4(net(i), 24);
  await rr.apply();
  t.equal(k.routes.size, 0);
  t.equal(ids.size, 0);
  tab.update('11.0.7.0/24', nh, '10.0.0.2');
  await rr.apply();
  t.equal(k.route('11.0.7.0/24')?.gateway, '10.0.0.2', 'usable after');
});

t.test('a route set by text on a learned destination shares its id', async (t) => {
  const { k, rr, tab, ids } = setUp();
  tab.update('172.16.0.0/24', nh, '10.0.0.2');
  rr.set({ dst: '172.16.0.0/24', type: 'blackhole' });
  await rr.apply();
  t.equal(k.route('172.16.0.0/24')?.type, 'blackhole', 'the last set wins, as with one key');
  t.equal(ids.holders(ids.find('172.16.0.0/24')), 2, 'one id');
  rr.delete('172.16.0.0/24');
  await rr.apply();
  t.notOk(k.route('172.16.0.0/24'));
  t.equal(tab.lookup('172.16.0.0/24')?.route?.gateway, '10.0.0.2', 'the table still knows its prefix');
});
