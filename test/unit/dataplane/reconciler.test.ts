// The generic reconciler against an in-memory "kernel": adds, replaces, removes only what it owns,
// leaves foreign objects (conflicts) alone, retries failures, repairs from events.
import t from 'tap';
import { Reconciler, type ReconcileDriver, type Failure } from '../../../src/dataplane/reconciler.js';
import { type Obj, me, objDriverBase } from '../../helpers/reconciler-obj.js';

function fakeKernel(initial: Obj[] = []) {
  const kernel = new Map(initial.map((o) => [o.key, o]));
  const calls = { list: 0, apply: 0, remove: 0 };
  let failNext = 0;
  const driver: ReconcileDriver<Obj> = {
    ...objDriverBase,
    list: async () => {
      calls.list++;
      return [...kernel.values()];
    },
    apply: async (items) => {
      calls.apply++;
      const failed: Failure<Obj>[] = [];
      for (const it of items) {
        if (failNext > 0) {
          failNext--;
          failed.push({ item: it, error: new Error('EIO') });
          continue;
        }
        kernel.set(it.key, it);
      }
      return failed;
    },
    remove: async (items) => {
      calls.remove++;
      for (const it of items) kernel.delete(it.key);
      return [];
    },
  };
  return {
    kernel,
    calls,
    driver,
    failNextApply: (n: number) => {
      failNext = n;
    },
  };
}

t.test('first apply: resync, add missing, replace wrong, remove stale owned, keep foreign', async (t) => {
  const k = fakeKernel([me('a', 'old'), me('stale'), { key: 'foreign', value: 'x', owner: 'other' }]);
  const r = new Reconciler(k.driver, { resyncIntervalMs: 0 });
  r.setDesired([me('a', 'new'), me('b')]);
  const res = await r.apply();
  t.equal(res.resynced, true);
  t.equal(res.added, 2);
  t.equal(res.removed, 1);
  t.same([...k.kernel.keys()].sort(), ['a', 'b', 'foreign']);
  t.equal(k.kernel.get('a')!.value, 'new');
  t.equal(r.inSync, true);
  const again = await r.apply();
  t.equal(again.added + again.removed, 0, 'second pass changes nothing');
  t.equal(k.calls.list, 1, 'no second dump');
});

t.test('a desired key held by a foreign object is a conflict, never touched', async (t) => {
  const k = fakeKernel([{ key: 'c', value: 'theirs', owner: 'other' }]);
  const r = new Reconciler(k.driver, { resyncIntervalMs: 0 });
  r.setDesired([me('c')]);
  const res = await r.apply();
  t.same(res.conflicts, ['c']);
  t.equal(k.kernel.get('c')!.owner, 'other');
  t.equal(r.inSync, false);
  // the foreign object goes away (event) → ours goes in
  r.forget({ key: 'c', value: 'theirs', owner: 'other' });
  k.kernel.delete('c');
  const res2 = await r.apply();
  t.equal(res2.added, 1);
  t.equal(k.kernel.get('c')!.owner, 'me');
});

t.test('failures stay pending and are retried', async (t) => {
  const k = fakeKernel();
  const r = new Reconciler(k.driver, { resyncIntervalMs: 0 });
  r.setDesired([me('a'), me('b')]);
  k.failNextApply(1);
  const res = await r.apply();
  t.equal(res.failed.length, 1);
  t.equal(r.inSync, false);
  t.equal(r.pendingCount, 1);
  const res2 = await r.apply();
  t.equal(res2.added, 1);
  t.equal(r.inSync, true);
  t.equal(k.kernel.size, 2);
});

t.test('events: deleted behind our back → re-added; foreign-made owned object → removed', async (t) => {
  const k = fakeKernel();
  const r = new Reconciler(k.driver, { resyncIntervalMs: 0, debounceMs: 1 });
  r.setDesired([me('a')]);
  r.start();
  t.teardown(() => r.stop());
  await new Promise<void>((resolve) => r.once('insync', () => resolve()));
  k.kernel.delete('a');
  r.forget(me('a'));
  await new Promise<void>((resolve) => r.once('insync', () => resolve()));
  t.ok(k.kernel.has('a'), 'repaired');
  k.kernel.set('z', me('z'));
  r.observe(me('z'));
  await new Promise<void>((resolve) => r.once('insync', () => resolve()));
  t.notOk(k.kernel.has('z'), 'stale owned object removed');
});

