// RouteReconciler over the in-memory FakeRouteDataplane: ownership, conflicts, devices that come and
// go, failures retried, bulk changes pause the event stream and resync, events repair.
import t from 'tap';
import { RouteReconciler, RTPROT_TABBY, BULK_PAUSE_THRESHOLD } from '../../../src/dataplane/index.js';
import { FakeRouteDataplane } from '../../../src/dataplane/fake.js';

const onceInSync = (rr: RouteReconciler): Promise<void> =>
  new Promise((resolve) => {
    if (rr.inSync) return resolve();
    rr.once('insync', () => resolve());
  });

t.test('installs, keeps foreign routes, removes stale owned ones, leaves cali* routes alone', async (t) => {
  const k = new FakeRouteDataplane();
  const eth0 = k.byHandAddLink('eth0');
  const cali = k.byHandAddLink('cali0123456789a');
  k.byHandAddRoute({ dst: '10.0.0.0/8', gateway: '192.0.2.1', oif: eth0, protocol: 4 });
  k.byHandAddRoute({ dst: '10.99.0.0/24', gateway: '192.0.2.1', oif: eth0, protocol: RTPROT_TABBY });
  k.byHandAddRoute({ dst: '10.65.0.5/32', oif: cali, protocol: RTPROT_TABBY, scope: 253 });
  const rr = new RouteReconciler(k, { resyncIntervalMs: 0 });
  rr.setDesired([
    { dst: '10.65.1.0/26', gateway: '192.0.2.2', dev: 'eth0' },
    { dst: '10.65.0.0/26', type: 'blackhole' },
  ]);
  const res = await rr.apply();
  t.same(res.failed, []);
  t.equal(k.route('10.65.1.0/26')?.gateway, '192.0.2.2');
  t.equal(k.route('10.65.1.0/26')?.protocol, RTPROT_TABBY);
  t.equal(k.route('10.65.0.0/26')?.type, 'blackhole');
  t.ok(k.route('10.0.0.0/8'), 'foreign route kept');
  t.notOk(k.route('10.99.0.0/24'), 'stale owned route removed');
  t.ok(k.route('10.65.0.5/32'), 'workload route (cali*) not touched');
  t.equal(rr.inSync, true);
});

t.test('a foreign route on a desired destination is a conflict, left alone', async (t) => {
  const k = new FakeRouteDataplane();
  k.byHandAddRoute({ dst: '10.65.1.0/26', type: 'blackhole', protocol: 4 });
  const rr = new RouteReconciler(k, { resyncIntervalMs: 0 });
  rr.setDesired([{ dst: '10.65.1.0/26', gateway: '192.0.2.2', onlink: true }]);
  const res = await rr.apply();
  t.same(res.conflicts, ['10.65.1.0/26']);
  t.equal(k.route('10.65.1.0/26')?.type, 'blackhole');
  t.equal(rr.inSync, false);
});

t.test('a route waits for its device; the device going away takes it; it comes back with the device', async (t) => {
  const k = new FakeRouteDataplane();
  const rr = new RouteReconciler(k, { resyncIntervalMs: 0, debounceMs: 1 });
  t.teardown(() => rr.stop());
  rr.setDesired([{ dst: '10.65.2.0/26', gateway: '10.65.2.0', dev: 'vxlan.calico', onlink: true }]);
  await rr.start();
  t.notOk(k.route('10.65.2.0/26'));
  t.equal(rr.inSync, false);
  t.equal(rr.pending, 1);
  k.byHandAddLink('vxlan.calico');
  await onceInSync(rr);
  t.ok(k.route('10.65.2.0/26'), 'installed when the device appears');
  k.byHandDeleteLink('vxlan.calico');
  t.notOk(k.route('10.65.2.0/26'), 'gone with its device (no route event)');
  k.byHandAddLink('vxlan.calico');
  await onceInSync(rr);
  t.ok(k.route('10.65.2.0/26'), 'back with the recreated device (new index)');
});

t.test('failures are retried', async (t) => {
  const k = new FakeRouteDataplane();
  const rr = new RouteReconciler(k, { resyncIntervalMs: 0, debounceMs: 1, retryMs: 5 });
  t.teardown(() => rr.stop());
  rr.setDesired([
    { dst: '10.65.3.0/26', type: 'blackhole' },
    { dst: '10.65.4.0/26', type: 'blackhole' },
  ]);
  k.failNextRouteOps(1);
  const first = await rr.start();
  t.equal(first.failed.length, 1);
  await onceInSync(rr);
  t.ok(k.route('10.65.3.0/26') && k.route('10.65.4.0/26'), 'both in after the retry');
});

