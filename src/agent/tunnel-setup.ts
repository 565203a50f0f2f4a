// The node's tunnel devices, set up as calico-node does: tunl0 for IPv4 IPIP pools (a pool that is also
// VXLAN is VXLAN's), vxlan.calico / vxlan-v6.calico for the VXLAN pools of each family. Each device is made
// once; its address comes from IPAM, from the pools that allow Tunnel use (IPPool allowedUses), and goes
// into the Node resource with the VTEP's MAC, which is how the other nodes route to this one.
// tunnelPools and withTunnelFields are pure; setUpTunnels is the shell over the dataplane and IPAM.
import { parseCidr } from '../common/ip.js';
import type { Logger } from '../common/log.js';
import { VXLAN_IF_NAME, VXLAN_V6_IF_NAME } from '../dataplane/ownership.js';
import type { PoolMode } from './config.js';
import type { DataplanePort, IpamPort, NodeRes, PoolRes } from './ports.js';
import { ipOf, msg } from './util.js';

/** Which devices are up (each is made once per agent run). */
export interface TunnelsUp {
  ipip: boolean;
  vxlan: boolean;
  vxlan6: boolean;
  ipipAddr?: string;
}

/** The Node fields the tunnels set (Calico's names: spec.bgp.ipv4IPIPTunnelAddr, spec.ipv4VXLANTunnelAddr…). */
export interface NodeTunnelFields {
  ipv4IPIPTunnelAddr?: string;
  ipv4VXLANTunnelAddr?: string;
  vxlanTunnelMACAddr?: string;
  ipv6VXLANTunnelAddr?: string;
  vxlanTunnelMACAddrV6?: string;
}

/** An IPPool's ipipMode/vxlanMode (absent or unknown: Never). */
export function poolMode(m: string | undefined): PoolMode {
  if (m === 'Always' || m === 'CrossSubnet') return m;
  return 'Never';
}

/** IPPool allowedUses (absent in a pool written before the field: both). */
export const allowsUse = (p: PoolRes, use: 'Workload' | 'Tunnel'): boolean => !p.spec.allowedUses || p.spec.allowedUses.includes(use);

/** The enabled pools that need each device. */
export function tunnelPools(pools: readonly PoolRes[]): { ipip: PoolRes[]; vxlan: Record<4 | 6, PoolRes[]> } {
  const on = pools.filter((p) => !p.spec.disabled);
  const vxlan = (family: 4 | 6) => on.filter((p) => poolMode(p.spec.vxlanMode) !== 'Never' && parseCidr(p.spec.cidr).family === family);
  return {
    ipip: on.filter(
      (p) => poolMode(p.spec.ipipMode) !== 'Never' && poolMode(p.spec.vxlanMode) === 'Never' && parseCidr(p.spec.cidr).family === 4,
    ),
    vxlan: { 4: vxlan(4), 6: vxlan(6) },
  };
}

const tunnelCidrs = (pools: readonly PoolRes[]): string[] => pools.filter((p) => allowsUse(p, 'Tunnel')).map((p) => p.spec.cidr);

export interface TunnelSetupDeps {
  dataplane: DataplanePort;
  ipam: IpamPort;
  logger: Logger;
  nodeName: string;
  kernelHasIpip: boolean;
  address4?: string | undefined;
  address6?: string | undefined;
}

/** Make the devices the pools need that are not up yet (marking them in `up`); returns the Node fields to write. */
export async function setUpTunnels(d: TunnelSetupDeps, pools: readonly PoolRes[], up: TunnelsUp): Promise<NodeTunnelFields> {
  const want = tunnelPools(pools);
  const fields: NodeTunnelFields = {};
  if (want.ipip.length && d.kernelHasIpip && !up.ipip) {
    const addr = await d.ipam.tunnelAddress(d.nodeName, 'ipip', tunnelCidrs(want.ipip)).catch((e: unknown) => {
      d.logger.warn({ err: msg(e) }, 'no IPIP tunnel address');
      return undefined;
    });
    await d.dataplane.ensureIpipTunnel(addr ? { address: addr } : {});
    up.ipip = true;
    up.ipipAddr = addr;
    if (addr) fields.ipv4IPIPTunnelAddr = addr;
    d.logger.info({ address: addr }, 'IPIP tunnel tunl0 ready');
  }
  for (const family of [4, 6] as const) {
    const local = family === 4 ? d.address4 : d.address6;
    const isUp = family === 4 ? up.vxlan : up.vxlan6;
    // the device for every VXLAN pool; its address only from those allowing Tunnel
    if (!want.vxlan[family].length || isUp || !local) continue;
    const addr = await d.ipam.tunnelAddress(d.nodeName, family === 4 ? 'vxlan' : 'vxlan-v6', tunnelCidrs(want.vxlan[family]));
    const mac = d.dataplane.vxlanMacForNode(d.nodeName, family);
    await d.dataplane.ensureVxlanTunnel({ localIp: ipOf(local), mac, ...(addr ? { address: addr } : {}) });
    if (family === 4) up.vxlan = true;
    else up.vxlan6 = true;
    if (addr && family === 4) Object.assign(fields, { ipv4VXLANTunnelAddr: addr, vxlanTunnelMACAddr: mac });
    if (addr && family === 6) Object.assign(fields, { ipv6VXLANTunnelAddr: addr, vxlanTunnelMACAddrV6: mac });
    d.logger.info({ address: addr, mac }, `VXLAN tunnel ${family === 4 ? VXLAN_IF_NAME : VXLAN_V6_IF_NAME} ready`);
  }
  return fields;
}

/** `node` with the tunnel fields written in (a copy). */
export function withTunnelFields(node: NodeRes, f: NodeTunnelFields): NodeRes {
  const out = structuredClone(node);
  const { ipv4IPIPTunnelAddr, ...spec } = f;
  if (ipv4IPIPTunnelAddr) out.spec.bgp = { ...(out.spec.bgp ?? {}), ipv4IPIPTunnelAddr };
  Object.assign(out.spec, spec);
  return out;
}
