// BgpSpeaker over an in-memory transport (speaker-harness.ts): real encoded UPDATEs between speakers.
// iBGP/eBGP rules, full mesh, route reflection, packing, End-of-RIB, route refresh, max-prefix.
import t from 'tap';
import v8 from 'node:v8';
import vm from 'node:vm';
import { MemHub, memSpeaker, until, type MemSession } from './speaker-harness.js';
import type { BgpSpeaker, BestRouteEvent } from '../../../src/bgp/speaker.js';
import type { UpdateMessage } from '../../../src/bgp/codec/types.js';
import { endOfRibFamily } from '../../../src/bgp/rib/update-writer.js';

const ibgp = (address: string, extra: object = {}) => ({ address, asn: 65000, families: ['ipv4' as const, 'ipv6' as const], ...extra });
const established = (s: BgpSpeaker, n: number) => () => s.peers().filter((p) => p.state === 'Established').length === n;
const sessionOf = (hub: MemHub, local: string, remote: string) => hub.sessions.get(`${local}>${remote}`) as MemSession;
const updates = (s: MemSession) => s.received.filter((m): m is UpdateMessage => m.type === 'update');

async function mesh(t: { teardown: (fn: () => unknown) => void }, names: string[], opts: Record<string, object> = {}) {
  const hub = new MemHub();
  const speakers = names.map((a, i) => memSpeaker(hub, a, { asn: 65000, routerId: `1.1.1.${i + 1}`, ...(opts[a] ?? {}) }));
  for (const [i, s] of speakers.entries()) for (const b of names) if (b !== names[i]) s.addPeer(ibgp(b));
  for (const s of speakers) await s.start();
  t.teardown(() => Promise.all(speakers.map((s) => s.stop())));
  for (const s of speakers) await until(established(s, names.length - 1), 5000, 'mesh established');
  return { hub, speakers };
}

t.test('iBGP: an originated route reaches the peer with next hop self and LOCAL_PREF', async (t) => {
  const {
    speakers: [a, b],
  } = await mesh(t, ['10.0.0.1', '10.0.0.2']);
  const got: BestRouteEvent[] = [];
  b!.on('best', (e: BestRouteEvent) => got.push(e));
  a!.originate('192.168.10.0/26');
  a!.originate('fd00:10::/122', { nextHop: 'fd00::1' });
  await until(() => got.length === 2, 5000, 'routes at b');
  const v4 = got.find((e) => e.prefix === '192.168.10.0/26')!;
  t.same(v4.nextHops, ['10.0.0.1']);
  t.equal(v4.attrs.localPref, 100);
  t.same(v4.attrs.asPath, []);
  t.equal(v4.source, '10.0.0.1');
  const v6 = got.find((e) => e.prefix === 'fd00:10::/122')!;
  t.same(v6.nextHops, ['fd00::1'], 'IPv6 over MP_REACH with the given next hop');
  const w: string[] = [];
  b!.on('withdrawn', (e: { prefix: string }) => w.push(e.prefix));
  a!.withdraw('192.168.10.0/26');
  await until(() => w.length === 1, 5000, 'withdrawal');
  t.same(w, ['192.168.10.0/26']);
  t.equal(b!.locRib().get('192.168.10.0/26'), undefined);
  t.equal(b!.peers()[0]!.prefixesReceived, 1);
});

t.test('full mesh of 3: each route once per peer, iBGP routes not re-sent', async (t) => {
  const names = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
  const { hub, speakers } = await mesh(t, names);
  speakers.forEach((s, i) => s.originate(`192.168.${i}.0/26`));
  for (const s of speakers) await until(() => s.locRib().size === 3, 5000, 'all routes');
  for (const [i, s] of speakers.entries()) {
    for (const st of s.peers()) t.equal(st.prefixesReceived, 1, `${names[i]} gets exactly one route from ${st.address}`);
    for (const st of s.peers()) t.equal(st.prefixesAdvertised, 1, `${names[i]} sends only its own route to ${st.address}`);
  }
  // On the wire: b→c carried only b's prefix.
  const bc = sessionOf(hub, names[2]!, names[1]!);
  const prefixes = updates(bc).flatMap((u) => Array.from({ length: u.nlri.count }, (_, i) => u.nlri.addrs[i]));
  t.equal(prefixes.length, 1, 'one NLRI from b to c');
});

