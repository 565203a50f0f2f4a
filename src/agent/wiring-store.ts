// Adapters from the datastore and IPAM modules to the agent's ports (ports.ts): the ResourceStore
// (validation, defaults, CAS) as ResourcesPort, Ipam as IpamPort, the Calico selector language as
// SelectorMatch. Pure glue; no state of its own beyond a selector cache.
import { type ResourceStore, parseSelector, type Selector } from '../datastore/resources.js';
import type { Ipam } from '../ipam/index.js';
import { blockAllocations, affinityNode } from '../ipam/block.js';
import type { AnyRes, IpamPort, ResKind, ResourcesPort, BlockInfo, TunnelKind } from './ports.js';
import type { SelectorMatch } from './peers.js';

export function resourcesPort(store: ResourceStore): ResourcesPort {
  // one resource model: the port's types are the store's own (validated, defaults and ASNs normalised)
  const port = {
    get: (kind: ResKind, name: string) => store.get(kind, name),
    list: async (kind: ResKind) => (await store.list(kind)).items,
    create: (res: AnyRes) => store.create(res),
    update: (res: AnyRes) => store.update(res),
  };
  return port as ResourcesPort; // the port's per-call type parameter names which kind comes back
}

const selectorCache = new Map<string, Selector>();

/** Calico selector matching (parse once per expression). Throws SelectorError on a bad expression. */
export const calicoSelectorMatch: SelectorMatch = (expr, labels) => {
  let s = selectorCache.get(expr);
  if (!s) {
    s = parseSelector(expr);
    if (selectorCache.size > 1000) selectorCache.clear();
    selectorCache.set(expr, s);
  }
  return s.matches(labels);
};

/** Calico's handles for tunnel addresses (`vxlan-v6-tunnel-addr-<node>`: the -v6- infix is Calico's). */
export const tunnelHandle = (kind: TunnelKind, node: string): string => `${kind}-tunnel-addr-${node}`;
/** Calico's allocation attribute type of each tunnel address. */
const TUNNEL_ATTR: Record<TunnelKind, string> = {
  ipip: 'ipipTunnelAddress',
  vxlan: 'vxlanTunnelAddress',
  'vxlan-v6': 'vxlanV6TunnelAddress',
};

export function ipamPort(ipam: Ipam): IpamPort {
  return {
    ensureBlock: async (node, family) => {
      await ipam.ensureBlock(node, family);
    },
    blocksAffineTo: async (node) =>
      (await ipam.blocksAffineTo(node))
        .filter((b) => b.state === 'pending' || b.state === 'confirmed')
        .map((b) => ({ cidr: b.cidr, state: b.state as 'pending' | 'confirmed' })),
    listBlocks: async (): Promise<BlockInfo[]> =>
      (await ipam.store.listBlocks()).map(({ value: b }) => ({
        cidr: b.cidr,
        node: affinityNode(b.affinity),
        size: b.allocations.length,
        allocated: blockAllocations(b).map((a) => {
          const x: BlockInfo['allocated'][number] = { ip: a.ip, handle: a.handle };
          if (a.attrs.node !== undefined) x.node = a.attrs.node;
          return x;
        }),
      })),
    tunnelAddress: async (node, kind, poolCidrs) => {
      const handle = tunnelHandle(kind, node);
      const have = await ipam.ipsByHandle(handle);
      if (have.length > 0) return have[0]!.split('/')[0];
      if (poolCidrs.length === 0) return undefined;
      const v6 = kind === 'vxlan-v6';
      const r = await ipam.autoAssign({
        handle,
        node,
        ...(v6 ? { num6: 1 } : { num4: 1 }),
        pools: [...poolCidrs],
        use: 'Tunnel',
        attrs: { node, type: TUNNEL_ATTR[kind] },
      });
      return (v6 ? r.ipv6 : r.ipv4)[0]?.split('/')[0];
    },
  };
}
