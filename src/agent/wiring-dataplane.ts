// Adapter from the dataplane module (src/dataplane) to the agent's DataplanePort: one netlink handle
// in the agent's own network namespace, the RouteReconciler (routes tabby owns, by protocol), the
// NeighFdbReconciler (VXLAN peers), tunnels, forwarding sysctls.
// Graceful restart: until the agent says deletes are allowed, the desired set handed to the route
// reconciler is the computed set plus every route tabby owned in the kernel at start that the
// computed set does not replace — so a restarted agent deletes nothing a previous run installed.
import {
  openNetlink, RouteReconciler, ensureForwarding, ensureIpipTunnel, ensureVxlanTunnel, kernelHasIpip, vxlanMacForNode,
  NeighFdbReconciler, applyNatOutgoing, type Netlink, type Route, type KernelRoute, type Link, type VxlanPeer,
} from '../dataplane/index.js';
import { RTPROT_TABBY, isWorkloadIfName } from '../dataplane/ownership.js';
import { normalizeDst } from '../dataplane/routes.js';
import type { Logger } from '../common/log.js';
import { log } from '../common/log.js';
import type { DataplanePort } from './ports.js';
import type { KernelRoute as AgentRoute } from './routes.js';
import { VXLAN_MTU } from './constants.js';

const RT_TABLE_MAIN = 254;

/** A kernel route back in the agent's form (for the routes preserved across a restart). */
function fromKernel(r: KernelRoute, names: Map<number, string>): Route | undefined {
  if (r.table !== RT_TABLE_MAIN) return undefined;
  const out: Route = { dst: r.dst };
  if (r.type === 'blackhole') { out.type = 'blackhole'; return out; }
  if (r.type !== 'unicast') return undefined;
  if (r.gateway) out.gateway = r.gateway;
  if (r.oif) {
    const dev = names.get(r.oif);
    if (!dev) return undefined;
    out.dev = dev;
  }
  if (r.onlink) out.onlink = true;
  if (r.multipath?.length) return undefined;
  return out;
}

export async function createDataplanePort(opts: { logger?: Logger } = {}): Promise<DataplanePort> {
  const logger = opts.logger ?? log('dataplane');
  const nl: Netlink = await openNetlink();
  const routes = new RouteReconciler(nl as never, { logger });
  let neighFdb: NeighFdbReconciler | undefined;
  let natKey = '';
  let started = false;

  // Routes tabby owned at start (a previous run's), kept until deletes are allowed.
  const links: Link[] = await nl.listLinks();
  const names = new Map(links.map((l) => [l.index, l.name]));
  const preserved = new Map<string, Route>();
  for (const r of await nl.listRoutes()) {
    if (r.protocol !== RTPROT_TABBY) continue;
    if (r.oif && isWorkloadIfName(names.get(r.oif))) continue;
    const x = fromKernel(r, names);
    if (x) preserved.set(normalizeDst(x.dst), x);
  }
  if (preserved.size) logger.info({ routes: preserved.size }, 'kernel routes of a previous run kept until BGP has converged');

  const toRoute = (r: AgentRoute): Route => {
    const o: Route = { dst: r.dst };
    if (r.type) o.type = r.type;
    if (r.gateway) o.gateway = r.gateway;
    if (r.dev) o.dev = r.dev;
    if (r.onlink) o.onlink = true;
    return o;
  };

  return {
    kernelHasIpip: async () => kernelHasIpip(),
    ensureForwarding: async () => { ensureForwarding(); },
    ensureIpipTunnel: async (o) => { await ensureIpipTunnel(nl, o.address ? { address: o.address } : {}); },
    ensureVxlanTunnel: async (o) => {
      await ensureVxlanTunnel(nl, { localIp: o.localIp, mac: o.mac, mtu: VXLAN_MTU, ...(o.address ? { address: o.address } : {}) });
    },
    vxlanMacForNode,
    apply: async (desired, o) => {
      const want = new Map<string, Route>();
      if (!o.allowDeletes) for (const [k, r] of preserved) want.set(k, r);
      else preserved.clear();
      for (const r of desired.routes) want.set(normalizeDst(r.dst), toRoute(r));
      routes.setDesired(want.values());
      if (!started) { started = true; await routes.start(); } else await routes.apply();
      if (desired.neighbors.length || desired.fdb.length || neighFdb) {
        neighFdb ??= new NeighFdbReconciler(nl, { logger });
        const peers: VxlanPeer[] = desired.neighbors.map((n) => {
          const f = desired.fdb.find((x) => x.mac === n.mac);
          return { tunnelIp: n.ip, mac: n.mac, nodeIp: f?.dst ?? '' };
        }).filter((p) => p.nodeIp !== '');
        neighFdb.setPeers(peers);
        await neighFdb.apply();
      }
      if (!routes.inSync) throw new Error(`kernel routes not in sync yet (${routes.pending} pending)`);
    },
    applyNat: async (pools) => {
      // One atomic nft batch, only when the pool set changed (pools without natOutgoing: the table is emptied).
      const key = JSON.stringify(pools);
      if (key === natKey) return;
      applyNatOutgoing(pools);
      natKey = key;
    },
    close: async () => { routes.stop(); neighFdb?.stop(); nl.close(); },
  };
}
