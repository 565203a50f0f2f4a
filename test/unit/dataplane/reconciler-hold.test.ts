// Withdrawals while deletes are held (graceful restart: the agent holds them until routing has
// converged, which a session dropping right after an ingest precedes): this run's withdrawn keys go at
// once, a previous run's objects stay — told apart by a flag per key, not a key string kept per
// withdrawal (a 1M withdraw-all made and kept 1M strings: 2.5 s of CPU for the pass, 5× the rest).
import t from 'tap';
import { Reconciler, type ReconcileDriver } from '../../../src/dataplane/reconciler.js';
import { type Obj, me, objDriverBase } from '../../helpers/reconciler-obj.js';

t.test('withdrawals while deletes are held: this run’s go, a previous run’s stay, no key text per withdrawal', async (t) => {
  // a previous run's objects: in the kernel, ours by their mark, not desired by this run
  const kernel = new Map<string, Obj>(['old1', 'old2', 'old3'].map((k) => [k, me(k)]));
  const driver: ReconcileDriver<Obj> = {
    ...objDriverBase,
    list: async () => [...kernel.values()],
    apply: async (items, ids) => {
      items.forEach((it, i) => kernel.set(keyText(ids[i]!), it));
      return [];
    },
    remove: async (items, ids) => {
      items.forEach((_, i) => kernel.delete(keyText(ids[i]!)));
      return [];
    },
  };
  const r = new Reconciler(driver, { resyncIntervalMs: 0 });
  const s = (r as unknown as { s: { key(id: number): string } }).s;
  const keyOf = s.key.bind(s);
  /** the driver's own look-ups (not counted below) */
  const keyText = (id: number): string => keyOf(id);
  r.holdDeletes(true);
  const n = 10_000;
  const key = (i: number): string => `11.${i >> 8}.${i & 255}.0/24`;
  for (let i = 0; i < n; i++) r.set(me(key(i)));
  await r.apply();
  t.equal(kernel.size, n + 3);
  t.equal(r.heldCount, 3, "the previous run's three are held");
  let texts = 0;
  s.key = (id: number) => {
    texts++;
    return keyOf(id);
  };
  for (let i = 0; i < n; i++) r.delete(key(i));
  const res = await r.apply();
  s.key = keyOf;
  t.equal(res.removed, n, "this run's withdrawn keys removed although deletes are held");
  t.same([...kernel.keys()].sort(), ['old1', 'old2', 'old3'], "the previous run's kept");
  t.ok(texts <= 3, `key text made ${texts} time(s) for ${n} withdrawals`);
  r.holdDeletes(false);
  await r.apply();
  t.equal(kernel.size, 0, 'released: they go too');
});

t.test('a previous run’s objects held, then learned again: no longer held, no key text per key', async (t) => {
  const n = 10_000;
  const key = (i: number): string => `11.${i >> 8}.${i & 255}.0/24`;
  const kernel = new Map<string, Obj>(Array.from({ length: n }, (_, i) => [key(i), me(key(i))]));
  kernel.set('gone-for-good', me('gone-for-good'));
  let applied = 0;
  const driver: ReconcileDriver<Obj> = {
    ...objDriverBase,
    list: async () => [...kernel.values()],
    apply: async (items) => {
      applied += items.length;
      for (const it of items) kernel.set(it.key, it);
      return [];
    },
    remove: async (items) => {
      for (const it of items) kernel.delete(it.key);
      return [];
    },
  };
  const r = new Reconciler(driver, { resyncIntervalMs: 0 });
  r.holdDeletes(true);
  await r.apply();
  t.equal(r.heldCount, n + 1, "a restarted agent holds its previous run's objects");
  const s = (r as unknown as { s: { key(id: number): string } }).s;
  const keyOf = s.key.bind(s);
  let texts = 0;
  s.key = (id: number) => {
    texts++;
    return keyOf(id);
  };
  for (let i = 0; i < n; i++) r.set(me(key(i)));
  s.key = keyOf;
  t.ok(texts <= 1, `key text made ${texts} time(s) for ${n} keys learned again`);
  t.equal(r.heldCount, 1, 'only the one not learned again is held');
  await r.apply();
  t.equal(applied, 0, 'the kernel already had them: nothing written');
  r.holdDeletes(false);
  await r.apply();
  t.equal(kernel.size, n, 'released: the one not learned again goes');
  t.notOk(kernel.has('gone-for-good'));
  t.equal(r.heldCount, 0);
});