t.test('route reflection: client → all, non-client → clients, ORIGINATOR_ID and CLUSTER_LIST set, next hop kept', async (t) => {
  const hub = new MemHub();
  const rr = memSpeaker(hub, '10.0.0.100', { asn: 65000, routerId: '10.0.0.100', clusterId: '1.0.0.1' });
  const c1 = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '10.0.0.1' });
  const c2 = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '10.0.0.2' });
  const n1 = memSpeaker(hub, '10.0.0.3', { asn: 65000, routerId: '10.0.0.3' });
  const n2 = memSpeaker(hub, '10.0.0.4', { asn: 65000, routerId: '10.0.0.4' });
  rr.addPeer(ibgp('10.0.0.1', { routeReflectorClient: true }));
  rr.addPeer(ibgp('10.0.0.2', { routeReflectorClient: true }));
  rr.addPeer(ibgp('10.0.0.3'));
  rr.addPeer(ibgp('10.0.0.4'));
  for (const s of [c1, c2, n1, n2]) s.addPeer(ibgp('10.0.0.100'));
  const all = [rr, c1, c2, n1, n2];
  for (const s of all) await s.start();
  t.teardown(() => Promise.all(all.map((s) => s.stop())));
  await until(established(rr, 4), 5000, 'rr sessions');
  c1.originate('192.168.1.0/26');
  n1.originate('192.168.3.0/26');
  await until(
    () => c2.locRib().size === 2 && n2.locRib().size === 1 && c1.locRib().size === 2 && n1.locRib().size === 2,
    5000,
    'reflected',
  );
  const atC2 = c2.locRib().get('192.168.1.0/26')!;
  t.equal(atC2.attrs.originatorId, '10.0.0.1', 'ORIGINATOR_ID = the client');
  t.same(atC2.attrs.clusterList, ['1.0.0.1'], 'CLUSTER_LIST = our cluster');
  t.same(atC2.nextHops, ['10.0.0.1'], 'next hop unchanged by reflection');
  t.ok(n2.locRib().get('192.168.1.0/26'), 'client route reflected to non-client');
  t.equal(n2.locRib().get('192.168.3.0/26'), undefined, 'non-client route not reflected to non-client');
  t.ok(c1.locRib().get('192.168.3.0/26'), 'non-client route reflected to clients');
  t.equal(c1.locRib().get('192.168.1.0/26')?.source, '', 'c1 keeps its own route (never sent back to the source)');
});

t.test('eBGP: AS prepended, next hop self, AS loop dropped', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65001, routerId: '1.1.1.1' });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65002, routerId: '2.2.2.2' });
  const c = memSpeaker(hub, '10.0.0.3', { asn: 65001, routerId: '3.3.3.3' });
  a.addPeer({ address: '10.0.0.2', asn: 65002, families: ['ipv4'] });
  b.addPeer({ address: '10.0.0.1', asn: 65001, families: ['ipv4'] });
  b.addPeer({ address: '10.0.0.3', asn: 65001, families: ['ipv4'] });
  c.addPeer({ address: '10.0.0.2', asn: 65002, families: ['ipv4'] });
  for (const s of [a, b, c]) await s.start();
  t.teardown(() => Promise.all([a, b, c].map((s) => s.stop())));
  await until(established(b, 2), 5000, 'sessions');
  a.originate('192.168.1.0/24', { nextHop: '10.0.0.1' });
  await until(() => !!b.locRib().get('192.168.1.0/24'), 5000, 'at b');
  const atB = b.locRib().get('192.168.1.0/24')!;
  t.same(atB.attrs.asPath, [{ type: 2, asns: [65001] }]);
  t.same(atB.nextHops, ['10.0.0.1']);
  t.equal(atB.attrs.localPref, undefined, 'no LOCAL_PREF over eBGP');
  await until(() => b.peers().find((p) => p.address === '10.0.0.3')!.prefixesAdvertised === 1, 5000, 'b advertised to c');
  await new Promise((r) => setTimeout(r, 20));
  t.equal(c.locRib().get('192.168.1.0/24'), undefined, 'c (AS 65001) drops a path with its own AS');
  const bc = sessionOf(hub, '10.0.0.3', '10.0.0.2');
  const u = updates(bc).find((m) => m.nlri.count > 0)!;
  t.same(u.attrs!.asPath, [{ type: 2, asns: [65002, 65001] }], 'b prepended its AS');
  t.equal(u.attrs!.nextHop, '10.0.0.2', 'b set next hop self');
});