t.test('markResync dumps again and catches silent changes', async (t) => {
  const k = fakeKernel();
  const r = new Reconciler(k.driver, { resyncIntervalMs: 0 });
  r.setDesired([me('a')]);
  await r.apply();
  k.kernel.delete('a'); // no event
  t.equal((await r.apply()).added, 0, 'unseen without a resync');
  r.markResync();
  t.equal((await r.apply()).added, 1);
});

t.test('mayReplace: a foreign object the driver allows to overwrite is replaced, not a conflict', async (t) => {
  const k = fakeKernel([
    { key: 'n', value: 'failed', owner: 'other' },
    { key: 'm', value: 'x', owner: 'other' },
  ]);
  const r = new Reconciler({ ...k.driver, mayReplace: (o) => o.value === 'failed' }, { resyncIntervalMs: 0 });
  r.setDesired([me('n')]);
  const res = await r.apply();
  t.same(res.conflicts, []);
  t.equal(k.kernel.get('n')!.owner, 'me');
  t.equal(k.kernel.get('m')!.owner, 'other', 'a foreign object with no desired key is never removed');
});

t.test("held deletes (graceful restart): a previous run's objects stay until released; this run's withdrawn ones go", async (t) => {
  const k = fakeKernel([me('prev1'), me('prev2')]);
  const r = new Reconciler(k.driver, { resyncIntervalMs: 0 });
  r.holdDeletes(true);
  r.setDesired([me('prev1'), me('new1'), me('new2')]);
  await r.apply();
  t.same([...k.kernel.keys()].sort(), ['new1', 'new2', 'prev1', 'prev2'], 'nothing deleted');
  t.equal(r.heldCount, 1, 'prev2 held');
  r.delete('new2'); // withdrawn during the hold: this run wanted it, so it goes
  r.delete('prev1'); // re-learned, then withdrawn: goes too
  const res = await r.apply();
  t.equal(res.held, 0);
  t.same([...k.kernel.keys()].sort(), ['new1', 'prev2']);
  r.holdDeletes(false);
  await r.apply();
  t.same([...k.kernel.keys()], ['new1'], 'released: the rest goes');
  t.equal(r.heldCount, 0);
});

t.test('a dump that fails does not stop the pass: known changes are applied, the dump is retried, the error kept', async (t) => {
  const k = fakeKernel([me('a')]);
  let failList = 1;
  const list = k.driver.list;
  k.driver.list = async () => {
    if (failList-- > 0) throw new Error('list links: EBUSY');
    return list();
  };
  const r = new Reconciler(k.driver, { resyncIntervalMs: 0 });
  r.setDesired([me('b')]);
  const res = await r.apply();
  t.equal(res.resynced, false);
  t.ok(k.kernel.has('b'), 'the desired object went in although the dump failed');
  t.match(r.lastError, { message: /EBUSY/ });
  t.equal(r.inSync, false, 'not in sync: the dump is owed');
  const again = await r.apply();
  t.equal(again.resynced, true, 'dumped on the next pass');
  t.same([...k.kernel.keys()], ['b'], 'and the stale owned object found by it removed');
  t.equal(r.inSync, true);
});

t.test('a streamed dump (listEach): an interrupted attempt starts over; only what differs is changed', async (t) => {
  const k = fakeKernel([me('a'), me('stale'), { key: 'foreign', value: 'x', owner: 'other' }]);
  let attempts = 0;
  const driver: ReconcileDriver<Obj> = {
    ...k.driver,
    list: async () => {
      throw new Error('list() is not used when listEach is there');
    },
    listEach: async (start) => {
      attempts++;
      // the first attempt is cut short after one object (as an NLM_F_DUMP_INTR dump), then the whole dump
      const first = start();
      first(me('gone-by-now'));
      const each = start();
      for (const o of k.kernel.values()) each(o);
    },
  };
  const r = new Reconciler(driver, { resyncIntervalMs: 0 });
  r.setDesired([me('a'), me('b')]);
  const res = await r.apply();
  t.equal(attempts, 1);
  t.equal(res.resynced, true);
  t.equal(res.added, 1, 'b added; a (equal) untouched');
  t.equal(res.removed, 1, 'stale removed; the first attempt’s object is not in the state');
  t.same([...k.kernel.keys()].sort(), ['a', 'b', 'foreign']);
  r.markResync();
  const again = await r.apply();
  t.equal(again.resynced, true);
  t.equal(again.added + again.removed, 0, 'a resync of a converged kernel changes nothing');
  t.equal(r.inSync, true);
});

