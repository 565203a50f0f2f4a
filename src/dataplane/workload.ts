// Workload wiring — what the CNI plugin does to the kernel for one pod, Calico's way:
//   host side  caliXXXXXXXXXXX (veth), MAC ee:ee:ee:ee:ee:ee, no address, up; proxy_arp=1,
//              the pod's address as a permanent neighbour (lladdr = the pod side's MAC),
//              neigh proxy_delay=0, route_localnet=1, forwarding=1 (v6: proxy_ndp=1, accept_ra=0);
//              route <ip>/32 dev caliX scope link proto tabby (and /128 for v6)
//   pod side   eth0 with <ip>/32, 169.254.1.1 dev eth0 scope link, default via 169.254.1.1 dev eth0
//              (v6: <ip>/128, default via fe80::ecee:eeff:feee:eeee dev eth0), and the gateway as a
//              permanent neighbour: 169.254.1.1 (and fe80::ecee:eeff:feee:eeee) lladdr ee:ee:ee:ee:ee:ee.
//              Calico leaves the pod to ARP for 169.254.1.1 and the host's proxy ARP answers — but only
//              when the host has a route to 169.254.1.1 out of another interface, so on a node with no
//              default route (an air-gapped node peering BGP with its top-of-rack router) the pod was cut
//              off (projectcalico/calico#3270). The host side's MAC is fixed, so the pod needs no answer.
// wireWorkload converges from any starting point (a retried ADD), unwireWorkload removes whatever of
// it exists (a DEL after a half-done ADD), checkWorkload lists every difference (CNI CHECK).
// The veth is created with its peer directly in the pod's netns; the pod side is configured over a
// netlink socket opened inside that netns; the pod's sysctls are written inside it (withNetns).
// A fresh ADD is two netlink exchanges, both off the event loop (Netlink offLoop): the pair created with
// its MACs (the host end up) + the host end read back, then the pod side's and the host side's requests,
// each side in one sendmsg and the two sides at once.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { Netlink, linkFrom, requests } from './netlink/netlink.js';
import type { Link } from './netlink/messages.js';
import { IPV4_DEVCONF, NUD, RT_SCOPE } from './netlink/constants.js';
import { NetlinkError, isErrno, type NlRequest } from './netlink/socket.js';
import type { NlMessage } from './netlink/wire.js';
import { readSysctl, writeSysctls } from './sysctl.js';
import { RTPROT_TABBY, WORKLOAD_GATEWAY_V4, WORKLOAD_GATEWAY_V6, WORKLOAD_HOST_MAC, WORKLOAD_RETIRED_GROUP } from './ownership.js';
import type { VethReaper } from './workload-reaper.js';
import { parseIp, formatIp } from '../common/ip.js';

export interface WorkloadOptions {
  hostIfName: string;
  /** the pod's netns (/var/run/netns/…, /proc/<pid>/ns/net) */
  containerNetnsPath: string;
  containerIfName?: string;
  /** the pod's IPv4 address ("10.65.0.5"; a "/32" suffix is accepted) */
  ipv4?: string;
  ipv6?: string;
  mtu?: number;
  /** where the host side lives; default: the caller's netns (a lab node passes its netns) */
  hostNetnsPath?: string;
}

export interface WiredWorkload {
  hostIfName: string;
  hostIfIndex: number;
  hostMac: string;
  containerIfName: string;
  containerIfIndex: number;
  containerMac: string;
}

export interface UnwireOptions {
  hostIfName: string;
  containerNetnsPath?: string;
  containerIfName?: string;
  hostNetnsPath?: string;
  /** also remove host routes to these addresses if they linger (they normally go with the link) */
  ipv4?: string;
  ipv6?: string;
}

const bareIp = (s: string | undefined): string | undefined => (s ? formatIp(parseIp(s.split('/')[0]!)) : undefined);

function hostSysctls(ifName: string, v4: boolean, v6: boolean): [string, number][] {
  const out: [string, number][] = [];
  if (v4) {
    out.push(
      [`net/ipv4/conf/${ifName}/proxy_arp`, 1],
      [`net/ipv4/neigh/${ifName}/proxy_delay`, 0],
      [`net/ipv4/conf/${ifName}/route_localnet`, 1],
      [`net/ipv4/conf/${ifName}/forwarding`, 1],
    );
  }
  if (v6) {
    out.push(
      [`net/ipv6/conf/${ifName}/disable_ipv6`, 0],
      [`net/ipv6/conf/${ifName}/proxy_ndp`, 1],
      [`net/ipv6/conf/${ifName}/accept_ra`, 0],
      [`net/ipv6/conf/${ifName}/forwarding`, 1],
    );
  }
  return out;
}

