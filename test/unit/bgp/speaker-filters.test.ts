// BGPFilters in the speaker (in-memory transport, real encoded UPDATEs): import filters act before
// the Loc-RIB (a rejected prefix never becomes best, so never reaches the agent), export filters
// before the Adj-RIB-Out; operations change the attributes on the wire; a filter change is an
// Adj-RIB-Out diff or a route refresh — never a session reset.
import t from 'tap';
import { MemHub, memSpeaker, until, type MemSession } from './speaker-harness.js';
import type { BgpSpeaker, BestRouteEvent, PeerConfig } from '../../../src/bgp/speaker.js';
import type { UpdateMessage } from '../../../src/bgp/codec/types.js';
import type { NamedFilter } from '../../../src/bgp/filter/types.js';

const peer = (address: string, asn: number, extra: Partial<PeerConfig> = {}): PeerConfig => ({
  address,
  asn,
  families: ['ipv4', 'ipv6'],
  ...extra,
});
const established = (s: BgpSpeaker, n: number) => () => s.peers().filter((p) => p.state === 'Established').length === n;

/** a in the middle of b (AS 65002) and c (AS `cAsn`), who peer with a only; `toB` is added to a's session
 *  with b (its filters). Started, stopped in teardown, once a's two sessions are Established. */
async function aroundA(
  t: { teardown(fn: () => unknown): void },
  toB: Partial<PeerConfig> = {},
  cAsn = 65003,
): Promise<{ a: BgpSpeaker; b: BgpSpeaker; c: BgpSpeaker }> {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65001, routerId: '1.1.1.1' });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65002, routerId: '2.2.2.2' });
  const c = memSpeaker(hub, '10.0.0.3', { asn: cAsn, routerId: '3.3.3.3' });
  a.addPeer(peer('10.0.0.2', 65002, { localAddress: '10.0.0.1', ...toB }));
  a.addPeer(peer('10.0.0.3', cAsn, { localAddress: '10.0.0.1' }));
  b.addPeer(peer('10.0.0.1', 65001, { localAddress: '10.0.0.2' }));
  c.addPeer(peer('10.0.0.1', 65001, { localAddress: '10.0.0.3' }));
  for (const s of [a, b, c]) await s.start();
  t.teardown(() => Promise.all([a, b, c].map((s) => s.stop())));
  await until(established(a, 2), 5000, 'a established');
  return { a, b, c };
}
const updates = (s: MemSession) => s.received.filter((m): m is UpdateMessage => m.type === 'update');
const nlriOf = (u: UpdateMessage) =>
  Array.from(
    { length: u.nlri.count },
    (_, i) =>
      `${u.nlri.addrs[i]! >>> 24}.${(u.nlri.addrs[i]! >>> 16) & 255}.${(u.nlri.addrs[i]! >>> 8) & 255}.${u.nlri.addrs[i]! & 255}/${u.nlri.lens[i]}`,
  );
const withdrawnOf = (u: UpdateMessage) =>
  Array.from(
    { length: u.withdrawn.count },
    (_, i) =>
      `${u.withdrawn.addrs[i]! >>> 24}.${(u.withdrawn.addrs[i]! >>> 16) & 255}.${(u.withdrawn.addrs[i]! >>> 8) & 255}.${u.withdrawn.addrs[i]! & 255}/${u.withdrawn.lens[i]}`,
  );

/** a (AS 65001) — eBGP — b (AS 65002); b's session toward a carries `bFilters`, a's toward b `aFilters`. */
async function pair(t: { teardown: (fn: () => unknown) => void }, aFilters: NamedFilter[] = [], bFilters: NamedFilter[] = []) {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65001, routerId: '1.1.1.1' });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65002, routerId: '2.2.2.2' });
  a.addPeer(peer('10.0.0.2', 65002, { localAddress: '10.0.0.1', filters: aFilters }));
  b.addPeer(peer('10.0.0.1', 65001, { localAddress: '10.0.0.2', filters: bFilters }));
  await a.start();
  await b.start();
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await until(established(a, 1), 5000, 'a established');
  await until(established(b, 1), 5000, 'b established');
  const atB = hub.sessions.get('10.0.0.2>10.0.0.1') as MemSession; // what b received from a
  return { hub, a, b, atB };
}