t.test('events: deleted or changed by hand → repaired; an owned route added by hand → removed', async (t) => {
  const k = new FakeRouteDataplane();
  k.byHandAddLink('eth0');
  const rr = new RouteReconciler(k, { resyncIntervalMs: 0, debounceMs: 1 });
  t.teardown(() => rr.stop());
  rr.setDesired([{ dst: '10.65.5.0/26', gateway: '192.0.2.2', dev: 'eth0' }]);
  await rr.start();
  const listsBefore = k.calls.listRoutes;
  k.byHandDeleteRoute('10.65.5.0/26');
  await new Promise((r) => setTimeout(r, 20));
  await onceInSync(rr);
  t.equal(k.route('10.65.5.0/26')?.gateway, '192.0.2.2');
  k.byHandAddRoute({ ...k.route('10.65.5.0/26')!, gateway: '192.0.2.99' });
  await new Promise((r) => setTimeout(r, 20));
  await onceInSync(rr);
  t.equal(k.route('10.65.5.0/26')?.gateway, '192.0.2.2', 'changed route put back');
  k.byHandAddRoute({ dst: '10.66.0.0/24', type: 'blackhole', protocol: RTPROT_TABBY });
  await new Promise((r) => setTimeout(r, 20));
  await onceInSync(rr);
  t.notOk(k.route('10.66.0.0/24'), 'stale owned route removed');
  t.equal(k.calls.listRoutes, listsBefore, 'repairs came from events, without a dump');
});

t.test(`bulk (> ${BULK_PAUSE_THRESHOLD}) changes pause the subscription and resync after`, async (t) => {
  const k = new FakeRouteDataplane();
  const rr = new RouteReconciler(k, { resyncIntervalMs: 0, debounceMs: 1 });
  t.teardown(() => rr.stop());
  const many = Array.from({ length: BULK_PAUSE_THRESHOLD + 1 }, (_, i) => ({
    dst: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
    type: 'blackhole' as const,
  }));
  rr.setDesired(many);
  const lists = k.calls.listRoutes;
  await rr.start();
  t.equal(k.routes.size, many.length);
  await onceInSync(rr);
  t.ok(k.calls.listRoutes >= lists + 2, 'a resync dump followed the bulk change');
  rr.setDesired([]);
  await rr.apply();
  t.equal(k.routes.size, 0, 'all removed');
});

t.test('the resync after bulk changes waits until they are all applied (one dump, not one per batch)', async (t) => {
  const k = new FakeRouteDataplane();
  // a batch takes 100 ms: the 20 ms quiet timer of the first bulk change fires while the second one runs
  const batch = k.routeBatch.bind(k);
  k.routeBatch = async (ops) => {
    await new Promise((r) => setTimeout(r, 100));
    return batch(ops);
  };
  const rr = new RouteReconciler(k, { resyncIntervalMs: 0, debounceMs: 1, bulkResyncQuietMs: 20 });
  t.teardown(() => rr.stop());
  const routes = (base: number) =>
    Array.from({ length: 2 * BULK_PAUSE_THRESHOLD }, (_, i) => ({ dst: `10.${base}.${i >> 8}.${i & 255}/32`, type: 'blackhole' as const }));
  for (const r of routes(100)) rr.set(r);
  await rr.start(); // the first dump, then the first bulk change
  const lists = k.calls.listRoutes;
  for (const r of routes(101)) rr.set(r); // the second bulk change, right behind
  await onceInSync(rr);
  t.equal(k.routes.size, 4 * BULK_PAUSE_THRESHOLD, 'all in');
  t.equal(k.calls.listRoutes - lists, 1, 'one resync dump, after the last bulk change');
});

t.test('routes through one next hop share one desired object; a failure retries only its own route', async (t) => {
  const k = new FakeRouteDataplane();
  const eth0 = k.byHandAddLink('eth0');
  const rr = new RouteReconciler(k, { resyncIntervalMs: 0 });
  t.teardown(() => rr.stop());
  await rr.start();
  for (let i = 0; i < 100; i++) rr.set({ dst: `11.0.${i}.0/24`, gateway: '192.0.2.1', dev: 'eth0' });
  rr.set({ dst: '11.1.0.0/24', gateway: '192.0.2.1', dev: 'eth0', metric: 20 });
  const held = new Set((rr as unknown as { rec: { desiredValues(): Iterable<object> } }).rec.desiredValues());
  t.equal(held.size, 2, '101 desired routes, 2 objects (one per next hop and metric)');
  k.failNextRouteOps(1);
  const res = await rr.apply();
  t.equal(res.failed.length, 1, 'one failure');
  t.equal(res.failed[0]!.item.dst, '11.0.0.0/24', 'named by its destination');
  t.equal(rr.pending, 1, 'only the failed route is retried (not every route sharing its object)');
  t.equal(k.routes.size, 100);
  await rr.apply();
  t.equal(k.routes.size, 101, 'the failed one in on the retry');
  t.same({ gateway: k.route('11.0.0.0/24')?.gateway, oif: k.route('11.0.0.0/24')?.oif }, { gateway: '192.0.2.1', oif: eth0 });
  t.same(
    rr.desired().find((r) => r.dst === '11.0.99.0/24'),
    { dst: '11.0.99.0/24', table: 254, scope: 0, gateway: '192.0.2.1', dev: 'eth0' },
    'desired() gives each route its destination back',
  );
});