/** hostSysctls' IPv4 part as netlink sets it (IFLA_INET_CONF; proxy_delay goes to the neighbour table). */
const HOST_INET_CONF = [
  [IPV4_DEVCONF.PROXY_ARP, 1],
  [IPV4_DEVCONF.ROUTE_LOCALNET, 1],
  [IPV4_DEVCONF.FORWARDING, 1],
] as const;

function containerSysctls(ifName: string): [string, number][] {
  return [
    ['net/ipv6/conf/all/disable_ipv6', 0],
    ['net/ipv6/conf/default/disable_ipv6', 0],
    [`net/ipv6/conf/${ifName}/disable_ipv6`, 0],
    [`net/ipv6/conf/${ifName}/accept_dad`, 0],
  ];
}

/** veth pair check: each end's IFLA_LINK names the other's index. A pair a DEL retired (it waits for
 *  its batch deletion, workload-reaper.ts) is never ours again: a re-ADD replaces it. */
function isOurPair(host: Link | undefined, cont: Link | undefined): boolean {
  return (
    !!host &&
    !!cont &&
    host.kind === 'veth' &&
    cont.kind === 'veth' &&
    host.link === cont.index &&
    cont.link === host.index &&
    host.group !== WORKLOAD_RETIRED_GROUP
  );
}

/** The pod side's MAC: random, locally administered, unicast (what the kernel would pick; chosen here so
 *  the host's neighbour entry for the pod needs no read of the pod side). */
function podMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The kernel's first failure among a pipeline's answers (the request names the step), else nothing. */
function firstFailure(results: readonly (NlMessage[] | NetlinkError)[]): void {
  const failed = results.find((r) => r instanceof NetlinkError);
  if (failed) throw failed;
}

interface Pair {
  host: { index: number; mac: string; up: boolean };
  cont: { index: number; mac: string; up: boolean };
  /** made by this call: no addresses yet, and the MACs above are final */
  fresh: boolean;
}

/** Most ADDs find neither end: create the pair outright — the host end up, its MAC fixed and the pod
 *  side's chosen here — and read the host end back in the same sendmsg (its index, and its peer's index
 *  in the pod's netns: IFLA_LINK). The pod end cannot be created up (veth opens it before it is paired:
 *  ENOTCONN); the pod side's requests bring it up. Undefined when a name is taken (EEXIST): the caller
 *  converges. */
async function createPair(host: Netlink, o: WorkloadOptions, ctrIf: string): Promise<Pair | undefined> {
  const mac = podMac();
  const fd = fs.openSync(o.containerNetnsPath, 'r');
  let results: (NlMessage[] | NetlinkError)[];
  try {
    results = await host.pipeline([
      requests.createLink({
        name: o.hostIfName,
        mtu: o.mtu,
        mac: WORKLOAD_HOST_MAC,
        up: true,
        info: { kind: 'veth', peer: { name: ctrIf, mtu: o.mtu, mac, netnsFd: fd } },
      }),
      requests.getLink(o.hostIfName),
    ]);
  } finally {
    fs.closeSync(fd);
  }
  const [created, read] = results;
  if (created instanceof NetlinkError) {
    if (isErrno(created, 'EEXIST')) return undefined;
    throw created;
  }
  const h = linkFrom(read!);
  if (!h || h.link === undefined) throw new NetlinkError(19 /* ENODEV */, `get link ${o.hostIfName}`, 'the veth just created is gone');
  return { host: { index: h.index, mac: h.mac, up: h.up }, cont: { index: h.link, mac, up: false }, fresh: true };
}

