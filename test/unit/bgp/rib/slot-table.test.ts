// SlotTable: the Loc-RIB's prefix → paths storage (int32 pairs per IPv4 length, path ids, multi-path
// arrays by index, a Map for IPv6), checked against a plain Map model.
import t from 'tap';
import { SlotTable, type Slot } from '../../../../src/bgp/rib/slot-table.js';
import { Path, peerSource } from '../../../../src/bgp/rib/path.js';
import { AttrTable } from '../../../../src/bgp/rib/attrs.js';
import { parsePrefixKey, formatPrefixKey } from '../../../../src/bgp/rib/prefix-table.js';

const attrs = new AttrTable();
const src = (i: number) => peerSource({ id: i, address: `10.0.0.${i}`, ebgp: true, asn: 65000 + i });
const paths = Array.from({ length: 50 }, (_, i) => new Path(src(1 + (i % 3)), attrs.intern({ origin: 0, med: i, nextHop: '10.0.0.1' })));

t.test('agrees with a Map through inserts, replacements, multi-path arrays and deletes (growing and shrinking)', async (t) => {
  const tab = new SlotTable();
  const model = new Map<string, Slot>();
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  let wrong = 0; // setIfAbsent / delete results that differ from the model's
  const prefixes: string[] = [];
  for (let i = 0; i < 30_000; i++) prefixes.push(`${10 + (i % 7)}.${(i >> 8) & 255}.${i & 255}.0/${24 + (i % 3)}`);
  prefixes.push('fd00::/64', 'fd00:1::/48');
  for (let step = 0; step < 150_000; step++) {
    const p = prefixes[rnd(step < 60_000 ? prefixes.length : 2000)]!;
    const { bucket, key } = parsePrefixKey(p);
    const op = rnd(10);
    if (op < 5) {
      const v: Slot = rnd(4) === 0 ? [paths[rnd(50)]!, paths[rnd(50)]!] : paths[rnd(50)]!;
      tab.set(bucket, key, v);
      model.set(p, v);
    } else if (op < 7) {
      const v = paths[rnd(50)]!;
      const cur = tab.setIfAbsent(bucket, key, v);
      if (cur !== model.get(p)) wrong++;
      if (cur === undefined) model.set(p, v);
    } else {
      if (tab.delete(bucket, key) !== model.delete(p)) wrong++;
    }
    if (step % 10_000 === 0 || step === 149_999) {
      t.equal(tab.size, model.size, `size at step ${step}`);
      let n = 0;
      let bad = 0;
      tab.forEach((v, b, k) => {
        n++;
        if (model.get(formatPrefixKey(b, k)) !== v) bad++;
      });
      t.equal(n, model.size, 'forEach visits every entry once');
      t.equal(bad, 0, 'forEach values');
      for (const [pfx, v] of model) {
        const k = parsePrefixKey(pfx);
        if (tab.get(k.bucket, k.key) !== v) bad++;
      }
      t.equal(bad, 0, 'get agrees with the model');
    }
  }
  t.equal(wrong, 0, 'setIfAbsent and delete agree with the model');
  const arrays = [...model.values()].filter((v) => Array.isArray(v)).length;
  t.ok(tab.idCount <= 50 + arrays, `${tab.idCount} ids in use for 50 paths and ${arrays} multi-path arrays`);
});

t.test('a withdraw-all shrinks the tables; path ids are given back and reused', async (t) => {
  const tab = new SlotTable();
  for (let i = 0; i < 100_000; i++) tab.set(24, ((11 << 24) + (i << 8)) | 0, paths[i % 50]!);
  t.equal(tab.size, 100_000);
  t.equal(tab.idCount, 50);
  for (let i = 0; i < 100_000; i++) tab.delete(24, ((11 << 24) + (i << 8)) | 0);
  t.equal(tab.size, 0);
  // the pairs array of /24 is back to a few slots: entries() over it is short
  let visited = 0;
  for (const _ of tab.entries()) visited++;
  t.equal(visited, 0);
  for (const p of paths) tab.forget(p);
  t.equal(tab.idCount, 0, 'ids free');
  tab.set(24, 1 << 8, paths[3]!);
  t.ok(paths[3]!.id >= 2 && paths[3]!.id <= 51, `a freed id is reused (${paths[3]!.id})`);
  t.equal(tab.get(24, 1 << 8), paths[3]);
});

