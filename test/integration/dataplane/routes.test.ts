// RouteReconciler against a real kernel (a fresh netns): desired routes installed; a stale route
// with tabby's protocol removed while a foreign route in the same table survives; a route deleted by
// hand comes back within a second; a changed route is put back; a route waiting for its device is
// installed when the device appears.
import t from 'tap';
import { Netlink, RouteReconciler, RTPROT_TABBY } from '../../../src/dataplane/index.js';
import { isRoot, ipIn, makeNetns, waitUntil } from '../../helpers/dataplane-netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

t.test('route reconciler', { skip }, async (t) => {
  const ns = makeNetns(t, 'rt');
  const nl = new Netlink({ netnsPath: ns.path });
  t.teardown(() => nl.close());
  ipIn(ns.name, 'link', 'add', 'vA', 'type', 'veth', 'peer', 'name', 'vB');
  ipIn(ns.name, 'link', 'set', 'vA', 'up');
  ipIn(ns.name, 'link', 'set', 'vB', 'up');
  ipIn(ns.name, 'addr', 'add', '172.30.0.1/24', 'dev', 'vA');
  ipIn(ns.name, 'addr', 'add', 'fd30::1/64', 'dev', 'vA', 'nodad');
  // someone else's routes, and a stale one of ours
  ipIn(ns.name, 'route', 'add', '10.80.0.0/24', 'via', '172.30.0.2', 'proto', 'static');
  ipIn(ns.name, 'route', 'add', '10.81.0.0/24', 'via', '172.30.0.2', 'proto', String(RTPROT_TABBY));
  ipIn(ns.name, 'route', 'add', '10.82.0.0/24', 'via', '172.30.0.2', 'proto', String(RTPROT_TABBY), 'table', '100');

  const rr = new RouteReconciler(nl, { debounceMs: 10, resyncIntervalMs: 0 });
  t.teardown(() => rr.stop());
  rr.setDesired([
    { dst: '10.70.0.0/26', type: 'blackhole' },
    { dst: '10.71.0.0/26', gateway: '172.30.0.2', dev: 'vA' },
    { dst: '10.72.0.0/26', gateway: '172.31.9.9', dev: 'vA', onlink: true },
    { dst: '10.73.0.1/32', dev: 'vA' },
    { dst: '10.74.0.0/26', gateway: '172.30.0.2', dev: 'vA', table: 100 },
    { dst: '10.75.0.0/26', gateway: '172.31.9.9', dev: 'later0', onlink: true },
    { dst: 'fd70:0:0:1::/64', gateway: 'fd30::2', dev: 'vA' },
    { dst: 'fd70:0:0:2::/64', type: 'blackhole' },
  ]);
  const first = await rr.start();
  t.equal(first.failed.length, 0, 'no failures');

  const main = (): string => ipIn(ns.name, 'route', 'show');
  t.test("desired routes installed with tabby's protocol", async (t) => {
    t.match(main(), /blackhole 10\.70\.0\.0\/26 proto 81/);
    t.match(main(), /10\.71\.0\.0\/26 via 172\.30\.0\.2 dev vA proto 81/);
    t.match(main(), /10\.72\.0\.0\/26 via 172\.31\.9\.9 dev vA proto 81 onlink/);
    t.match(main(), /10\.73\.0\.1 dev vA proto 81 scope link/);
    t.match(ipIn(ns.name, 'route', 'show', 'table', '100'), /10\.74\.0\.0\/26 via 172\.30\.0\.2 dev vA proto 81/);
    t.match(ipIn(ns.name, '-6', 'route', 'show'), /fd70:0:0:1::\/64 via fd30::2 dev vA proto 81/);
    t.match(ipIn(ns.name, '-6', 'route', 'show'), /blackhole fd70:0:0:2::\/64 dev lo proto 81/);
  });

  t.test('a full resync of a converged kernel changes nothing (no churn)', async (t) => {
    const r = await rr.resync();
    t.equal(r.resynced, true);
    t.equal(r.added, 0, 'nothing re-added');
    t.equal(r.removed, 0, 'nothing removed');
  });

  t.test('stale owned routes removed, foreign route survives', async (t) => {
    t.notMatch(main(), /10\.81\.0\.0/);
    t.notMatch(ipIn(ns.name, 'route', 'show', 'table', '100'), /10\.82\.0\.0/);
    t.match(main(), /10\.80\.0\.0\/24 via 172\.30\.0\.2 dev vA proto static/);
  });

  t.test('waiting for a device', async (t) => {
    t.equal(rr.inSync, false, 'not in sync while later0 is missing');
    ipIn(ns.name, 'link', 'add', 'later0', 'type', 'veth', 'peer', 'name', 'later1');
    ipIn(ns.name, 'link', 'set', 'later0', 'up');
    t.ok(await waitUntil(() => /10\.75\.0\.0\/26 via 172\.31\.9\.9 dev later0/.test(main()), 2000), 'installed once the device exists');
    t.ok(await waitUntil(() => rr.inSync, 10_000), 'in sync');
  });

  t.test('deleted by hand: back within a second', async (t) => {
    ipIn(ns.name, 'route', 'del', '10.71.0.0/26');
    const t0 = Date.now();
    t.ok(await waitUntil(() => /10\.71\.0\.0\/26 via 172\.30\.0\.2/.test(main()), 1000), 'repaired');
    t.ok(Date.now() - t0 < 1000, `repaired in ${Date.now() - t0} ms`);
  });

  t.test('changed by hand: put back', async (t) => {
    ipIn(ns.name, 'route', 'replace', '10.71.0.0/26', 'via', '172.30.0.3', 'proto', String(RTPROT_TABBY));
    t.ok(await waitUntil(() => /10\.71\.0\.0\/26 via 172\.30\.0\.2/.test(main()), 1000), 'gateway restored');
  });

  t.test('metric (kernel priority): set, changed, dropped — always one route per prefix', async (t) => {
    const lines = (family: '-4' | '-6', dst: string): string[] =>
      ipIn(ns.name, family, 'route', 'show')
        .split('\n')
        .filter((l) => l.startsWith(`${dst} `));
    for (const [family, dst, gateway, dflt] of [
      ['-4', '10.76.0.0/26', '172.30.0.2', ''],
      ['-6', 'fd70:0:0:3::/64', 'fd30::2', '1024'],
    ] as const) {
      rr.set({ dst, gateway, dev: 'vA', metric: 10 });
      await rr.apply();
      t.match(lines(family, dst), [new RegExp(`via ${gateway} dev vA proto 81 metric 10\\b`)], `${dst}: metric 10`);
      rr.set({ dst, gateway, dev: 'vA', metric: 20 });
      await rr.apply();
      t.equal(lines(family, dst).length, 1, `${dst}: the metric-10 route went when the metric-20 one came: ${lines(family, dst)}`);
      t.match(lines(family, dst)[0], /metric 20\b/);
      rr.set({ dst, gateway, dev: 'vA' });
      await rr.apply();
      t.equal(lines(family, dst).length, 1, `${dst}: one route without the metric: ${lines(family, dst)}`);
      t.equal(/ metric (\d+)/.exec(lines(family, dst)[0]!)?.[1] ?? '', dflt, `${dst}: the kernel's default metric`);
    }
    t.ok(await waitUntil(() => rr.inSync, 5000), 'in sync (the old routes going did not make ours pending)');
    const r = await rr.resync();
    t.equal(r.added + r.removed, 0, 'a resync finds nothing to do');
    rr.delete('10.76.0.0/26');
    rr.delete('fd70:0:0:3::/64');
    await rr.apply();
  });

  t.test('stale owned route added by hand: removed; foreign one added: kept', async (t) => {
    ipIn(ns.name, 'route', 'add', '10.83.0.0/24', 'via', '172.30.0.2', 'proto', String(RTPROT_TABBY));
    ipIn(ns.name, 'route', 'add', '10.84.0.0/24', 'via', '172.30.0.2');
    t.ok(await waitUntil(() => !/10\.83\.0\.0/.test(main()), 1000), 'stale route removed');
    t.match(main(), /10\.84\.0\.0\/24/);
  });

  t.test('desired set shrinks: route removed; workload routes (cali*) never touched', async (t) => {
    ipIn(ns.name, 'link', 'add', 'cali0123456789a', 'type', 'veth', 'peer', 'name', 'tmp0');
    ipIn(ns.name, 'link', 'set', 'cali0123456789a', 'up');
    ipIn(ns.name, 'route', 'add', '10.90.0.5/32', 'dev', 'cali0123456789a', 'proto', String(RTPROT_TABBY), 'scope', 'link');
    rr.delete('10.70.0.0/26');
    await rr.apply();
    t.notMatch(main(), /10\.70\.0\.0/);
    t.match(main(), /10\.90\.0\.5 dev cali0123456789a proto 81 scope link/);
  });
});