t.test('import filter: a rejected prefix never reaches the Loc-RIB nor a best event; counts say so', async (t) => {
  const f: NamedFilter = { name: 'no-66', spec: { importV4: [{ action: 'Reject', matchOperator: 'In', cidr: '10.66.0.0/16' }] } };
  const { a, b } = await pair(t, [], [f]);
  const best: string[] = [];
  b.on('best', (e: BestRouteEvent) => best.push(e.prefix));
  for (const p of ['10.66.1.0/24', '10.66.2.0/24', '10.77.1.0/24']) a.originate(p);
  await until(() => b.locRib().size === 1 && b.peers()[0]!.prefixesReceived === 3, 5000, 'import');
  t.same(best, ['10.77.1.0/24'], 'only the accepted prefix became best (the agent never hears of the others)');
  t.equal(b.locRib().get('10.66.1.0/24'), undefined);
  const st = b.peers()[0]!;
  t.equal(st.prefixesReceived, 3);
  t.equal(st.prefixesAccepted, 1);
  const rx = b.routeReport('10.0.0.1', 'received')!;
  t.same(rx.map((r) => `${r.prefix} ${r.state} ${r.decidedBy}`).sort(), [
    '10.66.1.0/24 rejected no-66 importV4[0] Reject',
    '10.66.2.0/24 rejected no-66 importV4[0] Reject',
    '10.77.1.0/24 best default Accept',
  ]);
  // Withdrawal of a rejected prefix: gone from the received count too.
  a.withdraw('10.66.1.0/24');
  await until(() => b.peers()[0]!.prefixesReceived === 2, 5000, 'withdrawn rejected prefix');
  t.pass('withdrawn');
});

t.test('import operations: community, AS path prepend and priority on the Loc-RIB route', async (t) => {
  const f: NamedFilter = {
    name: 'tag',
    spec: {
      importV4: [
        {
          action: 'Accept',
          matchOperator: 'In',
          cidr: '10.0.0.0/8',
          operations: [{ addCommunity: { value: '65002:7' } }, { prependASPath: { prefix: [65099] } }, { setPriority: { value: 300 } }],
        },
      ],
    },
  };
  const { a, b } = await pair(t, [], [f]);
  a.originate('10.5.0.0/24');
  a.originate('172.16.0.0/24');
  await until(() => b.locRib().size === 2, 5000, 'routes');
  const r = b.locRib().get('10.5.0.0/24')!;
  t.same(r.attrs.communities, [(65002 * 65536 + 7) >>> 0]);
  t.same(r.attrs.asPath, [{ type: 2, asns: [65099, 65001] }]);
  t.equal(r.attrs.priority, 300);
  const other = b.locRib().get('172.16.0.0/24')!;
  t.equal(other.attrs.communities, undefined, 'a prefix outside the cidr is untouched');
});

