// Table tests of the decision process (RFC 4271 §9.1.2): every tie-breaker in isolation — two paths
// equal in everything except the one criterion, checked in both input orders — plus MED scoping,
// AS-path length counting rules and multipath.
import { parseIpv4Number } from '../../../../src/common/ip.js';
import t from 'tap';
import { decide, comparePaths, DECISION_STEPS, type DecisionReason } from '../../../../src/bgp/rib/decision.js';
import { AttrTable, type RouteAttributes, asPathLength } from '../../../../src/bgp/rib/attrs.js';
import { Path, peerSource, LOCAL_SOURCE, type PathSource } from '../../../../src/bgp/rib/path.js';

const table = new AttrTable();
const base: RouteAttributes = { origin: 0, asPath: [{ type: 2, asns: [65001] }], nextHop: '10.0.0.1' };
const src = (o: Partial<{ address: string; ebgp: boolean; routerId: string; asn: number }> = {}): PathSource =>
  peerSource({
    id: 1,
    address: o.address ?? '10.0.0.1',
    ebgp: o.ebgp ?? false,
    routerId: parseIpv4Number(o.routerId ?? '1.1.1.1'),
    asn: o.asn ?? 65000,
  });
const path = (attrs: Partial<RouteAttributes>, s: PathSource = src()): Path => new Path(s, table.intern({ ...base, ...attrs }));

interface Row {
  name: string;
  winner: Path;
  loser: Path;
  reason: DecisionReason;
}

const rows: Row[] = [
  {
    name: 'locally originated beats learned',
    winner: new Path(LOCAL_SOURCE, table.intern({ ...base, localPref: 50 })),
    loser: path({ localPref: 500 }),
    reason: 'local',
  },
  { name: 'higher LOCAL_PREF', winner: path({ localPref: 200 }), loser: path({ localPref: 100 }), reason: 'local-pref' },
  { name: 'missing LOCAL_PREF counts as 100', winner: path({}), loser: path({ localPref: 99 }), reason: 'local-pref' },
  {
    name: 'shorter AS_PATH',
    winner: path({ asPath: [{ type: 2, asns: [65001] }] }),
    loser: path({ asPath: [{ type: 2, asns: [65001, 65002] }] }),
    reason: 'as-path',
  },
  {
    name: 'AS_SET counts as one',
    winner: path({
      asPath: [
        { type: 2, asns: [65001] },
        { type: 1, asns: [1, 2, 3, 4] },
      ],
    }),
    loser: path({ asPath: [{ type: 2, asns: [65001, 65002, 65003] }] }),
    reason: 'as-path',
  },
  {
    name: 'confederation segments count zero',
    winner: path({
      asPath: [
        { type: 3, asns: [7, 8, 9] },
        { type: 2, asns: [65001] },
      ],
    }),
    loser: path({ asPath: [{ type: 2, asns: [65001, 65002] }] }),
    reason: 'as-path',
  },
  { name: 'lower ORIGIN (IGP < EGP)', winner: path({ origin: 0 }), loser: path({ origin: 1 }), reason: 'origin' },
  { name: 'lower ORIGIN (EGP < INCOMPLETE)', winner: path({ origin: 1 }), loser: path({ origin: 2 }), reason: 'origin' },
  { name: 'lower MED from the same neighbour AS', winner: path({ med: 10 }), loser: path({ med: 20 }), reason: 'med' },
  { name: 'missing MED counts as 0', winner: path({}), loser: path({ med: 1 }), reason: 'med' },
  { name: 'eBGP over iBGP', winner: path({}, src({ ebgp: true, asn: 65001 })), loser: path({}, src({ ebgp: false })), reason: 'ebgp' },
  {
    name: 'lower BGP Identifier',
    winner: path({}, src({ routerId: '1.1.1.1', address: '10.0.0.9' })),
    loser: path({}, src({ routerId: '2.2.2.2', address: '10.0.0.1' })),
    reason: 'router-id',
  },
  {
    name: 'ORIGINATOR_ID stands in for the BGP Identifier',
    winner: path({ originatorId: '1.0.0.1' }, src({ routerId: '9.9.9.9' })),
    loser: path({}, src({ routerId: '2.2.2.2' })),
    reason: 'router-id',
  },
  {
    name: 'shorter CLUSTER_LIST',
    winner: path({ originatorId: '3.3.3.3', clusterList: ['1.1.1.1'] }),
    loser: path({ originatorId: '3.3.3.3', clusterList: ['2.2.2.2', '1.1.1.1'] }),
    reason: 'cluster-list',
  },
  {
    name: 'lower peer address',
    winner: path({}, src({ address: '10.0.0.1' })),
    loser: path({}, src({ address: '10.0.0.2' })),
    reason: 'peer-address',
  },
  {
    name: 'lower peer address (IPv6)',
    winner: path({}, src({ address: 'fd00::1' })),
    loser: path({}, src({ address: 'fd00::1:0' })),
    reason: 'peer-address',
  },
];

for (const r of rows) {
  t.test(r.name, async (t) => {
    for (const order of [
      [r.winner, r.loser],
      [r.loser, r.winner],
    ]) {
      const d = decide(order);
      t.equal(d.best, r.winner, 'winner');
      t.equal(d.reason, r.reason, 'reason');
    }
    t.ok(comparePaths(r.winner, r.loser) < 0);
    t.ok(comparePaths(r.loser, r.winner) > 0);
  });
}

