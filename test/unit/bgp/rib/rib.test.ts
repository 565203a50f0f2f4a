// Loc-RIB (change detection, best first), prefix table keys, Adj-RIB-Out (coalescing, grouping by
// attribute set, reference counts), policy and reflection rules.
import { parseIpv4Number } from '../../../../src/common/ip.js';
import t from 'tap';
import { AttrTable, type RouteAttributes } from '../../../../src/bgp/rib/attrs.js';
import { LocRib } from '../../../../src/bgp/rib/loc-rib.js';
import { AdjRibOut } from '../../../../src/bgp/rib/adj-rib-out.js';
import { Path, peerSource, LOCAL_SOURCE } from '../../../../src/bgp/rib/path.js';
import {
  PrefixTable,
  parsePrefixKey,
  formatPrefixKey,
  keyAt,
  bucketAt,
  BUCKET_V6,
  newPrefixList,
  writePrefix,
} from '../../../../src/bgp/rib/prefix-table.js';
import { importAttrs, exportAttrs, type PeerPolicy } from '../../../../src/bgp/policy.js';
import { shouldAdvertise } from '../../../../src/bgp/reflector.js';

const table = new AttrTable();
const A = (a: Partial<RouteAttributes> = {}) => table.intern({ origin: 0, asPath: [], nextHop: '10.0.0.1', ...a });
const p1 = peerSource({ id: 1, address: '10.0.0.1', ebgp: false, asn: 65000, routerId: parseIpv4Number('1.1.1.1') });
const p2 = peerSource({ id: 2, address: '10.0.0.2', ebgp: false, asn: 65000, routerId: parseIpv4Number('2.2.2.2') });

function prefixListFromStrings(afi: 1 | 2, cidrs: string[]) {
  const l = newPrefixList(afi, cidrs.length);
  cidrs.forEach((c, i) => {
    const k = parsePrefixKey(c);
    writePrefix(l, i, k.bucket, k.key);
  });
  l.count = cidrs.length;
  return l;
}

t.test('prefix keys', async (t) => {
  for (const s of ['10.0.0.0/24', '0.0.0.0/0', '255.255.255.255/32', '192.168.1.128/25', 'fd00::/64', '::/0', '2001:db8::1/128']) {
    const { bucket, key } = parsePrefixKey(s);
    t.equal(formatPrefixKey(bucket, key), s, s);
  }
  t.equal(formatPrefixKey(parsePrefixKey('10.0.0.7/24').bucket, parsePrefixKey('10.0.0.7/24').key), '10.0.0.0/24', 'host bits cleared');
  const list = prefixListFromStrings(1, ['10.1.2.0/24', '200.0.0.0/8']);
  t.equal(formatPrefixKey(bucketAt(list, 1), keyAt(list, 1)), '200.0.0.0/8');
  const l6 = prefixListFromStrings(2, ['fd00:1::/48']);
  t.equal(bucketAt(l6, 0), BUCKET_V6);
  t.equal(formatPrefixKey(bucketAt(l6, 0), keyAt(l6, 0)), 'fd00:1::/48');
  const pt = new PrefixTable<number>();
  pt.set(24, 5, 1);
  pt.set(24, 5, 2);
  pt.set(25, 5, 3);
  t.equal(pt.size, 2);
  t.equal(pt.get(24, 5), 2);
  pt.delete(24, 5);
  t.equal(pt.size, 1);
});

t.test('Loc-RIB reports changes of the best path only', async (t) => {
  const rib = new LocRib();
  const k = parsePrefixKey('10.0.0.0/24');
  const a1 = new Path(p1, A({ localPref: 100 }));
  t.equal(rib.upsert(k.bucket, k.key, a1), true, 'first path: change');
  t.equal(rib.upsert(k.bucket, k.key, new Path(p1, A({ localPref: 100 }))), false, 'same source, same attrs: no change');
  const b = new Path(p2, A({ localPref: 50 }));
  t.equal(rib.upsert(k.bucket, k.key, b), false, 'worse path added: no change');
  t.equal(rib.best(k.bucket, k.key)?.source, p1);
  const b2 = new Path(p2, A({ localPref: 200 }));
  t.equal(rib.upsert(k.bucket, k.key, b2), true, 'better path replaces: change');
  t.equal(rib.best(k.bucket, k.key), b2);
  t.equal(rib.paths(k.bucket, k.key).length, 2);
  t.equal(rib.remove(k.bucket, k.key, p1), false, 'removing the non-best: no change');
  t.equal(rib.remove(k.bucket, k.key, p2), true, 'removing the last: change');
  t.equal(rib.best(k.bucket, k.key), undefined);
  t.equal(rib.size, 0);
});

