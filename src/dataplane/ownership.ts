// How tabby recognises its own kernel objects with no memory of creating them (Felix's doctrine):
// routes carry tabby's own rtnetlink protocol number; workload interfaces start with "cali";
// tunnels have fixed names.
import { createHash } from 'node:crypto';

/** rtm_protocol of every route tabby installs (`ip route … proto 81`). Not used by iproute2's
 *  rt_protos (bird 12, zebra 11, bgp 186, …) nor by Calico (felix 80). */
export const RTPROT_TABBY = 81;

export const WORKLOAD_IF_PREFIX = 'cali';
export const IPIP_IF_NAME = 'tunl0';
export const VXLAN_IF_NAME = 'vxlan.calico';
/** VXLAN over IPv6 (Calico's name): the IPv6 pools' VTEP, local address = the node's IPv6 address. */
export const VXLAN_V6_IF_NAME = 'vxlan-v6.calico';
/** The host side MAC of every workload veth (Calico's). */
export const WORKLOAD_HOST_MAC = 'ee:ee:ee:ee:ee:ee';
/** Link group of workload veths a DEL took out of service, deleted together (workload-reaper.ts). */
export const WORKLOAD_RETIRED_GROUP = 0x74627900;
/** The pod's IPv4 gateway: answered by proxy ARP on the host side. */
export const WORKLOAD_GATEWAY_V4 = '169.254.1.1';
/** The pod's IPv6 gateway: the host side's EUI-64 link-local address (from ee:ee:ee:ee:ee:ee). */
export const WORKLOAD_GATEWAY_V6 = 'fe80::ecee:eeff:feee:eeee';

/** Calico's workload interface name: "cali" + first 11 hex of SHA-1("<namespace>.<pod>") (15 chars). */
export function workloadIfName(namespace: string, pod: string): string {
  return WORKLOAD_IF_PREFIX + createHash('sha1').update(`${namespace}.${pod}`).digest('hex').slice(0, 11);
}

export function isWorkloadIfName(name: string | undefined): boolean {
  return name?.startsWith(WORKLOAD_IF_PREFIX) ?? false;
}