t.test('every step has a row', async (t) => {
  const covered = new Set(rows.map((r) => r.reason));
  for (const s of DECISION_STEPS) t.ok(covered.has(s.name), s.name);
});

t.test('each criterion only decides when all earlier ones tie', async (t) => {
  // A higher LOCAL_PREF beats a shorter AS path, a shorter AS path beats a lower origin, ...
  const d1 = decide([path({ localPref: 200, asPath: [{ type: 2, asns: [1, 2, 3] }] }), path({ localPref: 100 })]);
  t.equal(d1.reason, 'local-pref');
  t.equal(d1.best?.attrs.localPref, 200);
  const d2 = decide([path({ origin: 2 }), path({ origin: 0, asPath: [{ type: 2, asns: [1, 2] }] })]);
  t.equal(d2.reason, 'as-path');
  t.equal(d2.best?.attrs.origin, 2);
  const d3 = decide([path({ origin: 0, med: 500 }), path({ origin: 1, med: 0 })]);
  t.equal(d3.reason, 'origin');
  t.equal(d3.best?.attrs.med, 500);
});

t.test('MED is not compared between different neighbouring ASes', async (t) => {
  const a = path({ med: 100, asPath: [{ type: 2, asns: [65001] }] }, src({ routerId: '1.1.1.1' }));
  const b = path({ med: 10, asPath: [{ type: 2, asns: [65002] }] }, src({ routerId: '2.2.2.2' }));
  const d = decide([b, a]);
  t.equal(d.best, a, 'decided later, by router id');
  t.equal(d.reason, 'router-id');
  t.equal(decide([b, a], { alwaysCompareMed: true }).best, b, 'alwaysCompareMed compares across ASes');
  // Three paths: MED eliminates within AS 65001 only.
  const c = path({ med: 50, asPath: [{ type: 2, asns: [65001] }] }, src({ routerId: '0.0.0.1' }));
  const d2 = decide([a, b, c]);
  t.equal(d2.best, c, 'c beats a on MED (same AS) and b on router id');
});

t.test('AS path length counting', async (t) => {
  t.equal(asPathLength([{ type: 2, asns: [1, 2, 3] }]), 3);
  t.equal(
    asPathLength([
      { type: 2, asns: [1] },
      { type: 1, asns: [5, 6, 7] },
    ]),
    2,
  );
  t.equal(
    asPathLength([
      { type: 3, asns: [1, 2] },
      { type: 4, asns: [3] },
      { type: 2, asns: [9] },
    ]),
    1,
  );
  t.equal(asPathLength(undefined), 0);
});

t.test('single and empty candidate sets', async (t) => {
  const p = path({});
  t.same(decide([p]), { best: p, reason: 'only-path', multipath: [p] });
  t.equal(decide([]).best, undefined);
});

t.test('identical paths are equal', async (t) => {
  const a = path({}, src());
  const b = path({}, src());
  t.equal(comparePaths(a, b), 0);
  t.equal(decide([a, b]).reason, 'equal');
});

t.test('multipath: equal up to eBGP/iBGP, distinct next hops, best first', async (t) => {
  const a = path({ nextHop: '10.0.0.1' }, src({ routerId: '1.1.1.1', address: '10.0.0.1' }));
  const b = path({ nextHop: '10.0.0.2' }, src({ routerId: '2.2.2.2', address: '10.0.0.2' }));
  const c = path({ nextHop: '10.0.0.3', localPref: 50 }, src({ routerId: '0.0.0.3', address: '10.0.0.3' }));
  const dup = path({ nextHop: '10.0.0.1' }, src({ routerId: '3.3.3.3', address: '10.0.0.4' }));
  const d = decide([c, b, dup, a], { multipath: true });
  t.equal(d.best, a);
  t.same(
    d.multipath.map((p) => p.attrs.nextHop),
    ['10.0.0.1', '10.0.0.2'],
    'c (lower LOCAL_PREF) excluded, duplicate next hop once',
  );
  t.same(decide([c, b, a]).multipath, [a], 'without multipath: only the best');
  t.equal(decide([b, a], { multipath: true, maxPaths: 1 }).multipath.length, 1, 'maxPaths');
  const e = path({ nextHop: '10.0.0.5' }, src({ ebgp: true, asn: 65001 }));
  t.same(decide([a, b, e], { multipath: true }).multipath, [e], 'an eBGP best does not share with iBGP paths');
});

t.test('interning: one object per distinct set', async (t) => {
  const t2 = new AttrTable();
  const x = t2.intern({ origin: 0, nextHop: '1.1.1.1', communities: [1, 2] });
  const y = t2.intern({ communities: [1, 2], nextHop: '1.1.1.1', origin: 0 });
  const z = t2.intern({ origin: 0, nextHop: '1.1.1.1', communities: [2, 1] });
  t.equal(x, y, 'same attributes, same object');
  t.not(x, z, 'different community order is a different set');
  t.ok(Object.isFrozen(x.attrs) && Object.isFrozen(x.attrs.communities), 'frozen');
  t.equal(t2.size, 2);
  t2.ref(x);
  t2.ref(x);
  t2.unref(x);
  t.equal(t2.size, 2, 'still referenced');
  t2.unref(x);
  t.equal(t2.size, 1, 'last reference gone: removed');
  t.not(t2.intern({ origin: 0, nextHop: '1.1.1.1', communities: [1, 2] }), x, 'a fresh object after removal');
});