t.test('Loc-RIB multipath changes are changes', async (t) => {
  const rib = new LocRib({ multipath: true });
  const k = parsePrefixKey('10.9.0.0/24');
  rib.upsert(k.bucket, k.key, new Path(p1, A({ nextHop: '10.0.0.1' })));
  t.equal(rib.upsert(k.bucket, k.key, new Path(p2, A({ nextHop: '10.0.0.2' }))), true, 'second equal-cost path joins the set');
  t.same(
    rib.decision(k.bucket, k.key).multipath.map((p) => p.attrs.nextHop),
    ['10.0.0.1', '10.0.0.2'],
  );
  t.equal(rib.remove(k.bucket, k.key, p2), true, 'leaves the set');
});

t.test('Adj-RIB-Out coalesces and groups by attribute set', async (t) => {
  const tb = new AttrTable();
  const out = new AdjRibOut(tb);
  const x = tb.intern({ origin: 0, nextHop: '1.1.1.1' });
  const y = tb.intern({ origin: 1, nextHop: '1.1.1.1' });
  const keys = ['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24', 'fd00::/64'].map(parsePrefixKey);
  for (const k of keys) out.want(k.bucket, k.key, x);
  out.want(keys[2]!.bucket, keys[2]!.key, y);
  let batches = out.take();
  t.equal(batches.length, 3, 'x/v4, x/v6, y/v4');
  const xv4 = batches.find((b) => b.attrs === x && b.afi === 1)!;
  t.equal(xv4.prefixes.count, 2);
  t.equal(batches.find((b) => b.attrs === x && b.afi === 2)!.prefixes.count, 1);
  t.equal(x.refs, 3);
  t.equal(y.refs, 1);
  t.equal(out.want(keys[0]!.bucket, keys[0]!.key, x), false, 'want says nothing is pending…');
  t.equal(out.pendingCount, 0, 'unchanged wish is not pending');
  t.equal(out.want(keys[0]!.bucket, keys[0]!.key, null), true, '…or that a change is');
  out.want(keys[1]!.bucket, keys[1]!.key, null);
  out.want(keys[1]!.bucket, keys[1]!.key, x);
  t.equal(out.pendingCount, 1, 'withdraw then re-announce of the same thing cancels out');
  const never = parsePrefixKey('10.9.0.0/24');
  t.equal(out.want(never.bucket, never.key, null), false, 'nothing for a prefix the peer never had (split horizon)');
  batches = out.take();
  t.equal(batches.length, 1);
  t.equal(batches[0]!.attrs, null, 'a withdrawal');
  t.equal(x.refs, 2);
  t.equal(
    out.dump().reduce((s, b) => s + b.prefixes.count, 0),
    3,
    'dump = what the peer has',
  );
  out.clear();
  t.equal(tb.size, 0, 'all references dropped');
});

const peer = (o: Partial<PeerPolicy> = {}): PeerPolicy => ({
  asn: 65000,
  ebgp: false,
  rrClient: false,
  nextHopSelf: false,
  keepOriginalNextHop: false,
  allowOwnAs: 0,
  localAddress: '10.0.0.100',
  ...o,
});
const self = { asn: 65000, routerId: '9.9.9.9', clusterId: '7.7.7.7' };