t.test('UPDATE packing, End-of-RIB and route refresh', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1' });
  for (let i = 0; i < 2000; i++) a.originate(`10.${i >> 8}.${i & 255}.0/24`, { communities: [i % 2] });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '2.2.2.2' });
  a.addPeer(ibgp('10.0.0.2'));
  b.addPeer(ibgp('10.0.0.1'));
  await a.start();
  await b.start();
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await until(() => b.locRib().size === 2000, 5000, 'dump');
  const rx = sessionOf(hub, '10.0.0.2', '10.0.0.1');
  await until(() => updates(rx).some((u) => endOfRibFamily(u) === 2), 5000, 'EoR');
  const withNlri = updates(rx).filter((u) => u.nlri.count > 0);
  // 2000 /24s = 8000 bytes of NLRI in two attribute sets: 2 × ceil(4000/~4040) messages.
  t.ok(withNlri.length <= 4, `2000 prefixes in ${withNlri.length} UPDATEs`);
  t.ok(
    withNlri.every((u) => u.nlri.count > 100),
    'each UPDATE full of NLRI',
  );
  const eors = updates(rx)
    .filter((u) => endOfRibFamily(u) !== 0)
    .map(endOfRibFamily);
  t.same(eors.sort(), [1, 2], 'End-of-RIB for IPv4 and IPv6, once each');
  const lastData = updates(rx)
    .map((u, i) => (u.nlri.count ? i : -1))
    .reduce((x, y) => Math.max(x, y));
  t.ok(updates(rx).findIndex((u) => endOfRibFamily(u) === 1) > lastData, 'EoR after the dump');
  // Route refresh: a's Adj-RIB-Out is sent again.
  const before = updates(rx).length;
  t.ok(b.requestRefresh('10.0.0.1', 1));
  await until(
    () =>
      updates(rx)
        .slice(before)
        .reduce((s, u) => s + u.nlri.count, 0) === 2000,
    5000,
    'refresh',
  );
  t.ok(
    rx.received.some((m) => m.type === 'route-refresh' && m.subtype === 2),
    'enhanced route refresh: EoRR sent',
  );
  // Withdrawals are batched.
  const before2 = updates(rx).length;
  for (let i = 0; i < 500; i++) a.withdraw(`10.${i >> 8}.${i & 255}.0/24`);
  await until(() => b.locRib().size === 1500, 5000, 'withdrawn');
  t.ok(updates(rx).length - before2 <= 2, `500 withdrawals in ${updates(rx).length - before2} UPDATE(s)`);
});

