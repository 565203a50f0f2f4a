// The agent's route path as JS text for a child node process (runModule / spawn): the RouteTable into a
// RouteReconciler whose netlink takes every batch and keeps nothing. Memory and compile tests measure the
// path in a fresh process; this is the one place that wires it.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const mod = (p: string): string => JSON.stringify(pathToFileURL(path.join(src, p)).href);

/**
 * `tab` (RouteTable) and `rr` (RouteReconciler) are ready, applied once. `onBatch`: the body of
 * routeBatchTo(op, count), the kernel's side; `pools`: the IP pools as JS text. `quiet()` waits past
 * the reconciler's compactQuietMs (1 s): timers fire in the order they are due, so it comes after it.
 */
export const routePath = (onBatch = '', pools = '[]'): string => `
const { RouteTable } = await import(${mod('agent/route-table.js')});
const { compileRouteContext } = await import(${mod('agent/routes.js')});
const { RouteReconciler } = await import(${mod('dataplane/index.js')});
const { EventEmitter } = await import('node:events');
const nl = {
  listRoutes: async () => [],
  listLinks: async () => [],
  routeBatch: async () => [],
  routeBatchTo: async (op, count) => { ${onBatch} return []; },
  subscribe: () => Object.assign(new EventEmitter(), { close() {}, pause() {}, resume() {} }),
};
const rr = new RouteReconciler(nl, { resyncIntervalMs: 0, bulkResyncQuietMs: 1e9 });
const sink = { setRoute: (r) => rr.set(r), deleteRoute: (d) => rr.delete(d), prefixIds: rr.prefixIds,
  setRouteAt: (id, r) => rr.setAt(id, r), deleteRouteAt: (id) => rr.deleteAt(id) };
const tab = new RouteTable(compileRouteContext({ nodeAddress4: '10.0.0.1/24', kernelHasIpip: true,
  pools: ${pools}, ownBlocks: [] }), sink);
await rr.apply();
const quiet = () => new Promise((r) => setTimeout(r, 1100));
`;
