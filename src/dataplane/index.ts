// tabby's dataplane: everything that touches a Linux kernel (links, addresses, routes, neighbours,
// FDB, sysctls, NAT) over rtnetlink. Reconcilers take desired state and make the kernel match.
// Files: netlink/ (constants, wire codec, messages, linkinfo encoder, socket = request/ack/dump/batch
// layer over the `netlink` package's RawNetlinkSocket, netlink.ts = the typed handle), interfaces.ts
// (listInterfaces), ownership.ts (RTPROT_TABBY, names), workload.ts (CNI wiring), sysctl.ts,
// tunnels.ts (tunl0, vxlan.calico, vxlan-v6.calico), reconciler.ts (the one reconciler shape), routes.ts
// (RouteReconciler), neigh-fdb.ts (VXLAN peers), nat.ts (nft natOutgoing), fake.ts (unit-test stand-in).
export { Netlink, openNetlink, NetlinkSubscription, decodeEvent } from './netlink/netlink.js';
export type { NetlinkOptions, NetlinkEvent, EventKind, RouteOp } from './netlink/netlink.js';
export { NetlinkError, isErrno } from './netlink/socket.js';
export type { Link, Address, KernelRoute, NextHop, Neighbor, RouteType, Family } from './netlink/messages.js';
export type { LinkInfo, VethPeer, IpipOptions, VxlanOptions } from './netlink/linkinfo.js';
export { listInterfaces } from './interfaces.js';
export type { Interface, InterfaceAddress, AddressScope } from './interfaces.js';
export * as nlconst from './netlink/constants.js';
export {
  RTPROT_TABBY,
  WORKLOAD_IF_PREFIX,
  IPIP_IF_NAME,
  VXLAN_IF_NAME,
  VXLAN_V6_IF_NAME,
  WORKLOAD_HOST_MAC,
  WORKLOAD_GATEWAY_V4,
  WORKLOAD_GATEWAY_V6,
  workloadIfName,
  isWorkloadIfName,
} from './ownership.js';
export { wireWorkload, unwireWorkload, checkWorkload } from './workload.js';
export type { WorkloadOptions, WiredWorkload, UnwireOptions } from './workload.js';
export { writeSysctl, readSysctl, writeSysctls, ensureForwarding, SysctlError } from './sysctl.js';
export { Reconciler } from './reconciler.js';
export type { ReconcileDriver, ApplyResult, Failure, ReconcilerOptions, ReconcileError } from './reconciler.js';
export { RouteReconciler, sameRoute, normalizeDst, routeKey, BULK_PAUSE_THRESHOLD } from './routes.js';
export { FakeRouteDataplane } from './fake.js';
export type { Route, RouteScope, RouteDataplane, RouteReconcilerOptions } from './routes.js';
export {
  ensureIpipTunnel,
  ensureVxlanTunnel,
  removeVxlanTunnel,
  vxlanMacForNode,
  kernelHasIpip,
  decodeVxlanInfo,
  VXLAN_DEFAULT_VNI,
  VXLAN_DEFAULT_PORT,
  VXLAN_DEFAULT_MTU,
  VXLAN_V6_DEFAULT_MTU,
  IPIP_DEFAULT_MTU,
} from './tunnels.js';
export type { IpipTunnelOptions, VxlanTunnelOptions, VxlanParams } from './tunnels.js';
export { NeighFdbReconciler } from './neigh-fdb.js';
export type { VxlanPeer, NeighFdbOptions } from './neigh-fdb.js';
export { applyNatOutgoing, removeNatOutgoing, natOutgoingScript, NatError, NAT_TABLE } from './nat.js';
export type { NatPool, NatOptions } from './nat.js';