t.test('export filter: rejected prefixes not sent; operations seen on the wire; a change is a diff, no reset', async (t) => {
  const f = (rules: NamedFilter['spec']['exportV4']): NamedFilter => ({ name: 'out', spec: { exportV4: rules } });
  const first = f([
    { action: 'Reject', matchOperator: 'Equal', cidr: '192.168.2.0/24' },
    {
      action: 'Accept',
      matchOperator: 'In',
      cidr: '192.168.0.0/16',
      operations: [
        { addCommunity: { value: '65001:100' } },
        { addCommunity: { value: '65001:1:2' } },
        { prependASPath: { prefix: [65001, 65001] } },
      ],
    },
  ]);
  const { a, b, atB } = await pair(t, [first]);
  for (const p of ['192.168.1.0/24', '192.168.2.0/24', '10.9.0.0/24']) a.originate(p);
  await until(() => b.locRib().size === 2, 5000, 'exports');
  t.equal(b.locRib().get('192.168.2.0/24'), undefined, 'rejected by exportV4[0]');
  const tagged = b.locRib().get('192.168.1.0/24')!;
  t.same(tagged.attrs.communities, [(65001 * 65536 + 100) >>> 0]);
  t.same(tagged.attrs.largeCommunities, [{ global: 65001, local1: 1, local2: 2 }]);
  t.same(tagged.attrs.asPath, [{ type: 2, asns: [65001, 65001, 65001] }], 'filter prepend, then the eBGP prepend of our AS');
  t.same(b.locRib().get('10.9.0.0/24')!.attrs.asPath, [{ type: 2, asns: [65001] }], 'default Accept: unchanged');
  const adv = a.routeReport('10.0.0.2', 'advertised')!;
  t.same(adv.map((r) => `${r.prefix} ${r.state} ${r.decidedBy}`).sort(), [
    '10.9.0.0/24 advertised default Accept',
    '192.168.1.0/24 advertised out exportV4[1] Accept',
    '192.168.2.0/24 not-advertised out exportV4[0] Reject',
  ]);

  // Change: now 192.168.2.0/24 is allowed and 10.9.0.0/24 rejected.
  const before = updates(atB).length;
  const downs: string[] = [];
  a.on('peer', (e: { state: string }) => downs.push(e.state));
  a.updatePeer(
    peer('10.0.0.2', 65002, {
      localAddress: '10.0.0.1',
      filters: [f([{ action: 'Reject', matchOperator: 'Equal', cidr: '10.9.0.0/24' }])],
    }),
  );
  await until(() => b.locRib().get('192.168.2.0/24') !== undefined && b.locRib().get('10.9.0.0/24') === undefined, 5000, 'diff applied');
  const diff = updates(atB).slice(before);
  t.same(diff.flatMap(withdrawnOf), ['10.9.0.0/24'], 'one WITHDRAW');
  t.same(
    diff.flatMap(nlriOf).sort(),
    ['192.168.1.0/24', '192.168.2.0/24'],
    'UPDATEs: the new prefix and the one whose attributes changed — nothing else',
  );
  t.same(downs, [], 'no session state change');
  t.equal(b.peers()[0]!.state, 'Established');
  t.same(b.locRib().get('192.168.1.0/24')!.attrs.communities, undefined, 'operations gone with the rule');
});

t.test('import filter change: route refresh re-decides without a reset', async (t) => {
  const rej = (cidr: string): NamedFilter => ({ name: 'in', spec: { importV4: [{ action: 'Reject', matchOperator: 'In', cidr }] } });
  const { a, b } = await pair(t, [], [rej('10.1.0.0/16')]);
  for (const p of ['10.1.0.0/24', '10.2.0.0/24']) a.originate(p);
  await until(() => b.locRib().size === 1 && b.peers()[0]!.prefixesReceived === 2, 5000, 'first');
  const refreshes: unknown[] = [];
  a.on('route-refresh', (e: unknown) => refreshes.push(e));
  b.updatePeer(peer('10.0.0.1', 65001, { localAddress: '10.0.0.2', filters: [rej('10.2.0.0/16')] }));
  await until(() => b.locRib().get('10.1.0.0/24') !== undefined && b.locRib().get('10.2.0.0/24') === undefined, 5000, 're-decided');
  t.ok(refreshes.length >= 1, 'a was asked to resend (RFC 2918)');
  t.equal(b.peers()[0]!.prefixesAccepted, 1);
  t.equal(b.peers()[0]!.prefixesReceived, 2);
  t.equal(b.peers()[0]!.state, 'Established');
});