/** A retried ADD (or leftovers): keep our pair when both ends are there, else start from scratch. */
async function convergePair(host: Netlink, cont: Netlink, o: WorkloadOptions, ctrIf: string): Promise<Pair> {
  let [hostLink, contLink] = await Promise.all([host.getLink(o.hostIfName), cont.getLink(ctrIf)]);
  let fresh = false;
  if (!isOurPair(hostLink, contLink)) {
    // Leftovers of an earlier attempt (or a foreign link with our name): start from scratch.
    if (hostLink) await host.deleteLink(hostLink.index);
    if (contLink) await cont.deleteLink(contLink.index);
    await host.createVeth({
      name: o.hostIfName,
      mtu: o.mtu,
      mac: WORKLOAD_HOST_MAC,
      peer: { name: ctrIf, mtu: o.mtu, netnsPath: o.containerNetnsPath },
    });
    [hostLink, contLink] = await Promise.all([host.mustGetLink(o.hostIfName), cont.mustGetLink(ctrIf)]);
    fresh = true;
  } else {
    if (o.mtu && hostLink!.mtu !== o.mtu) await host.setLinkMtu(hostLink!.index, o.mtu);
    if (o.mtu && contLink!.mtu !== o.mtu) await cont.setLinkMtu(contLink!.index, o.mtu);
    if (hostLink!.mac !== WORKLOAD_HOST_MAC) await host.setLinkMac(hostLink!.index, WORKLOAD_HOST_MAC);
  }
  const h = hostLink!;
  const c = contLink!;
  return { host: { index: h.index, mac: h.mac, up: h.up }, cont: { index: c.index, mac: c.mac, up: c.up }, fresh };
}

export async function wireWorkload(o: WorkloadOptions): Promise<WiredWorkload> {
  const ctrIf = o.containerIfName ?? 'eth0';
  const ip4 = bareIp(o.ipv4);
  const ip6 = bareIp(o.ipv6);
  if (!ip4 && !ip6) throw new TypeError('wireWorkload: an ipv4 or ipv6 address is required');
  // Off the event loop: the kernel's work for each request (a veth creation holds RTNL for a while) runs
  // on the addon's netlink threads, so the agent's other ADDs, IPAM and policy go on meanwhile.
  const host = new Netlink({ netnsPath: o.hostNetnsPath, offLoop: true });
  let cont: Netlink | undefined;
  try {
    cont = new Netlink({ netnsPath: o.containerNetnsPath, offLoop: true });
    const pair = (await createPair(host, o, ctrIf)) ?? (await convergePair(host, cont, o, ctrIf));
    const { host: h, cont: c, fresh } = pair;

    // The host side's IPv4 settings go with its netlink requests below; IPv6 has no netlink form for them.
    if (ip6) writeSysctls(hostSysctls(o.hostIfName, false, true), o.hostNetnsPath);
    if (ip6) writeSysctls(containerSysctls(ctrIf), o.containerNetnsPath);

    // Pod side: exactly our addresses on eth0 (a retried ADD with another IP drops the old one).
    const want = new Set([ip4 && `${ip4}/32`, ip6 && `${ip6}/128`].filter(Boolean) as string[]);
    const stale = fresh
      ? []
      : (await cont.listAddresses()).filter(
          (a) => a.index === c.index && a.scope !== RT_SCOPE.LINK && !want.has(`${a.address}/${a.prefixLen}`),
        );
    for (const a of stale) await cont.deleteAddress(c.index, a.address, a.prefixLen);
    // Each side's requests in one sendmsg (the kernel runs them in order), the two sides at once.
    const podSide: NlRequest[] = [];
    if (!c.up) podSide.push(requests.setLink({ index: c.index, up: true }));
    if (ip4) {
      podSide.push(
        requests.addAddress(c.index, ip4, 32),
        requests.replaceRoute({ dst: `${WORKLOAD_GATEWAY_V4}/32`, oif: c.index, scope: RT_SCOPE.LINK }),
        requests.replaceRoute({ dst: '0.0.0.0/0', gateway: WORKLOAD_GATEWAY_V4, oif: c.index }),
      );
    }
    if (ip6) {
      podSide.push(
        requests.addAddress(c.index, ip6, 128),
        requests.replaceRoute({ dst: '::/0', gateway: WORKLOAD_GATEWAY_V6, oif: c.index }),
      );
    }
    // The gateway resolves without ARP/NDP (see the top of the file).
    if (ip4) podSide.push(requests.setNeighbor({ family: 4, ifindex: c.index, dst: WORKLOAD_GATEWAY_V4, lladdr: WORKLOAD_HOST_MAC }));
    if (ip6) podSide.push(requests.setNeighbor({ family: 6, ifindex: c.index, dst: WORKLOAD_GATEWAY_V6, lladdr: WORKLOAD_HOST_MAC }));

    // Host side: the pod's address as a permanent neighbour (its MAC is known: no ARP/NDP, so a first
    // packet is never held for a resolution whose request went out before the pod could answer, which
    // costs the 1 s retransmit — Felix programs the same static entries), then the route to the pod.
    // Its IPv4 settings (hostSysctls) by netlink: a write to /proc/sys/…/forwarding spins (restarts the
    // write) while RTNL is taken, which 8 ADDs at once take all the time — it stopped the event loop.
    const hostSide: NlRequest[] = [];
    if (!h.up || ip4)
      hostSide.push(requests.setLink({ index: h.index, ...(h.up ? {} : { up: true }), ...(ip4 ? { inetConf: HOST_INET_CONF } : {}) }));
    if (ip4) hostSide.push(requests.neighProxyDelay(4, h.index, 0));
    if (ip4) hostSide.push(requests.setNeighbor({ family: 4, ifindex: h.index, dst: ip4, lladdr: c.mac }));
    if (ip6) hostSide.push(requests.setNeighbor({ family: 6, ifindex: h.index, dst: ip6, lladdr: c.mac }));
    if (ip4) hostSide.push(requests.replaceRoute({ dst: `${ip4}/32`, oif: h.index, scope: RT_SCOPE.LINK, protocol: RTPROT_TABBY }));
    if (ip6) hostSide.push(requests.replaceRoute({ dst: `${ip6}/128`, oif: h.index, scope: RT_SCOPE.LINK, protocol: RTPROT_TABBY }));
    const [podDone, hostDone] = await Promise.all([cont.pipeline(podSide), host.pipeline(hostSide)]);
    firstFailure(podDone);
    firstFailure(hostDone);

    const finalHost = fresh ? h : await host.mustGetLink(h.index);
    const finalCont = fresh ? c : await cont.mustGetLink(c.index);
    return {
      hostIfName: o.hostIfName,
      hostIfIndex: h.index,
      hostMac: finalHost.mac,
      containerIfName: ctrIf,
      containerIfIndex: c.index,
      containerMac: finalCont.mac,
    };
  } finally {
    host.close();
    cont?.close();
  }
}

