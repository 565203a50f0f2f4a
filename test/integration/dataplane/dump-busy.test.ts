// An interrupted or abandoned netlink dump must not fail the next one: a route dump we stopped waiting
// for keeps running in the kernel, which refuses any other dump on that socket with EBUSY until it ends
// (what left tabby-node stuck at 1M routes: "list links: EBUSY" failed every reconcile pass).
import t from 'tap';
import { Netlink, NetlinkError, type RouteOp } from '../../../src/dataplane/index.js';
import { isRoot, makeNetns } from '../../helpers/dataplane-netns.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

t.test('a dump after an abandoned dump is retried, not failed with EBUSY', { skip }, async (t) => {
  const ns = makeNetns(t, 'db');
  const fill = new Netlink({ netnsPath: ns.path });
  t.teardown(() => fill.close());
  const ops: RouteOp[] = [];
  for (let i = 0; i < 50_000; i++) {
    ops.push({
      op: 'add',
      route: {
        family: 4,
        dst: `10.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
        table: 254,
        protocol: 81,
        scope: 0,
        type: 'blackhole',
      },
    });
  }
  t.same(await fill.routeBatch(ops), [], '50k routes in');

  const nl = new Netlink({ netnsPath: ns.path, timeoutMs: 5 });
  t.teardown(() => nl.close());
  const first = nl.listRoutes(4);
  for (let i = 0; i < 5; i++) await null; // the request is sent from a microtask
  const busyUntil = Date.now() + 30;
  while (Date.now() < busyUntil) {
    /* hold the event loop: the 5 ms timeout fires before any reply is read */
  }
  const err = await first.catch((e: unknown) => e);
  t.ok(err instanceof NetlinkError && err.code === 'ETIMEDOUT', 'the first dump was given up');
  // the kernel is still dumping the 50k routes for the abandoned request
  nl.setTimeout(30_000);
  const links = await nl.listLinks().catch((e: unknown) => e);
  t.ok(Array.isArray(links), `the next dump answers (got ${links instanceof Error ? links.message : 'links'})`);
  t.ok((links as { name: string }[]).some((l) => l.name === 'lo'));
});