t.test('peerType, source RemotePeers and communities on export; interface of an originated route', async (t) => {
  // c (AS 65003) sends 10.3.0.0/24 to a; a re-advertises to b only what the filter lets through.
  const out: NamedFilter = {
    name: 'edge',
    spec: {
      exportV4: [
        { action: 'Reject', source: 'RemotePeers', peerType: 'eBGP', communities: { values: ['65003:666'] } },
        { action: 'Reject', interface: '*.calico' },
      ],
    },
  };
  const { a, b, c } = await aroundA(t, { filters: [out] });
  c.originate('10.3.0.0/24', { communities: [(65003 * 65536 + 666) >>> 0] });
  c.originate('10.3.1.0/24');
  a.originate('10.1.0.0/24', { interface: 'vxlan.calico' });
  a.originate('10.1.1.0/24', { interface: 'eth0' });
  await until(() => b.locRib().size === 2 && a.locRib().size === 4, 5000, 'b routes');
  await new Promise((r) => setTimeout(r, 50));
  t.same(
    [...b.locRib().routes()].map((r) => r.prefix).sort(),
    ['10.1.1.0/24', '10.3.1.0/24'],
    'the tagged route from an eBGP peer and the vxlan.calico route are held back; the others pass',
  );
  const why = a.routeReport('10.0.0.2', 'advertised')!;
  t.same(
    why
      .filter((r) => r.state === 'not-advertised')
      .map((r) => `${r.prefix} ${r.decidedBy}`)
      .sort(),
    ['10.1.0.0/24 edge exportV4[1] Reject', '10.3.0.0/24 edge exportV4[0] Reject'],
  );
  const back = a.routeReport('10.0.0.3', 'advertised')!;
  t.match(
    back.find((r) => r.prefix === '10.3.0.0/24'),
    { state: 'not-advertised', decidedBy: 'learned from this peer' },
  );
});

t.test('interface (direct) routes: sent only on a rule Accept, never by default, withdrawn with the address', async (t) => {
  // a originates two interface routes and a pool block; b's session has an export filter, c's has none.
  const f = (exportV4: NamedFilter['spec']['exportV4']): NamedFilter => ({ name: 'ifs', spec: { exportV4 } });
  const { a, b, c } = await aroundA(t, { filters: [f([{ action: 'Accept', interface: 'br-*' }])] });
  a.originate('192.168.50.0/24', { interface: 'br-lan', direct: true });
  a.originate('192.168.60.0/24', { interface: 'eth1', direct: true });
  a.originate('10.1.0.0/26');
  const prefixes = (s: BgpSpeaker) => [...s.locRib().routes()].map((r) => r.prefix).sort();
  await until(() => b.locRib().size === 2 && c.locRib().size === 1, 5000, 'routes');
  await new Promise((r) => setTimeout(r, 50));
  t.same(prefixes(b), ['10.1.0.0/26', '192.168.50.0/24'], 'b: the block and the br-* route the rule accepts; eth1 stays home');
  t.same(prefixes(c), ['10.1.0.0/26'], 'c (no filter, default Accept): no interface route at all');
  const why = a.routeReport('10.0.0.2', 'advertised')!;
  t.match(
    why.find((r) => r.prefix === '192.168.60.0/24'),
    { state: 'not-advertised', decidedBy: /interface route: no rule accepts it/ },
  );
  t.match(
    why.find((r) => r.prefix === '192.168.50.0/24'),
    { state: 'advertised', decidedBy: /ifs exportV4\[0\] Accept/ },
  );
  // a Reject in front wins; a plain Accept (by cidr) also sends an interface route, as in Calico
  a.updatePeer(
    peer('10.0.0.2', 65002, {
      localAddress: '10.0.0.1',
      filters: [
        f([
          { action: 'Reject', interface: 'br-lan' },
          { action: 'Accept', cidr: '192.168.0.0/16', matchOperator: 'In' },
        ]),
      ],
    }),
  );
  await until(() => prefixes(b).join() === '10.1.0.0/26,192.168.60.0/24', 5000, 'after the filter change');
  t.pass('br-lan withdrawn by the Reject, eth1 sent by the cidr Accept');
  // the address goes: the route is withdrawn
  a.withdraw('192.168.60.0/24');
  await until(() => prefixes(b).join() === '10.1.0.0/26', 5000, 'withdrawn');
  t.pass('withdrawn when the address went');
});