/** Remove the workload's wiring; true when something was removed. Never fails on what is already gone.
 *  With a reaper, the veth is retired (routes to the pod deleted now, the pair deleted in its batch). */
export async function unwireWorkload(o: UnwireOptions, reaper?: VethReaper): Promise<boolean> {
  if (reaper) {
    const dsts = [bareIp(o.ipv4), bareIp(o.ipv6)].filter((a): a is string => !!a).map((a) => `${a}/${a.includes(':') ? 128 : 32}`);
    if (await reaper.retire(o.hostIfName, dsts)) return true;
    // No host veth: a half-done ADD or a repeated DEL — clean whatever is left the one-by-one way.
  }
  let removed = false;
  const host = new Netlink({ netnsPath: o.hostNetnsPath, offLoop: true });
  try {
    // Deleting one end of a veth deletes the pair; routes and neighbours via it go with it.
    if (await host.deleteLink(o.hostIfName)) removed = true;
    const ip4 = bareIp(o.ipv4);
    const ip6 = bareIp(o.ipv6);
    for (const dst of [ip4 && `${ip4}/32`, ip6 && `${ip6}/128`]) {
      if (!dst) continue;
      for (const r of await host.listRoutes(dst.includes(':') ? 6 : 4)) {
        if (r.dst === dst && r.protocol === RTPROT_TABBY && r.type === 'unicast' && !r.gateway) {
          if (await host.deleteRoute(r)) removed = true;
        }
      }
    }
  } finally {
    host.close();
  }
  if (o.containerNetnsPath) {
    let cont: Netlink | undefined;
    try {
      cont = new Netlink({ netnsPath: o.containerNetnsPath, offLoop: true });
    } catch (e) {
      // The pod's netns is already gone: nothing left in it.
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
    if (cont) {
      try {
        if (await cont.deleteLink(o.containerIfName ?? 'eth0')) removed = true;
      } catch (e) {
        if (!isErrno(e, 'EOPNOTSUPP')) throw e;
      } finally {
        cont.close();
      }
    }
  }
  return removed;
}

/** Every way the kernel differs from a wired workload; empty when all is as wireWorkload leaves it. */
export async function checkWorkload(o: WorkloadOptions): Promise<string[]> {
  const problems: string[] = [];
  const ctrIf = o.containerIfName ?? 'eth0';
  const ip4 = bareIp(o.ipv4);
  const ip6 = bareIp(o.ipv6);
  const host = new Netlink({ netnsPath: o.hostNetnsPath, offLoop: true });
  let cont: Netlink | undefined;
  try {
    cont = new Netlink({ netnsPath: o.containerNetnsPath, offLoop: true });
    const h = await host.getLink(o.hostIfName);
    const c = await cont.getLink(ctrIf);
    if (!h) problems.push(`host interface ${o.hostIfName} is missing`);
    if (!c) problems.push(`container interface ${ctrIf} is missing`);
    if (!h || !c) return problems;
    if (!isOurPair(h, c)) problems.push(`${o.hostIfName} and ${ctrIf} are not the two ends of one veth`);
    if (h.group === WORKLOAD_RETIRED_GROUP) problems.push(`${o.hostIfName} was retired by a DEL and waits for deletion`);
    if (!h.up) problems.push(`${o.hostIfName} is down`);
    if (!c.up) problems.push(`${ctrIf} is down`);
    if (h.mac !== WORKLOAD_HOST_MAC) problems.push(`${o.hostIfName} has MAC ${h.mac}, want ${WORKLOAD_HOST_MAC}`);
    if (o.mtu && h.mtu !== o.mtu) problems.push(`${o.hostIfName} has MTU ${h.mtu}, want ${o.mtu}`);
    if (o.mtu && c.mtu !== o.mtu) problems.push(`${ctrIf} has MTU ${c.mtu}, want ${o.mtu}`);
    for (const [key, value] of hostSysctls(o.hostIfName, !!ip4, !!ip6)) {
      const got = readSysctl(key, o.hostNetnsPath);
      if (got !== String(value)) problems.push(`sysctl ${key} is ${got ?? 'missing'}, want ${value}`);
    }
    const addrs = (await cont.listAddresses()).filter((a) => a.index === c.index);
    const hostRoutes = await host.listRoutes();
    const contRoutes = await cont.listRoutes();
    const hasRoute = (routes: typeof hostRoutes, dst: string, oif: number, gateway?: string): boolean =>
      routes.some((r) => r.dst === dst && r.oif === oif && r.type === 'unicast' && (gateway ? r.gateway === gateway : !r.gateway));
    const neighs = await cont.listNeighbors(undefined, c.index);
    const gatewayNeigh = (family: 4 | 6, dst: string): void => {
      if (!neighs.some((n) => n.family === family && n.dst === dst && n.lladdr === WORKLOAD_HOST_MAC && (n.state & NUD.PERMANENT) !== 0)) {
        problems.push(`container lacks neighbour ${dst} lladdr ${WORKLOAD_HOST_MAC} permanent on ${ctrIf}`);
      }
    };
    const podNeigh = async (family: 4 | 6, dst: string): Promise<void> => {
      const hn = await host.listNeighbors(family, h.index);
      if (!hn.some((n) => n.dst === dst && n.lladdr === c.mac && (n.state & NUD.PERMANENT) !== 0)) {
        problems.push(`host lacks neighbour ${dst} lladdr ${c.mac} permanent on ${o.hostIfName}`);
      }
    };
    if (ip4) {
      if (!addrs.some((a) => a.address === ip4 && a.prefixLen === 32)) problems.push(`${ctrIf} lacks ${ip4}/32`);
      if (!hasRoute(contRoutes, `${WORKLOAD_GATEWAY_V4}/32`, c.index))
        problems.push(`container lacks route ${WORKLOAD_GATEWAY_V4} dev ${ctrIf} scope link`);
      if (!hasRoute(contRoutes, '0.0.0.0/0', c.index, WORKLOAD_GATEWAY_V4))
        problems.push(`container lacks default via ${WORKLOAD_GATEWAY_V4}`);
      gatewayNeigh(4, WORKLOAD_GATEWAY_V4);
      if (!hasRoute(hostRoutes, `${ip4}/32`, h.index)) problems.push(`host lacks route ${ip4}/32 dev ${o.hostIfName}`);
      await podNeigh(4, ip4);
    }
    if (ip6) {
      if (!addrs.some((a) => a.address === ip6 && a.prefixLen === 128)) problems.push(`${ctrIf} lacks ${ip6}/128`);
      if (!hasRoute(contRoutes, '::/0', c.index, WORKLOAD_GATEWAY_V6)) problems.push(`container lacks default via ${WORKLOAD_GATEWAY_V6}`);
      gatewayNeigh(6, WORKLOAD_GATEWAY_V6);
      if (!hasRoute(hostRoutes, `${ip6}/128`, h.index)) problems.push(`host lacks route ${ip6}/128 dev ${o.hostIfName}`);
      await podNeigh(6, ip6);
    }
    return problems;
  } finally {
    host.close();
    cont?.close();
  }
}
