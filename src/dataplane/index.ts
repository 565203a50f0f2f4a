// tabby's dataplane: everything that touches a Linux kernel (links, addresses, routes, neighbours,
// FDB, sysctls, NAT) over rtnetlink. Reconcilers take desired state and make the kernel match.
// Files: netlink/ (wire codec, socket, typed handle, linkinfo encoder), interfaces.ts.
export { Netlink, openNetlink, NetlinkSubscription, decodeEvent } from './netlink/netlink.js';
export type { NetlinkOptions, NetlinkEvent, EventKind, RouteOp } from './netlink/netlink.js';
export { NetlinkError, isErrno } from './netlink/socket.js';
export type { Link, Address, KernelRoute, NextHop, Neighbor, RouteType, Family } from './netlink/messages.js';
export type { LinkInfo, VethPeer, IpipOptions, VxlanOptions } from './netlink/linkinfo.js';
export { listInterfaces } from './interfaces.js';
export type { Interface, InterfaceAddress, AddressScope } from './interfaces.js';
export * as nlconst from './netlink/constants.js';