t.test('entries() survives inserts between steps (a rehash restarts the walk: repeats, never skips)', async (t) => {
  const tab = new SlotTable();
  for (let i = 0; i < 100; i++) tab.set(24, i << 8, paths[0]!);
  const seen = new Set<number>();
  let i = 0;
  for (const [, k] of tab.entries()) {
    seen.add(k as number);
    if (i < 5000) tab.set(24, (1 << 24) + (i++ << 8), paths[1]!);
  }
  let skipped = 0;
  for (let j = 0; j < 100; j++) if (!seen.has(j << 8)) skipped++;
  t.equal(skipped, 0, 'every entry there at the start was visited');
  t.equal(tab.size, 5100);
});

t.test('deleting inside forEach does not shrink under the walk', async (t) => {
  const tab = new SlotTable();
  for (let i = 0; i < 10_000; i++) tab.set(24, i << 8, paths[i % 50]!);
  let n = 0;
  tab.forEach((_v, b, k) => {
    n++;
    tab.delete(b, k);
  });
  t.equal(n, 10_000, 'each visited once');
  t.equal(tab.size, 0);
  let visited = 0;
  for (const _ of tab.entries()) visited++;
  t.equal(visited, 0, 'shrunk after the walk');
  tab.set(24, 5 << 8, paths[0]!);
  t.equal(tab.get(24, 5 << 8), paths[0], 'usable after');
});

t.test('deleting in table order (a flush walks the table) and shrinking leaves no long probe runs', async (t) => {
  const tab = new SlotTable();
  for (let i = 0; i < 150_000; i++) tab.set(24, ((11 << 24) + (i << 8)) | 0, paths[i % 50]!);
  const keys: number[] = [];
  tab.forEach((_v, _b, k) => keys.push(k as number));
  let worst = 0;
  for (let i = 0; i < keys.length; i++) {
    tab.delete(24, keys[i]!);
    if (tab.get(24, keys[i]!) !== undefined) t.fail('deleted key found');
    if (i % 5000 === 0) worst = Math.max(worst, tab.longestRun(24));
  }
  // before: the keys left after deleting most in slot order share their top hash bits, and the table
  // shrunk with the same hash put them in one run of ~31k slots (seconds for the flush of 150k)
  t.ok(worst < 200, `longest probe run ${worst} < 200`);
  t.equal(tab.size, 0);
});

t.test('the value column widens past 8 and 16 bits (70k distinct paths and multi-path arrays)', async (t) => {
  const tab = new SlotTable();
  const s = src(9);
  const set = attrs.intern({ origin: 0, nextHop: '10.0.0.9' });
  const many: Slot[] = [];
  for (let i = 0; i < 70_000; i++) {
    const v: Slot = i % 7 === 0 ? [new Path(s, set), new Path(s, set)] : new Path(s, set);
    many.push(v);
    tab.set(24, (i << 8) | 0, v);
  }
  let bad = 0;
  for (let i = 0; i < 70_000; i++) if (tab.get(24, (i << 8) | 0) !== many[i]) bad++;
  t.equal(bad, 0, 'every slot names its own paths');
  t.equal(tab.idCount, 70_000, 'an id per single path and per multi-path array');
});

t.test("a full table's ~50k paths from one peer keep the id column at 16 bits", async (t) => {
  // 1M prefixes at 20 per attribute set: 50k paths. With paths and multi-path arrays in separate id
  // spaces (value = 2·id) the column widened to 32 bits past 32767 paths: 8 B per slot, not 6.
  const tab = new SlotTable();
  const s = src(8);
  const set = attrs.intern({ origin: 0, nextHop: '10.0.0.8' });
  const ps = Array.from({ length: 50_000 }, () => new Path(s, set));
  for (let i = 0; i < 100_000; i++) tab.set(24, (i << 8) | 0, ps[i % 50_000]!);
  t.equal(tab.valueBytes(24), 2);
  t.equal(tab.get(24, 99_999 << 8), ps[49_999]);
});