t.test('max-prefix: Cease 6/1 with the limit; warn mode keeps the session; restart-after', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1' });
  for (let i = 0; i < 10; i++) a.originate(`10.0.${i}.0/24`);
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '2.2.2.2' });
  const c = memSpeaker(hub, '10.0.0.3', { asn: 65000, routerId: '3.3.3.3' });
  a.addPeer(ibgp('10.0.0.2'));
  a.addPeer(ibgp('10.0.0.3'));
  b.addPeer(ibgp('10.0.0.1', { maxPrefix: { limit: 5, action: 'shutdown', restartAfter: 0.05 } }));
  c.addPeer(ibgp('10.0.0.1', { maxPrefix: { limit: 5, action: 'warn' } }));
  for (const s of [a, b, c]) await s.start();
  t.teardown(() => Promise.all([a, b, c].map((s) => s.stop())));
  await until(() => c.locRib().size === 10, 5000, 'c has all (warn only)');
  t.equal(c.peers()[0]!.state, 'Established');
  await until(() => b.peers()[0]!.info.includes('Max prefix'), 5000, 'b closed the session');
  const bs = sessionOf(hub, '10.0.0.2', '10.0.0.1') ?? undefined;
  void bs;
  t.equal(b.locRib().size, 0, 'routes of the closed session gone');
  const peerEvents: string[] = [];
  b.on('peer', (e: { state: string }) => peerEvents.push(e.state));
  await until(() => peerEvents.includes('Established'), 5000, 'restarted after restartAfter');
});

t.test('Cease 6/1 data carries AFI/SAFI and the limit', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1' });
  for (let i = 0; i < 3; i++) a.originate(`10.0.${i}.0/24`);
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '2.2.2.2' });
  a.addPeer(ibgp('10.0.0.2'));
  b.addPeer(ibgp('10.0.0.1', { maxPrefix: 2 }));
  const sessions: MemSession[] = [];
  const f = hub.factory('10.0.0.2');
  const create = f.create;
  (b as unknown as { sessions: typeof f }).sessions.create = (p) => {
    const s = create(p) as MemSession;
    sessions.push(s);
    return s;
  };
  await a.start();
  await b.start();
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await until(() => sessions[0]?.notificationsSent.length === 1, 5000, 'notification');
  const n = sessions[0]!.notificationsSent[0]!;
  t.same([n.code, n.subcode], [6, 1]);
  t.equal(n.data.toString('hex'), '0001' + '01' + '00000002');
});

t.test('multipath: equal routes from two peers give both next hops', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1' });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '2.2.2.2' });
  const c = memSpeaker(hub, '10.0.0.3', { asn: 65000, routerId: '3.3.3.3', multipath: true });
  a.addPeer(ibgp('10.0.0.3'));
  b.addPeer(ibgp('10.0.0.3'));
  c.addPeer(ibgp('10.0.0.1'));
  c.addPeer(ibgp('10.0.0.2'));
  a.originate('172.16.0.0/24');
  b.originate('172.16.0.0/24');
  for (const s of [a, b, c]) await s.start();
  t.teardown(() => Promise.all([a, b, c].map((s) => s.stop())));
  await until(() => c.locRib().get('172.16.0.0/24')?.nextHops.length === 2, 5000, 'two next hops');
  t.same(c.locRib().get('172.16.0.0/24')!.nextHops, ['10.0.0.1', '10.0.0.2'], 'best (lower router ID) first');
  t.equal(c.locRib().reason('172.16.0.0/24'), 'router-id');
  const ev: BestRouteEvent[] = [];
  c.on('best', (e: BestRouteEvent) => ev.push(e));
  b.withdraw('172.16.0.0/24');
  await until(() => ev.length === 1, 5000, 'multipath change reported');
  t.same(ev[0]!.nextHops, ['10.0.0.1']);
});