t.test('import: loops and eBGP attribute hygiene', async (t) => {
  const looped: RouteAttributes = { origin: 0, asPath: [{ type: 2, asns: [65001, 65000] }], nextHop: '1.1.1.1' };
  t.same(importAttrs(self, peer({ ebgp: true, asn: 65001 }), looped), { ok: false, reason: 'as-loop' });
  t.equal(importAttrs(self, peer({ ebgp: true, asn: 65001, allowOwnAs: 1 }), looped).ok, true, 'allowed once');
  t.same(importAttrs(self, peer(), { origin: 0, asPath: [], originatorId: '9.9.9.9' }), { ok: false, reason: 'originator-loop' });
  t.same(importAttrs(self, peer(), { origin: 0, asPath: [], clusterList: ['1.2.3.4', '7.7.7.7'] }), { ok: false, reason: 'cluster-loop' });
  const r = importAttrs(self, peer({ ebgp: true, asn: 65001 }), {
    origin: 0,
    asPath: [{ type: 2, asns: [65001] }],
    localPref: 500,
    originatorId: '1.1.1.1',
  });
  t.ok(r.ok && r.attrs.localPref === undefined && r.attrs.originatorId === undefined, 'LOCAL_PREF/ORIGINATOR_ID from eBGP ignored');
});

t.test('export: eBGP prepends and sets next hop self; iBGP reflection keeps next hop', async (t) => {
  const ebgpSrc = peerSource({ id: 3, address: '192.0.2.1', ebgp: true, asn: 65001 });
  const attrs: RouteAttributes = { origin: 0, asPath: [{ type: 2, asns: [65001] }], nextHop: '192.0.2.1', med: 5, localPref: 100 };
  const toE = exportAttrs(self, peer({ ebgp: true, asn: 65002 }), ebgpSrc, attrs, 1)!;
  t.same(toE.asPath, [{ type: 2, asns: [65000, 65001] }]);
  t.equal(toE.nextHop, '10.0.0.100');
  t.equal(toE.localPref, undefined);
  t.equal(toE.med, undefined, 'MED not passed to another AS');
  t.equal(
    exportAttrs(self, peer({ ebgp: true, asn: 65002, keepOriginalNextHop: true }), ebgpSrc, attrs, 1)!.nextHop,
    '192.0.2.1',
    'keepOriginalNextHop',
  );
  const toI = exportAttrs(self, peer(), ebgpSrc, attrs, 1)!;
  t.equal(toI.nextHop, '192.0.2.1', 'eBGP-learned to iBGP: next hop unchanged');
  t.equal(exportAttrs(self, peer({ nextHopSelf: true }), ebgpSrc, attrs, 1)!.nextHop, '10.0.0.100', 'nextHopSelf');
  const client = peerSource({ id: 4, address: '10.0.0.4', ebgp: false, asn: 65000, routerId: parseIpv4Number('4.4.4.4'), rrClient: true });
  const refl = exportAttrs(self, peer({ rrClient: true }), client, { origin: 0, asPath: [], nextHop: '10.0.0.4', localPref: 100 }, 1)!;
  t.equal(refl.originatorId, '4.4.4.4');
  t.same(refl.clusterList, ['7.7.7.7']);
  t.equal(refl.nextHop, '10.0.0.4', 'reflection keeps the next hop (RFC 4456 §10)');
  const reflSelf = exportAttrs(
    self,
    peer({ rrClient: true, nextHopSelf: true }),
    client,
    { origin: 0, asPath: [], nextHop: '10.0.0.4', localPref: 100 },
    1,
  )!;
  t.equal(reflSelf.nextHop, '10.0.0.100', "nextHopSelf (nextHopMode: Self) rewrites a reflected route too, as BIRD's next hop self");
  t.same(reflSelf.clusterList, ['7.7.7.7'], 'still reflected: CLUSTER_LIST');
  const again = exportAttrs(
    self,
    peer(),
    client,
    { origin: 0, asPath: [], nextHop: '10.0.0.4', originatorId: '5.5.5.5', clusterList: ['1.1.1.1'] },
    1,
  )!;
  t.equal(again.originatorId, '5.5.5.5', 'existing ORIGINATOR_ID kept');
  t.same(again.clusterList, ['7.7.7.7', '1.1.1.1'], 'cluster ID prepended');
  const local = exportAttrs(self, peer(), LOCAL_SOURCE, { origin: 0, asPath: [] }, 1)!;
  t.equal(local.nextHop, '10.0.0.100', 'local route without next hop: self');
  t.equal(local.localPref, 100);
  t.equal(
    exportAttrs(self, peer({ ebgp: true, asn: 1 }), LOCAL_SOURCE, { origin: 0, asPath: [], communities: [0xffffff01] }, 1),
    null,
    'NO_EXPORT',
  );
  t.equal(exportAttrs(self, peer(), LOCAL_SOURCE, { origin: 0, asPath: [], communities: [0xffffff02] }, 1), null, 'NO_ADVERTISE');
});

