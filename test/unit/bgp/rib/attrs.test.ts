// Interned attribute sets: found by a numeric hash and compared field by field — the same sets as the
// canonical text key (attrKey) made, colliding hashes kept apart, reference counts letting sets go.
import t from 'tap';
import { Buffer } from 'node:buffer';
import { AttrTable, attrKey, hashAttrs, sameAttrs, type RouteAttributes } from '../../../../src/bgp/rib/attrs.js';

const base = (): RouteAttributes => ({ origin: 0, asPath: [{ type: 2, asns: [65100, 7] }], nextHop: '10.0.0.1' });

// One variant per field attrKey tells apart (each differs from base and from every other variant).
const variants: [string, RouteAttributes][] = [
  ['origin', { ...base(), origin: 1 }],
  ['no origin', { asPath: [{ type: 2, asns: [65100, 7] }], nextHop: '10.0.0.1' }],
  ['next hop', { ...base(), nextHop: '10.0.0.2' }],
  ['link-local', { ...base(), linkLocal: 'fe80::1' }],
  ['AS path', { ...base(), asPath: [{ type: 2, asns: [65100, 8] }] }],
  ['AS path longer', { ...base(), asPath: [{ type: 2, asns: [65100, 7, 7] }] }],
  ['AS_SET', { ...base(), asPath: [{ type: 1, asns: [65100, 7] }] }],
  [
    'two segments',
    {
      ...base(),
      asPath: [
        { type: 2, asns: [65100] },
        { type: 2, asns: [7] },
      ],
    },
  ],
  ['MED', { ...base(), med: 0 }],
  ['MED 5', { ...base(), med: 5 }],
  ['LOCAL_PREF', { ...base(), localPref: 100 }],
  ['atomic', { ...base(), atomicAggregate: true }],
  ['aggregator', { ...base(), aggregator: { asn: 7, address: '1.2.3.4' } }],
  ['aggregator address', { ...base(), aggregator: { asn: 7, address: '1.2.3.5' } }],
  ['communities', { ...base(), communities: [0xfde80001] }],
  ['communities order', { ...base(), communities: [1, 2] }],
  ['communities order 2', { ...base(), communities: [2, 1] }],
  ['originator', { ...base(), originatorId: '1.1.1.1' }],
  ['cluster list', { ...base(), clusterList: ['2.2.2.2'] }],
  ['ext communities', { ...base(), extCommunities: [0x0002fde800000001n] }],
  ['ext communities high', { ...base(), extCommunities: [0x0003fde800000001n] }],
  ['large communities', { ...base(), largeCommunities: [{ global: 1, local1: 2, local2: 3 }] }],
  ['unknown', { ...base(), unknown: [{ code: 99, flags: 0xc0, value: Buffer.from([1, 2]) }] }],
  ['unknown value', { ...base(), unknown: [{ code: 99, flags: 0xc0, value: Buffer.from([1, 3]) }] }],
  ['priority', { ...base(), priority: 512 }],
];

t.test('equal attributes are one set; every field tells sets apart (as the text key did)', async (t) => {
  for (const hash of [hashAttrs, () => 0]) {
    const tbl = new AttrTable(hash);
    const a = tbl.intern(base());
    t.equal(tbl.intern(base()), a, 'built again: the same set');
    // property order, empty lists and atomicAggregate false do not make a set of their own (as attrKey)
    t.equal(tbl.intern({ nextHop: '10.0.0.1', asPath: [{ type: 2, asns: [65100, 7] }], origin: 0, communities: [], clusterList: [] }), a);
    t.equal(tbl.intern({ ...base(), atomicAggregate: false, extCommunities: [], largeCommunities: [], unknown: [] }), a);
    const seen = new Set([a]);
    for (const [name, v] of variants) {
      const s = tbl.intern(v);
      t.notOk(seen.has(s), `${name}: a set of its own${hash === hashAttrs ? '' : ' (every hash colliding)'}`);
      seen.add(s);
      t.equal(tbl.intern(structuredClone(v)), s, `${name}: found again`);
    }
    t.equal(tbl.size, variants.length + 1);
  }
});

t.test('sameAttrs agrees with the text key, and equal attributes hash alike', async (t) => {
  const all = [base(), ...variants.map(([, v]) => v)];
  for (const x of all)
    for (const y of all) {
      const same = attrKey(x) === attrKey(y);
      if (sameAttrs(x, y) !== same) t.fail(`${attrKey(x)} vs ${attrKey(y)}`);
      if (same && hashAttrs(x) !== hashAttrs(y)) t.fail(`hash differs for ${attrKey(x)}`);
    }
  t.pass(`${all.length ** 2} pairs`);
});

t.test('reference counts: a set leaves when its last holder lets go; colliding ones stay findable', async (t) => {
  const tbl = new AttrTable(() => 7);
  const [a, b, c] = [variants[0]![1], variants[1]![1], variants[2]![1]].map((v) => tbl.intern(v));
  for (const s of [a, b, c]) tbl.ref(s!);
  tbl.ref(b!);
  tbl.unref(b!);
  t.equal(tbl.size, 3, 'b still held once');
  tbl.unref(b!);
  t.equal(tbl.size, 2, 'b gone');
  t.equal(tbl.intern(variants[0]![1]), a, 'a still found');
  t.equal(tbl.intern(variants[2]![1]), c, 'c still found');
  const b2 = tbl.intern(variants[1]![1]);
  t.not(b2, b, 'b interned anew after it left');
  tbl.unref(a!);
  tbl.unref(c!);
  t.equal(tbl.size, 1, 'only the new b (no holder yet)');
});

t.test('sets with one next hop share its string and its next-hop array; equal sets are found again after many others', async (t) => {
  const tab = new AttrTable();
  const a = tab.intern({ origin: 0, nextHop: ['10.0.0', '9'].join('.'), med: 1 });
  const b = tab.intern({ origin: 0, nextHop: ['10.0', '0.9'].join('.'), med: 2 });
  t.not(a, b);
  t.equal(a.nextHops, b.nextHops, 'one frozen array');
  t.ok(Object.isFrozen(a.nextHops));
  t.same(a.nextHops, ['10.0.0.9']);
  t.equal(a.nextHop, '10.0.0.9');
  const none = tab.intern({ origin: 0, med: 3 });
  t.same(none.nextHops, [''], 'no next hop: [""] as before');
  // the bucket array grows and shrinks under the chains
  const many = Array.from({ length: 5000 }, (_, i) => tab.intern({ origin: 0, nextHop: '10.0.0.9', med: 100 + i }));
  for (const s of many) tab.ref(s);
  t.equal(tab.size, 5003);
  t.equal(tab.intern({ origin: 0, nextHop: '10.0.0.9', med: 2 }), b, 'found in its chain after growth');
  for (const s of many) tab.unref(s);
  t.equal(tab.size, 3);
  t.equal(tab.intern({ origin: 0, nextHop: '10.0.0.9', med: 1 }), a, 'found in its chain after shrinking');
  t.not(tab.intern({ origin: 0, nextHop: '10.0.0.9', med: 104 }), many[4], 'a released set is not found');
});