t.test('import interface: a route matches by the interface whose subnet holds its next hop (setConnected)', async (t) => {
  const f: NamedFilter = { name: 'no-eth1', spec: { importV4: [{ action: 'Reject', interface: 'eth1' }] } };
  const { a, b } = await pair(t, [], [f]);
  a.originate('10.66.1.0/24');
  a.originate('10.66.2.0/24');
  await until(() => b.locRib().size === 2, 5000, 'no connected subnets: the rule matches nothing');
  t.equal(b.locRib().size, 2);
  b.setConnected([{ prefix: '10.0.0.0/24', iface: 'eth1' }]);
  await until(() => b.locRib().size === 0, 5000, 'next hop 10.0.0.1 is on eth1: rejected');
  t.equal(b.locRib().size, 0, 'both routes rejected once eth1 holds the next hop (route refresh, no reset)');
  const rx = b.routeReport('10.0.0.1', 'received')!;
  t.match(
    rx.find((r) => r.prefix === '10.66.1.0/24'),
    { state: 'rejected', decidedBy: /no-eth1 importV4\[0\] Reject/ },
  );
  b.setConnected([
    { prefix: '10.0.0.0/16', iface: 'eth1' },
    { prefix: '10.0.0.0/24', iface: 'eth2' },
  ]);
  await until(() => b.locRib().size === 2, 5000, 'longest match: eth2 holds the next hop now');
  t.equal(b.locRib().size, 2, 'the longest connected subnet decides: eth2, so accepted again');
  t.equal(b.peers()[0]!.state, 'Established');
});

t.test('localASNumber: our AS on one session only (OPEN, eBGP prepend, loop check)', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65001, routerId: '1.1.1.1' });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65002, routerId: '2.2.2.2' });
  a.addPeer(peer('10.0.0.2', 65002, { localAddress: '10.0.0.1', localAsn: 65100 }));
  b.addPeer(peer('10.0.0.1', 65100, { localAddress: '10.0.0.2' })); // b expects AS 65100 from a
  await a.start();
  await b.start();
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await until(established(b, 1), 5000, 'established with the per-peer AS');
  a.originate('10.8.0.0/24');
  await until(() => b.locRib().size === 1, 5000, 'route');
  t.same(b.locRib().get('10.8.0.0/24')!.attrs.asPath, [{ type: 2, asns: [65100] }], "prepended with the session's local AS");
});

t.test('numAllowedLocalASNumbers raised on a live session: the peer is asked to resend, the looped route accepted, no reset', async (t) => {
  // a learns 10.9.0.0/24 from c (AS 65002) and passes it to b: the path holds b's own AS.
  const { a, b, c } = await aroundA(t, {}, 65002);
  await until(established(b, 1), 5000, 'b established');
  c.originate('10.9.0.0/24');
  a.originate('10.8.0.0/24');
  await until(() => b.locRib().get('10.8.0.0/24') !== undefined && a.locRib().get('10.9.0.0/24') !== undefined, 5000, 'routes');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(b.locRib().get('10.9.0.0/24'), undefined, 'AS path 65001 65002 holds our AS: dropped as a loop');
  const refreshes: unknown[] = [];
  a.on('route-refresh', (e: unknown) => refreshes.push(e));
  const since = b.peers()[0]!.since.getTime();
  b.updatePeer(peer('10.0.0.1', 65001, { localAddress: '10.0.0.2', allowOwnAs: 1 }));
  await until(() => b.locRib().get('10.9.0.0/24') !== undefined, 5000, 'looped route accepted after the change');
  t.ok(refreshes.length >= 1, 'a was asked to resend (RFC 2918)');
  t.equal(b.peers()[0]!.state, 'Established');
  t.equal(b.peers()[0]!.since.getTime(), since, 'session not reset');
});
