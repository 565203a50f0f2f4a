// Adapter from the dataplane module (src/dataplane) to the agent's DataplanePort: one netlink handle
// in the agent's own network namespace, the RouteReconciler (routes tabby owns, by protocol) fed with
// the route table's deltas, a NeighFdbReconciler per VTEP device (VXLAN peers), tunnels, forwarding sysctls.
// Graceful restart is the reconciler's hold on deletes: held from the start until the agent says
// routing has converged, so a restarted agent deletes nothing a previous run installed.
import {
  openNetlink,
  RouteReconciler,
  ensureForwarding,
  ensureIpipTunnel,
  ensureVxlanTunnel,
  kernelHasIpip,
  vxlanMacForNode,
  NeighFdbReconciler,
  applyNatOutgoing,
  type Netlink,
  type VxlanPeer,
} from '../dataplane/index.js';
import type { Logger } from '../common/log.js';
import { log } from '../common/log.js';
import type { DataplanePort, DataplaneProgress } from './ports.js';

export async function createDataplanePort(opts: { logger?: Logger } = {}): Promise<DataplanePort> {
  const logger = opts.logger ?? log('dataplane');
  const nl: Netlink = await openNetlink();
  const routes = new RouteReconciler(nl as never, { logger });
  routes.holdDeletes(true);
  const neighFdb = new Map<string, NeighFdbReconciler>();
  let natKey = '';
  let started = false;

  const progress = (): DataplaneProgress => {
    const p: DataplaneProgress = { inSync: routes.inSync, desired: routes.desiredCount, pending: routes.pending, held: routes.heldCount };
    const e = routes.lastError;
    if (e) p.lastError = e;
    const { state, listed, gaveWay, last } = routes.resyncProgress;
    p.resync = { state, listed, gaveWay, ...(last ? { lastListed: last.listed, lastMs: last.ms } : {}) };
    return p;
  };

  return {
    kernelHasIpip: async () => kernelHasIpip(),
    ensureForwarding: async () => {
      ensureForwarding();
    },
    ensureIpipTunnel: async (o) => {
      await ensureIpipTunnel(nl, o.address ? { address: o.address } : {});
    },
    ensureVxlanTunnel: async (o) => {
      await ensureVxlanTunnel(nl, { localIp: o.localIp, mac: o.mac, ...(o.address ? { address: o.address } : {}) });
    },
    vxlanMacForNode,
    setRoute: (r) => routes.set(r),
    deleteRoute: (dst) => routes.delete(dst),
    prefixIds: routes.prefixIds,
    setRouteAt: (id, r) => routes.setAt(id, r),
    deleteRouteAt: (id) => routes.deleteAt(id),
    holdDeletes: (hold) => {
      if (!hold) logger.info({ held: routes.heldCount }, 'routing converged: routes of a previous run no longer wanted may now be removed');
      routes.holdDeletes(hold);
    },
    apply: async (desired) => {
      // the first pass starts the reconciler (event subscription, debounced passes, periodic resync)
      if (!started) {
        started = true;
        await routes.start();
      } else await routes.apply();
      // one NeighFdbReconciler per VTEP device (vxlan.calico, vxlan-v6.calico), made when first needed
      for (const dev of new Set([...desired.neighbors.map((n) => n.dev), ...neighFdb.keys()])) {
        let r = neighFdb.get(dev);
        if (!r) {
          r = new NeighFdbReconciler(nl, { logger, ifName: dev });
          neighFdb.set(dev, r);
        }
        const peers: VxlanPeer[] = desired.neighbors
          .filter((n) => n.dev === dev)
          .map((n) => {
            const f = desired.fdb.find((x) => x.dev === dev && x.mac === n.mac);
            return { tunnelIp: n.ip, mac: n.mac, nodeIp: f?.dst ?? '' };
          })
          .filter((p) => p.nodeIp !== '');
        r.setPeers(peers);
        await r.apply();
      }
      return progress();
    },
    progress,
    applyNat: async (pools) => {
      // One atomic nft batch, only when the pool set changed (pools without natOutgoing: the table is emptied).
      const key = JSON.stringify(pools);
      if (key === natKey) return;
      applyNatOutgoing(pools);
      natKey = key;
    },
    interfaceAddresses: async () => {
      // A periodic full list, not a watch: the set is small and the agent asks at its own pace.
      const [links, addrs] = await Promise.all([nl.listLinks(), nl.listAddresses()]);
      const byIndex = new Map(links.map((l) => [l.index, l]));
      return addrs.flatMap((a) => {
        const l = byIndex.get(a.index);
        return l ? [{ iface: l.name, address: a.address, prefixLen: a.prefixLen, scope: a.scope, up: l.up }] : [];
      });
    },
    close: async () => {
      routes.stop();
      for (const r of neighFdb.values()) r.stop();
      nl.close();
    },
  };
}