t.test('reflection: who gets what', async (t) => {
  const ibgp = peerSource({ id: 5, address: '10.0.0.5', ebgp: false, asn: 65000 });
  const client = peerSource({ id: 6, address: '10.0.0.6', ebgp: false, asn: 65000, rrClient: true });
  const ebgp = peerSource({ id: 7, address: '10.0.0.7', ebgp: true, asn: 1 });
  const to = (s: typeof ibgp) => ({ source: s, ebgp: s.ebgp, rrClient: s.rrClient });
  t.equal(shouldAdvertise(ibgp, to(ibgp), true), false, 'never back to the source');
  t.equal(shouldAdvertise(ibgp, to(p1), false), false, 'full mesh: iBGP not to iBGP');
  t.equal(shouldAdvertise(ibgp, to(ebgp), false), true, 'iBGP to eBGP');
  t.equal(shouldAdvertise(ebgp, to(ibgp), false), true, 'eBGP to iBGP');
  t.equal(shouldAdvertise(LOCAL_SOURCE, to(ibgp), false), true, 'local to all');
  t.equal(shouldAdvertise(client, to(ibgp), true), true, 'RR: client → non-client');
  t.equal(shouldAdvertise(ibgp, to(client), true), true, 'RR: non-client → client');
  t.equal(shouldAdvertise(ibgp, to(p1), true), false, 'RR: non-client → non-client: no');
});

t.test('IntTable: a model check against Map (inserts, deletes, iteration while deleting)', async (t) => {
  const { IntTable } = await import('../../../../src/bgp/rib/prefix-table.js');
  const tb = new IntTable<number>();
  const model = new Map<number, number>();
  let s = 1;
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s;
  };
  let mismatches = 0;
  for (let i = 0; i < 200_000; i++) {
    const k = ((rnd() % 5000) - 2500) | 0;
    const op = rnd() % 4;
    if (op < 2) {
      if (tb.set(k, i) !== !model.has(k)) mismatches++;
      model.set(k, i);
    } else if (op === 2) {
      if (tb.delete(k) !== model.delete(k)) mismatches++;
    } else {
      // setIfAbsent: the existing value, or undefined and inserted (reusing tombstones)
      if (tb.setIfAbsent(k, i) !== model.get(k)) mismatches++;
      if (!model.has(k)) model.set(k, i);
    }
  }
  t.equal(mismatches, 0, 'set/setIfAbsent/delete report the same as Map');
  t.equal(tb.size, model.size);
  let same = true;
  for (const [k, v] of model) if (tb.get(k) !== v) same = false;
  t.ok(same, 'every key maps to the same value');
  let seen = 0;
  tb.forEach((_v, k) => {
    seen++;
    tb.delete(k);
  });
  t.equal(seen, model.size, 'forEach visits each entry once while deleting');
  t.equal(tb.size, 0);
  for (let i = 0; i < 1000; i++) tb.set(i, i);
  const got = new Set<number>();
  for (const [k] of tb.entries()) {
    got.add(k);
    if (k === 10) for (let j = 1000; j < 5000; j++) tb.set(j, j);
  }
  for (let i = 0; i < 1000; i++) if (!got.has(i)) t.fail(`entry ${i} skipped by an iterator across a rehash`);
  t.pass('no entry present from the start is skipped');
});
