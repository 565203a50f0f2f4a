// The reconciler's key table: desired and kernel objects are held once each (ObjectSlots, counted per
// slot naming them) and per key as Int32 indexes; an object goes when the last key lets it go; a dump
// lists into the table and replaces the known kernel state only when it completes.
import t from 'tap';
import { KeyTable, ObjectSlots } from '../../../src/dataplane/key-table.js';

t.test('ObjectSlots: one index per distinct object, counted; freed with the last holder, the index reused', async (t) => {
  const o = new ObjectSlots<{ n: number }>();
  const a = { n: 1 };
  const b = { n: 1 }; // equal, but another object: identity counts
  t.equal(o.acquire(undefined), 0, 'undefined is index 0');
  const ia = o.acquire(a);
  t.equal(o.acquire(a), ia, 'the same object, the same index');
  const ib = o.acquire(b);
  t.not(ib, ia);
  t.equal(o.size, 2);
  t.equal(o.at(ia), a);
  o.release(ia);
  t.equal(o.at(ia), a, 'one holder left');
  o.release(ia);
  t.equal(o.at(ia), undefined, 'gone with the last');
  t.equal(o.size, 1);
  const c = { n: 3 };
  t.equal(o.acquire(c), ia, 'its index reused');
  t.equal(o.acquire(a), o.acquire(a), 'a released object comes back under one index');
  o.release(0); // nothing
  t.equal(o.size, 3);
});

t.test('KeyTable: 10k keys with one desired and kernel object hold it once; released keys let it go', async (t) => {
  const s = new KeyTable<{ gw: string }>();
  const tpl = { gw: '10.0.0.2' };
  const ids: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const id = s.intern(`10.${i >> 8}.${i & 255}.0/24`);
    ids.push(id);
    s.setWant(id, tpl);
    s.setHave(id, tpl);
  }
  t.equal(s.objectCount, 1, 'one object for all');
  t.equal(s.desiredCount, 10_000);
  t.equal(s.wantOf(ids[42]!), tpl);
  t.equal(s.haveOf(ids[42]!), tpl);
  const other = { gw: '10.0.0.3' };
  s.setHave(ids[0]!, other);
  t.equal(s.objectCount, 2);
  t.equal(s.haveOf(ids[0]!), other);
  let wrong = 0;
  for (const id of ids) {
    if (s.setWant(id, undefined) !== tpl) wrong++;
    s.setHave(id, undefined);
    s.release(id);
  }
  t.equal(wrong, 0, 'setWant returned the object before');
  t.equal(s.objectCount, 0, 'nothing held');
  t.equal(s.size, 0);
  t.equal(s.desiredCount, 0);
});

t.test('KeyTable dump: listed objects replace the kernel state when it completes; an unlisted key has none', async (t) => {
  const s = new KeyTable<{ v: number }>();
  const x = s.intern('10.0.0.0/24');
  const y = s.intern('10.0.1.0/24');
  const want = { v: 1 };
  s.setWant(x, want);
  s.setWant(y, want);
  s.setHave(y, want);
  s.beginDump();
  s.dumped(x, want);
  const changed: number[] = [];
  s.endDump((id) => changed.push(id));
  t.equal(s.haveOf(x), want, 'listed: known now');
  t.equal(s.haveOf(y), undefined, 'not listed: gone from the kernel');
  t.same(changed, [y]);
  // a dump restarted from the beginning forgets what its failed attempt listed
  s.beginDump();
  s.dumped(y, want);
  s.beginDump();
  s.endDump(() => {});
  t.equal(s.haveOf(y), undefined, 'listed only by the abandoned attempt');
  t.equal(s.haveOf(x), undefined);
});

t.test('KeyTable: the object columns widen past 255 and 65535 distinct objects, every key keeps its own', async (t) => {
  const s = new KeyTable<{ n: number }>();
  const objs = Array.from({ length: 70_000 }, (_, n) => ({ n }));
  const ids = objs.map((_, i) => s.intern(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32`));
  let wrong = 0;
  for (let i = 0; i < objs.length; i++) {
    s.setWant(ids[i]!, objs[i]);
    s.setHave(ids[i]!, objs[(i + 1) % objs.length]);
    // every earlier key still names its objects after each widening
    if (i === 254 || i === 256 || i === 65534 || i === 65536)
      for (let j = 0; j <= i; j++) if (s.wantOf(ids[j]!) !== objs[j] || s.haveOf(ids[j]!) !== objs[(j + 1) % objs.length]) wrong++;
  }
  for (let i = 0; i < objs.length; i++) if (s.wantOf(ids[i]!) !== objs[i] || s.haveOf(ids[i]!) !== objs[(i + 1) % objs.length]) wrong++;
  t.equal(wrong, 0, 'no key lost its objects');
  t.equal(s.objectCount, 70_000);
});

t.test("KeyTable: a dump's own copies and events' objects take no index entry; desired objects listed stay shared", async (t) => {
  const s = new KeyTable<{ v: number }>();
  const tpl = { v: 0 };
  const ids = Array.from({ length: 10_000 }, (_, i) => s.intern(`10.${i >> 8}.${i & 255}.0/24`));
  for (const id of ids.slice(0, 5000)) s.setWant(id, tpl);
  s.beginDump();
  // the first half listed as their desired object, the second half as copies of a previous run's routes
  for (const [i, id] of ids.entries()) s.dumped(id, i < 5000 ? tpl : { v: i });
  s.endDump(() => {});
  t.equal(s.objectCount, 5001, 'the template and 5000 copies');
  t.equal(s.sharedObjectCount, 1, 'only the template is indexed for sharing');
  t.equal(s.haveOf(ids[7000]!)?.v, 7000);
  s.setHave(ids[7000]!, { v: -1 }, true);
  t.equal(s.objectCount, 5001, "an event's object replaced the copy");
  t.equal(s.sharedObjectCount, 1);
  for (const id of ids) {
    s.setWant(id, undefined);
    s.setHave(id, undefined);
    s.release(id);
  }
  t.equal(s.objectCount, 0, 'all let go');
  t.equal(s.sharedObjectCount, 0);
});