t.test('state of keys no longer desired nor in the kernel is let go (a withdraw-all leaves no table behind)', async (t) => {
  const k = fakeKernel([{ key: 'foreign', value: 'x', owner: 'other' }]);
  const r = new Reconciler(k.driver, { resyncIntervalMs: 0 });
  const size = () => (r as unknown as { s: { size: number } }).s.size;
  for (let i = 0; i < 10_000; i++) r.set(me(`k${i}`));
  const res = await r.apply();
  t.equal(res.added, 10_000);
  t.equal(k.kernel.size, 10_001);
  t.equal(size(), 10_000, 'one slot per desired key (a foreign object on no desired key is not kept)');
  for (let i = 0; i < 10_000; i++) r.delete(`k${i}`);
  t.equal(r.desiredCount, 0);
  t.equal((await r.apply()).removed, 10_000);
  t.equal(size(), 0, 'nothing is known any more');
  // after the table was compacted, the ids of new keys address their own state
  r.markResync();
  r.set(me('foreign', 'y'));
  r.set(me('again'));
  const last = await r.apply();
  t.same(last.conflicts, ['foreign'], 'the foreign object seen by the dump');
  t.equal(k.kernel.get('again')?.value, 'v');
  t.equal(k.kernel.get('foreign')?.value, 'x', 'and left alone');
  r.markResync();
  const again = await r.apply();
  t.equal(again.added + again.removed, 0, 'a resync after all that changes nothing');
  t.same(again.conflicts, ['foreign']);
});

t.test('a change seen as an event while a dump runs is not undone by the dump listing the object before it', async (t) => {
  const k = fakeKernel([me('a'), me('b')]);
  let gate: (() => void) | undefined;
  let inDump: (() => void) | undefined;
  const driver: ReconcileDriver<Obj> = {
    ...k.driver,
    listEach: async (start) => {
      const each = start();
      const objs = [...k.kernel.values()].map((o) => ({ ...o }));
      each(objs[0]!); // a, as it was
      if (inDump) {
        inDump();
        inDump = undefined;
        await new Promise<void>((r) => {
          gate = r;
        });
      }
      for (const o of objs.slice(1)) each(o); // b, as it was when the dump began
    },
  };
  const r = new Reconciler(driver, { resyncIntervalMs: 0 });
  r.setDesired([me('a'), me('b')]);
  await r.apply();
  r.markResync();
  const listed = new Promise<void>((res) => {
    inDump = res;
  });
  const pass = r.apply();
  await listed;
  // behind our back while the dump runs: a (already listed) changed, b (not yet listed) deleted
  k.kernel.set('a', me('a', 'changed'));
  r.observe(me('a', 'changed'));
  k.kernel.delete('b');
  r.forget(me('b'));
  gate!();
  await pass;
  await r.apply();
  t.equal(k.kernel.get('a')?.value, 'v', 'a put back');
  t.equal(k.kernel.get('b')?.value, 'v', 'b put back');
  r.markResync();
  const again = await r.apply();
  t.equal(again.added + again.removed, 0, 'then nothing to do');
});

t.test(
  'an object changed or deleted behind our back while our own change of it is in flight is put back (the event came before the ack)',
  async (t) => {
    const k = fakeKernel();
    let r!: Reconciler<Obj>;
    let applies = 0;
    const driver: ReconcileDriver<Obj> = {
      ...k.driver,
      apply: async (items) => {
        const f = await k.driver.apply(items, []);
        // the first apply: someone changes the object right after the kernel took ours, and its event is
        // read before our batch's ack
        if (applies++ === 0) {
          const changed = { ...me('a'), value: 'by hand' };
          k.kernel.set('a', changed);
          r.observe(changed);
          // and our echo of b, then b deleted by hand
          r.observe(me('b'));
          k.kernel.delete('b');
          r.forget(me('b'));
        }
        return f;
      },
    };
    r = new Reconciler(driver, { resyncIntervalMs: 0, debounceMs: 1 });
    r.setDesired([me('a'), me('b')]);
    r.start();
    t.teardown(() => r.stop());
    const until = Date.now() + 5000;
    while ((k.kernel.get('a')?.value !== 'v' || !k.kernel.has('b')) && Date.now() < until) await new Promise((res) => setTimeout(res, 5));
    t.equal(k.kernel.get('a')?.value, 'v', 'changed: put back');
    t.ok(k.kernel.has('b'), 'deleted: put back');
    t.equal(applies, 2, 'by a second apply');
  },
);
