// The route reconciler's resync dump in a real kernel (a fresh netns): a dump stopped early ends at
// once and the next one answers; during a bulk ingest (route events paused) someone else deletes,
// changes and adds routes with tabby's protocol, and 5000 withdrawals arrive while the resync dump
// after the ingest runs — the dump gives way to them, comes back, and the kernel ends up exactly as
// desired (`ip route`).
import t from 'tap';
import { Netlink, NetlinkError, RouteReconciler, RTPROT_TABBY } from '../../../src/dataplane/index.js';
import type { RouteDataplane } from '../../../src/dataplane/routes.js';
import type { KernelRoute } from '../../../src/dataplane/netlink/messages.js';
import { isRoot, ipIn, makeNetns, waitUntil } from '../../helpers/dataplane-netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const N = 20_000;
const dst = (i: number): string => `11.${i >> 8}.${i & 255}.0/24`;

function veth(ns: string): void {
  ipIn(ns, 'link', 'add', 'vA', 'type', 'veth', 'peer', 'name', 'vB');
  ipIn(ns, 'link', 'set', 'vA', 'up');
  ipIn(ns, 'link', 'set', 'vB', 'up');
  ipIn(ns, 'addr', 'add', '172.30.0.1/24', 'dev', 'vA');
}

t.test('a route dump stopped early ends at once; the next dump answers in full', { skip }, async (t) => {
  const ns = makeNetns(t, 'rs');
  veth(ns.name);
  const nl = new Netlink({ netnsPath: ns.path });
  t.teardown(() => nl.close());
  const oif = (await nl.mustGetLink('vA')).index;
  const tmpl = { family: 4 as const, table: 254, protocol: RTPROT_TABBY, scope: 0, type: 'unicast' as const, gateway: '172.30.0.2', oif };
  t.same(await nl.routeBatchTo('replace', N, () => tmpl, dst), [], `${N} routes in`);
  let listed = 0;
  const err = await nl
    .listRoutesEach(
      4,
      () => () => {
        listed++;
      },
      () => listed > 0,
    )
    .catch((e: unknown) => e);
  t.ok(err instanceof NetlinkError && err.code === 'ECANCELED', `stopped (${String(err)})`);
  t.ok(listed > 0 && listed < N, `after the first datagram (${listed} of ${N} listed)`);
  let all = 0;
  await nl.listRoutesEach(4, () => {
    all = 0;
    return (r) => {
      if (r.protocol === RTPROT_TABBY) all++;
    };
  });
  t.equal(all, N, 'the next dump lists every route');
  t.equal((await nl.listRoutes(4)).filter((r) => r.protocol === RTPROT_TABBY).length, N, 'and so does listRoutes');
});

t.test(
  'routes changed behind our back during a bulk ingest are fixed by a resync dump that gave way to withdrawals',
  { skip },
  async (t) => {
    const ns = makeNetns(t, 'rd');
    veth(ns.name);
    const nl = new Netlink({ netnsPath: ns.path });
    const other = new Netlink({ netnsPath: ns.path }); // someone else
    t.teardown(() => {
      nl.close();
      other.close();
    });
    const oif = (await nl.mustGetLink('vA')).index;
    let tampered = false;
    let withdrawn = false;
    let rr: RouteReconciler | undefined;
    // someone else, while the bulk change runs (tabby's route events are paused)
    const tamper = async (): Promise<void> => {
      const base = { family: 4 as const, table: 254, protocol: RTPROT_TABBY, scope: 0, type: 'unicast' as const, oif };
      t.same(
        await other.routeBatchTo(
          'del',
          50,
          () => base,
          (i) => dst(100 + i),
        ),
        [],
        'deleted 50 of ours',
      );
      t.same(
        await other.routeBatchTo(
          'replace',
          50,
          () => ({ ...base, gateway: '172.30.0.3' }),
          (i) => dst(200 + i),
        ),
        [],
        'changed 50',
      );
      t.same(
        await other.routeBatchTo(
          'replace',
          20,
          () => ({ ...base, gateway: '172.30.0.2' }),
          (i) => `12.0.${i}.0/24`,
        ),
        [],
        'added 20 stale',
      );
    };
    const dp: RouteDataplane = {
      listRoutes: (f) => nl.listRoutes(f),
      listLinks: () => nl.listLinks(),
      routeBatch: (ops) => nl.routeBatch(ops),
      subscribe: (kinds) => nl.subscribe(kinds),
      routeBatchTo: async (op, count, route, d) => {
        const f = await nl.routeBatchTo(op, count, route, d);
        if (op === 'replace' && count > 1000 && !tampered) {
          tampered = true;
          await tamper();
        }
        return f;
      },
      // the first resync dump after the tampering: 5000 withdrawals arrive once it listed 2000 routes
      listRoutesEach: (family, start, stop) =>
        nl.listRoutesEach(
          family,
          () => {
            const each = start();
            let n = 0;
            return (r: KernelRoute) => {
              each(r);
              if (++n === 2000 && tampered && !withdrawn) {
                withdrawn = true;
                for (let i = 10_000; i < 15_000; i++) rr!.delete(dst(i));
              }
            };
          },
          stop,
        ),
    };
    rr = new RouteReconciler(dp, { debounceMs: 5, resyncIntervalMs: 0, bulkResyncQuietMs: 200 });
    t.teardown(() => rr!.stop());
    await rr.start();
    for (let i = 0; i < N; i++) rr.set({ dst: dst(i), gateway: '172.30.0.2', dev: 'vA' });
    const ok = await waitUntil(() => rr!.inSync && withdrawn && rr!.resyncProgress.last !== undefined && tampered, 120_000, 50);
    t.ok(ok, `in sync (pending ${rr.pending}, ${JSON.stringify(rr.resyncProgress)})`);
    t.ok(rr.resyncProgress.gaveWay >= 1, `the dump gave way to the withdrawals (${rr.resyncProgress.gaveWay} time(s))`);
    const lines = ipIn(ns.name, 'route', 'show', 'proto', String(RTPROT_TABBY)).trim().split('\n');
    t.equal(lines.length, N - 5000, 'exactly the desired routes have our protocol');
    const shown = new Map(lines.map((l) => [l.split(' ')[0]!, l]));
    t.ok(
      [100, 125, 149].every((i) => shown.get(dst(i))?.includes('via 172.30.0.2 dev vA')),
      'the deleted ones are back',
    );
    t.ok(
      [200, 225, 249].every((i) => shown.get(dst(i))?.includes('via 172.30.0.2 dev vA')),
      'the changed ones put right',
    );
    t.notOk(
      [...shown.keys()].some((k) => k.startsWith('12.0.')),
      'the stale ones removed',
    );
    t.notOk(
      [10_000, 12_345, 14_999].some((i) => shown.has(dst(i))),
      'the withdrawn ones gone',
    );
  },
);
