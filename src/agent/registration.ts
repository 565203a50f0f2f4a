// What the agent writes about itself (pure): its Node resource (addresses with prefix, AS number,
// route reflector cluster ID, labels — everything else a user or another tool set is kept) and the
// default IP pools it creates when none of a family exists (CALICO_IPV4POOL_* / CALICO_IPV6POOL_*).
import { parseCidr } from '../common/ip.js';
import type { AgentConfig, DefaultPool, PoolMode } from './config.js';
import type { NodeRes, PoolRes } from './ports.js';

export function desiredNode(
  cur: NodeRes | undefined,
  cfg: AgentConfig,
  addr: { ipv4?: string | undefined; ipv6?: string | undefined },
): NodeRes {
  const node: NodeRes = cur
    ? structuredClone(cur)
    : { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: cfg.nodeName }, spec: {} };
  node.metadata.labels = { ...(node.metadata.labels ?? {}), ...cfg.labels };
  if (Object.keys(node.metadata.labels).length === 0) delete node.metadata.labels;
  const bgp = { ...(node.spec.bgp ?? {}) };
  if (addr.ipv4) bgp.ipv4Address = addr.ipv4;
  else delete bgp.ipv4Address;
  if (addr.ipv6) bgp.ipv6Address = addr.ipv6;
  else delete bgp.ipv6Address;
  if (cfg.asNumber !== undefined) bgp.asNumber = cfg.asNumber;
  if (cfg.rrClusterId) bgp.routeReflectorClusterID = cfg.rrClusterId;
  else if (cfg.mode !== 'route-reflector') delete bgp.routeReflectorClusterID;
  node.spec.bgp = bgp;
  return node;
}

/**
 * The default IPv4 pool's modes on this kernel. Nothing chosen (encapByKernel) and no ipip in the kernel:
 * VXLAN Always instead of IPIP Always, so a host becomes ready with the shipped settings (`switched`).
 * An explicit choice is kept as given; the route computation reports an IPIP pool the kernel cannot carry.
 */
export function fitToKernel(def: DefaultPool, kernelHasIpip: boolean): { ipipMode: PoolMode; vxlanMode: PoolMode; switched: boolean } {
  if (def.encapByKernel && !kernelHasIpip && def.ipipMode !== 'Never') return { ipipMode: 'Never', vxlanMode: 'Always', switched: true };
  return { ipipMode: def.ipipMode, vxlanMode: def.vxlanMode, switched: false };
}

/** Default pools to create: one per family configured, only when no pool of that family exists. */
export function defaultPools(cfg: AgentConfig, existing: readonly PoolRes[], kernelHasIpip = true): PoolRes[] {
  if (cfg.noDefaultPools) return [];
  const want: [4 | 6, AgentConfig['ipv4Pool'] | undefined, string][] = [
    [4, cfg.ipv4Pool, 'default-ipv4-ippool'],
    [6, cfg.ipv6Pool, 'default-ipv6-ippool'],
  ];
  const out: PoolRes[] = [];
  for (const [family, def, name] of want) {
    if (!def) continue;
    if (existing.some((p) => parseCidr(p.spec.cidr).family === family)) continue;
    const { ipipMode, vxlanMode } = fitToKernel(def, kernelHasIpip);
    out.push({
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name },
      spec: {
        cidr: def.cidr,
        blockSize: def.blockSize,
        ipipMode,
        vxlanMode,
        natOutgoing: def.natOutgoing,
        nodeSelector: def.nodeSelector,
        disabled: false,
        allowedUses: ['Workload', 'Tunnel'],
      },
    });
  }
  return out;
}