t.test('removePeer and updatePeer', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65001, routerId: '1.1.1.1' });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '2.2.2.2' });
  const c = memSpeaker(hub, '10.0.0.3', { asn: 65000, routerId: '3.3.3.3' });
  a.addPeer({ address: '10.0.0.2', asn: 65000, families: ['ipv4'] });
  b.addPeer({ address: '10.0.0.1', asn: 65001, families: ['ipv4'] });
  b.addPeer(ibgp('10.0.0.3'));
  c.addPeer(ibgp('10.0.0.2'));
  a.originate('172.17.0.0/24', { nextHop: '10.0.0.1' });
  for (const s of [a, b, c]) await s.start();
  t.teardown(() => Promise.all([a, b, c].map((s) => s.stop())));
  await until(() => !!c.locRib().get('172.17.0.0/24'), 5000, 'eBGP route at c');
  t.same(c.locRib().get('172.17.0.0/24')!.nextHops, ['10.0.0.1'], 'eBGP next hop kept toward iBGP');
  b.updatePeer(ibgp('10.0.0.3', { nextHopSelf: true }));
  await until(() => c.locRib().get('172.17.0.0/24')?.nextHops[0] === '10.0.0.2', 5000, 'next-hop-self applied without a session reset');
  t.equal(b.peers().find((p) => p.address === '10.0.0.3')!.state, 'Established');
  b.removePeer('10.0.0.1');
  await until(() => !c.locRib().get('172.17.0.0/24'), 5000, 'route gone with its peer');
  t.equal(b.peers().length, 1);
  t.equal(b.locRib().size, 0);
});

t.test('enhanced route refresh (RFC 7313): routes not re-sent between BoRR and EoRR are removed', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1' });
  const c = memSpeaker(hub, '10.0.0.3', { asn: 65000, routerId: '3.3.3.3' });
  a.addPeer(ibgp('10.0.0.3'));
  c.addPeer(ibgp('10.0.0.1'));
  a.originate('172.18.0.0/24');
  await a.start();
  await c.start();
  t.teardown(() => Promise.all([a.stop(), c.stop()]));
  await until(() => !!c.locRib().get('172.18.0.0/24'), 5000, 'route');
  // A route c holds from a that a's Adj-RIB-Out does not have (as if a lost it without a withdrawal).
  const { update, valid } = await import('./update-bytes.js');
  (hub.sessions.get('10.0.0.3>10.0.0.1') as MemSession).inject(update({ attrs: valid(), nlri: ['172.18.9.0/24'] }));
  await until(() => c.locRib().size === 2, 5000, 'extra route');
  const w: string[] = [];
  c.on('withdrawn', (e: { prefix: string }) => w.push(e.prefix));
  t.ok(c.requestRefresh('10.0.0.1', 1));
  await until(() => w.length === 1, 5000, 'swept at EoRR');
  t.same(w, ['172.18.9.0/24'], 'only the route not re-sent');
  t.equal(c.locRib().get('172.18.0.0/24')?.stale, false, 're-sent route current');
  t.equal(c.peers()[0]!.prefixesStale, 0);
});

t.test("a peer's session drops: nothing of its attribute sets is kept (no cache of them outlives the session)", async (t) => {
  // The cache of a peer's raw attribute bytes → attribute set lived until the peer's next session:
  // after a drop with a full table up to 4096 attribute sets (and their attributes) stayed in memory.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1' });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '1.1.1.2' });
  a.addPeer(ibgp('10.0.0.2'));
  b.addPeer(ibgp('10.0.0.1'));
  await a.start();
  await b.start();
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await until(established(b, 1), 5000, 'up');
  for (let i = 0; i < 50; i++) a.originate(`192.168.${i}.0/24`, { communities: [0xfde80000 + i] });
  await until(() => b.locRib().size === 50, 5000, '50 routes at b');
  const attrs = new WeakRef(b.locRib().paths('192.168.7.0/24')[0]!.attrs);
  t.equal(b.attributeSets > 0, true, 'b holds attribute sets');
  await a.stop();
  await until(() => b.locRib().size === 0, 5000, 'routes flushed at b');
  t.equal(b.attributeSets, 0, 'none interned');
  for (let i = 0; i < 3 && attrs.deref() !== undefined; i++) {
    await new Promise((r) => setTimeout(r, 10));
    gc();
  }
  t.equal(attrs.deref(), undefined, "the peer's attributes are collected");
});
