// The reconciler's resync dump against a streaming in-memory "kernel" (one object per tick, handed over
// in one reused object as netlink's in-place dump does): the dump gives way to changes made while it
// runs (they are made at once), comes back once they are quiet and still finds what changed behind our
// back; past resyncMaxWaitMs it runs to its end, so constant change cannot starve it.
import t from 'tap';
import { Reconciler, type ReconcileDriver } from '../../../src/dataplane/reconciler.js';
import { type Obj, me, objDriverBase } from '../../helpers/reconciler-obj.js';

function streamingKernel() {
  const kernel = new Map<string, Obj>();
  /** each dump attempt: how many objects it handed over and how it ended */
  const dumps: { listed: number; end: 'stopped' | 'complete' }[] = [];
  /** per remove call: the dumps that had ended by then */
  const removes: { count: number; dumpsEnded: number }[] = [];
  const k: { kernel: typeof kernel; dumps: typeof dumps; removes: typeof removes; onItem: (n: number) => void } = {
    kernel,
    dumps,
    removes,
    onItem: () => {},
  };
  const scratch: Obj = { key: '', value: '', owner: 'me' };
  const driver: ReconcileDriver<Obj> = {
    ...objDriverBase,
    list: async () => {
      throw new Error('list() is not used when listEach is there');
    },
    listEach: async (start, stop) => {
      const each = start();
      let listed = 0;
      for (const o of [...kernel.values()]) {
        await new Promise((r) => setImmediate(r));
        Object.assign(scratch, o); // transient: the reconciler must copy what it keeps
        each(scratch);
        k.onItem(++listed);
        if (stop?.()) {
          dumps.push({ listed, end: 'stopped' });
          throw new Error('dump stopped');
        }
      }
      dumps.push({ listed, end: 'complete' });
    },
    copy: (o) => ({ ...o }),
    apply: async (items) => {
      for (const it of items) kernel.set(it.key, it);
      return [];
    },
    remove: async (items) => {
      removes.push({ count: items.length, dumpsEnded: dumps.length });
      for (const it of items) kernel.delete(it.key);
      return [];
    },
  };
  return Object.assign(k, { driver });
}

const until = async (pred: () => boolean, ms = 20_000): Promise<boolean> => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
};

t.test('a resync dump gives way to changes made while it runs; the dump after them fixes what changed behind our back', async (t) => {
  const k = streamingKernel();
  const r = new Reconciler(k.driver, { resyncIntervalMs: 0, debounceMs: 1, yieldAfter: 10, yieldQuietMs: 30 });
  t.teardown(() => r.stop());
  for (let i = 0; i < 100; i++) r.set(me(`k${i}`));
  r.start();
  t.ok(await until(() => r.inSync), 'first pass in sync');
  t.equal(k.kernel.size, 100);
  k.dumps.length = 0;
  // behind our back (no events)
  k.kernel.delete('k7');
  k.kernel.set('k8', me('k8', 'tampered'));
  k.kernel.set('stale', me('stale'));
  r.markResync();
  // 50 withdrawals arrive while the dump has listed 20 of 101 objects
  k.onItem = (n) => {
    if (n !== 20 || k.dumps.length) return;
    for (let i = 50; i < 100; i++) r.delete(`k${i}`);
  };
  t.ok(await until(() => r.inSync && k.dumps.some((d) => d.end === 'complete')), 'in sync again after a complete dump');
  t.equal(k.dumps[0]?.end, 'stopped', 'the dump running when the changes came stopped');
  t.ok(k.dumps[0]!.listed < 101, `before its end (${k.dumps[0]!.listed} of 101 listed)`);
  t.equal(k.removes[0]?.count, 50, 'the 50 withdrawals were made');
  t.equal(k.removes[0]?.dumpsEnded, 1, 'without waiting for a complete dump');
  t.equal(r.resyncProgress.gaveWay, 1);
  t.equal(r.resyncProgress.state, 'idle');
  t.equal(r.resyncProgress.last?.listed, 50, 'the dump after listed k0–k49 but k7, and stale');
  t.same(
    [...k.kernel.keys()].sort(),
    Array.from({ length: 50 }, (_, i) => `k${i}`).sort(),
    'k7 put back, stale removed, the withdrawn gone',
  );
  t.equal(k.kernel.get('k8')?.value, 'v', 'k8 put right');
});

t.test('constant change does not starve a resync: past resyncMaxWaitMs the dump runs to its end', async (t) => {
  const k = streamingKernel();
  const r = new Reconciler(k.driver, { resyncIntervalMs: 0, debounceMs: 1, yieldAfter: 1, yieldQuietMs: 5, resyncMaxWaitMs: 300 });
  t.teardown(() => r.stop());
  for (let i = 0; i < 50; i++) r.set(me(`k${i}`));
  r.start();
  t.ok(await until(() => r.inSync), 'first pass in sync');
  k.dumps.length = 0;
  k.kernel.delete('k3'); // behind our back
  let churn = 0;
  k.onItem = () => r.set(me(`churn${churn++}`)); // a change with every object any dump lists
  const t0 = Date.now();
  r.markResync();
  t.ok(await until(() => k.dumps.some((d) => d.end === 'complete')), 'a dump completed');
  t.ok(r.resyncProgress.gaveWay >= 1, `after giving way ${r.resyncProgress.gaveWay} time(s)`);
  t.ok(Date.now() - t0 >= 250, 'once the resync had waited its maximum');
  k.onItem = () => {};
  t.ok(await until(() => r.inSync && k.kernel.has('k3')), 'k3 (deleted behind our back) put back; in sync');
  t.equal(k.kernel.size, 50 + churn);
});
