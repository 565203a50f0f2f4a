// Netlink: the typed rtnetlink handle the rest of the dataplane uses — links, addresses, routes,
// neighbours, bridge FDB entries, and event subscriptions. One handle talks to one network namespace
// (the one it was opened in). Interfaces by index; names are resolved with getLink().
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { AF, IFLA, NLM_F, RTM, RTNLGRP, NUD, NTF } from './constants.js';
import {
  decodeAddr,
  decodeLink,
  decodeNeigh,
  decodeRoute,
  encodeAddr,
  encodeAddrDump,
  encodeLinkIndex,
  encodeNeigh,
  encodeNeighDump,
  encodeNeighTblParms,
  encodeNewLink,
  encodeRoute,
  encodeRouteTo,
  encodeRouteToV4,
  encodeRouteDump,
  encodeSetLink,
  type Address,
  type Family,
  type KernelRoute,
  type Link,
  type Neighbor,
  type NewLinkRequest,
  type SetLinkRequest,
} from './messages.js';
import { NetlinkError, NlSocket, isErrno, type BatchSource, type NlRequest } from './socket.js';
import { RouteScanner, copyRoute } from './route-scan.js';
import type { NlMessage } from './wire.js';

export interface NetlinkOptions {
  /** Open the handle inside this netns (e.g. /var/run/netns/pod1). Default: the caller's netns. */
  netnsPath?: string;
  timeoutMs?: number;
  /** requests sent and answered on the addon's netlink threads: the event loop runs on meanwhile */
  offLoop?: boolean;
}

export type RouteOp = { op: 'add' | 'replace' | 'del'; route: Partial<KernelRoute> & { dst: string } };

export type NetlinkEvent =
  | { kind: 'link'; type: 'new' | 'del'; link: Link }
  | { kind: 'address'; type: 'new' | 'del'; address: Address }
  | { kind: 'route'; type: 'new' | 'del'; route: KernelRoute }
  | { kind: 'neigh'; type: 'new' | 'del'; neigh: Neighbor };

export type EventKind = 'link' | 'address' | 'route' | 'neigh';

/** A subscription: emits 'event' (NetlinkEvent) and 'overrun' (events were lost: resync). */
export class NetlinkSubscription extends EventEmitter {
  constructor(private readonly sock: NlSocket) {
    super();
  }
  close(): void {
    this.sock.close();
  }
  /** Stop receiving (e.g. around a bulk change of our own that would flood the queue). */
  pause(): void {
    this.sock.setMembership(false);
  }
  /** Receive again; whatever happened meanwhile was not seen: resync. */
  resume(): void {
    this.sock.setMembership(true);
  }
}

type NeighborRequest = Omit<Neighbor, 'state' | 'flags'> & { state?: number; flags?: number };

/** Requests as values, for Netlink.pipeline (several in one sendmsg); the methods send the same singly. */
export const requests = {
  createLink: (req: NewLinkRequest): NlRequest => ({
    type: RTM.NEWLINK,
    flags: NLM_F.CREATE | NLM_F.EXCL,
    body: (w) => encodeNewLink(w, req),
    op: `create link ${req.name}`,
  }),
  getLink: (nameOrIndex: string | number): NlRequest => ({
    type: RTM.GETLINK,
    flags: 0,
    body: (w) => (typeof nameOrIndex === 'number' ? encodeLinkIndex(w, nameOrIndex) : encodeLinkIndex(w, 0, nameOrIndex)),
    op: `get link ${nameOrIndex}`,
  }),
  setLink: (req: SetLinkRequest): NlRequest => ({
    type: RTM.NEWLINK,
    flags: 0,
    body: (w) => encodeSetLink(w, req),
    op: `set link ${req.index}`,
  }),
  addAddress: (
    index: number,
    address: string,
    prefixLen: number,
    opts: { scope?: number; replace?: boolean; peer?: string } = {},
  ): NlRequest => ({
    type: RTM.NEWADDR,
    flags: NLM_F.CREATE | (opts.replace === false ? NLM_F.EXCL : NLM_F.REPLACE),
    body: (w) => encodeAddr(w, { index, address, prefixLen, scope: opts.scope, peer: opts.peer }),
    op: `add address ${address}/${prefixLen} on ${index}`,
  }),
  replaceRoute: (route: Partial<KernelRoute> & { dst: string }): NlRequest => ({
    type: RTM.NEWROUTE,
    flags: NLM_F.CREATE | NLM_F.REPLACE,
    body: (w) => encodeRoute(w, route),
    op: `replace route ${route.dst}`,
  }),
  /** Add or replace a neighbour (permanent by default): ARP/NDP entry (family 4/6) or FDB entry ('bridge'). */
  setNeighbor: (n: NeighborRequest): NlRequest => {
    const full: Neighbor = { ...n, state: n.state ?? NUD.PERMANENT, flags: n.flags ?? (n.family === 'bridge' ? NTF.SELF : 0) };
    return {
      type: RTM.NEWNEIGH,
      flags: NLM_F.CREATE | NLM_F.REPLACE,
      body: (w) => encodeNeigh(w, full),
      op: `set neighbour ${n.dst ?? n.lladdr} on ${n.ifindex}`,
    };
  },
  deleteRoute: (route: Partial<KernelRoute> & { dst: string }): NlRequest => ({
    type: RTM.DELROUTE,
    flags: 0,
    body: (w) => encodeRoute(w, route, true),
    op: `delete route ${route.dst}`,
  }),
  /** An interface's proxy delay in its neighbour table (net/ipv4/neigh/<if>/proxy_delay, in ms). */
  neighProxyDelay: (family: Family, ifindex: number, proxyDelayMs: number): NlRequest => ({
    type: RTM.SETNEIGHTBL,
    flags: 0,
    body: (w) => encodeNeighTblParms(w, { family, ifindex, proxyDelayMs }),
    op: `set neighbour table parameters on ${ifindex}`,
  }),
};

/** The link a getLink request of a pipeline answered; undefined when there is none, else its error. */
export function linkFrom(res: NlMessage[] | NetlinkError): Link | undefined {
  if (res instanceof NetlinkError) {
    if (isErrno(res, 'ENODEV', 'ENOENT')) return undefined;
    throw res;
  }
  const m = res.find((p) => p.type === RTM.NEWLINK);
  return m ? decodeLink(m.data) : undefined;
}

export class Netlink {
  readonly sock: NlSocket;
  readonly netnsPath?: string;
  private timeoutMs: number | undefined;

  constructor(opts: NetlinkOptions = {}) {
    this.netnsPath = opts.netnsPath;
    this.timeoutMs = opts.timeoutMs;
    this.sock = new NlSocket({ netnsPath: opts.netnsPath, timeoutMs: opts.timeoutMs, offLoop: opts.offLoop });
  }

  close(): void {
    this.sock.close();
  }

  private async send(r: NlRequest): Promise<NlMessage[]> {
    return this.sock.request(r.type, r.flags, r.body, r.op);
  }

  /** Several requests (built with `requests`) in one sendmsg, run by the kernel in order: each one's
   *  replies or NetlinkError (a failed one does not stop the rest). */
  pipeline(reqs: readonly NlRequest[]): Promise<(NlMessage[] | NetlinkError)[]> {
    return this.sock.pipeline(reqs);
  }

  // ------------------------------------------------------------ links

  async listLinks(): Promise<Link[]> {
    const parts = await this.sock.dump(RTM.GETLINK, (w) => encodeLinkIndex(w, 0), 'list links');
    return parts.filter((m) => m.type === RTM.NEWLINK).map((m) => decodeLink(m.data));
  }

  /** The link by name or index; undefined when there is none. */
  async getLink(nameOrIndex: string | number): Promise<Link | undefined> {
    const r = requests.getLink(nameOrIndex);
    return linkFrom(
      await this.sock.request(r.type, r.flags, r.body, r.op).catch((e: unknown) => (e instanceof NetlinkError ? e : Promise.reject(e))),
    );
  }

  /** The link, or a NetlinkError ENODEV naming it. */
  async mustGetLink(nameOrIndex: string | number): Promise<Link> {
    const l = await this.getLink(nameOrIndex);
    if (!l) throw new NetlinkError(19 /* ENODEV */, `get link ${nameOrIndex}`);
    return l;
  }

  /** Create a link (NLM_F_CREATE|NLM_F_EXCL): EEXIST when the name is taken. */
  async createLink(req: NewLinkRequest): Promise<void> {
    await this.send(requests.createLink(req));
  }

  /**
   * A veth pair: `name` here, `peer.name` in the netns at `peer.netnsPath` (or here). The peer is
   * created directly in its netns (IFLA_NET_NS_FD), so a name clash in the host netns is impossible.
   */
  async createVeth(req: {
    name: string;
    mtu?: number;
    mac?: string;
    peer: { name: string; mtu?: number; mac?: string; netnsPath?: string };
  }): Promise<void> {
    let fd: number | undefined;
    try {
      if (req.peer.netnsPath) fd = fs.openSync(req.peer.netnsPath, 'r');
      await this.createLink({
        name: req.name,
        mtu: req.mtu,
        mac: req.mac,
        info: { kind: 'veth', peer: { name: req.peer.name, mtu: req.peer.mtu, mac: req.peer.mac, netnsFd: fd } },
      });
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  async deleteLink(nameOrIndex: string | number): Promise<boolean> {
    try {
      await this.sock.request(
        RTM.DELLINK,
        0,
        (w) => (typeof nameOrIndex === 'number' ? encodeLinkIndex(w, nameOrIndex) : encodeLinkIndex(w, 0, nameOrIndex)),
        `delete link ${nameOrIndex}`,
      );
      return true;
    } catch (e) {
      if (isErrno(e, 'ENODEV', 'ENOENT')) return false;
      throw e;
    }
  }

  /** Delete every link of a link group in one request (one unregister_netdevice_many in the kernel:
   *  one RCU grace period for all of them); false when the group has none. */
  async deleteLinkGroup(group: number): Promise<boolean> {
    try {
      await this.sock.request(
        RTM.DELLINK,
        0,
        (w) => {
          encodeLinkIndex(w, 0);
          w.attrU32(IFLA.GROUP, group);
        },
        `delete link group ${group}`,
      );
      return true;
    } catch (e) {
      if (isErrno(e, 'ENODEV', 'ENOENT')) return false;
      throw e;
    }
  }

  /** Change a link: up/down, MTU, MAC, name, master, group (RTM_NEWLINK on an index, or on a name
   *  with index 0). */
  async setLink(req: SetLinkRequest): Promise<void> {
    await this.send(requests.setLink(req));
  }

  async setLinkUp(index: number, up = true): Promise<void> {
    await this.setLink({ index, up });
  }
  async setLinkMtu(index: number, mtu: number): Promise<void> {
    await this.setLink({ index, mtu });
  }
  async setLinkMac(index: number, mac: string): Promise<void> {
    await this.setLink({ index, mac });
  }

  /** Move a link into the netns at `netnsPath` (optionally renaming it on the way). */
  async moveLink(index: number, netnsPath: string, newName?: string): Promise<void> {
    const fd = fs.openSync(netnsPath, 'r');
    try {
      await this.setLink({ index, netnsFd: fd, name: newName });
    } finally {
      fs.closeSync(fd);
    }
  }

  // ------------------------------------------------------------ addresses

  async listAddresses(family?: Family): Promise<Address[]> {
    const parts = await this.sock.dump(RTM.GETADDR, (w) => encodeAddrDump(w, family), 'list addresses');
    return parts.filter((m) => m.type === RTM.NEWADDR).map((m) => decodeAddr(m.data));
  }

  /** Add an address ("10.0.0.1", prefixLen 32) to a link; replace=true makes it idempotent. */
  async addAddress(
    index: number,
    address: string,
    prefixLen: number,
    opts: { scope?: number; replace?: boolean; peer?: string } = {},
  ): Promise<void> {
    await this.send(requests.addAddress(index, address, prefixLen, opts));
  }

  async deleteAddress(index: number, address: string, prefixLen: number): Promise<boolean> {
    try {
      await this.sock.request(
        RTM.DELADDR,
        0,
        (w) => encodeAddr(w, { index, address, prefixLen }),
        `delete address ${address}/${prefixLen}`,
      );
      return true;
    } catch (e) {
      if (isErrno(e, 'EADDRNOTAVAIL', 'ENODEV', 'ENOENT')) return false;
      throw e;
    }
  }

  // ------------------------------------------------------------ routes

  /** All routes of a family (both by default), every table. */
  async listRoutes(family?: Family): Promise<KernelRoute[]> {
    let out: KernelRoute[] = [];
    // decoded in place as the parts arrive: the raw dump of a big table is never held whole
    const scan = new RouteScanner();
    await this.sock.dumpRaw(
      RTM.GETROUTE,
      (w) => encodeRouteDump(w, family),
      'list routes',
      () => {
        out = [];
        return (buf, off, end, type) => {
          if (type === RTM.NEWROUTE) out.push(copyRoute(scan.scan(buf, off, end)));
        };
      },
    );
    return out;
  }

  /**
   * The routes as the dump delivers them, without an object per route: each is decoded into one object
   * that is reused for the next (copyRoute() one to keep it). `start()` before each attempt (an
   * interrupted dump starts over) returns that attempt's consumer. `stop()`, asked after each datagram,
   * ends the dump early when true (rejects with ECANCELED). On a socket of its own, closed at the end:
   * a dump stopped early ends in the kernel at once instead of being read to its end.
   */
  async listRoutesEach(family: Family | undefined, start: () => (r: KernelRoute) => void, stop?: () => boolean): Promise<void> {
    const sock = new NlSocket({ netnsPath: this.netnsPath, timeoutMs: this.timeoutMs });
    const scan = new RouteScanner();
    try {
      await sock.dumpRaw(
        RTM.GETROUTE,
        (w) => encodeRouteDump(w, family),
        'list routes',
        () => {
          const each = start();
          return (buf, off, end, type) => {
            if (type === RTM.NEWROUTE) each(scan.scan(buf, off, end));
          };
        },
        stop,
      );
    } finally {
      sock.close();
    }
  }

  async addRoute(route: Partial<KernelRoute> & { dst: string }): Promise<void> {
    await this.sock.request(RTM.NEWROUTE, NLM_F.CREATE | NLM_F.EXCL, (w) => encodeRoute(w, route), `add route ${route.dst}`);
  }

  async replaceRoute(route: Partial<KernelRoute> & { dst: string }): Promise<void> {
    await this.send(requests.replaceRoute(route));
  }

  /** Delete a route; false when it was not there (ESRCH). */
  async deleteRoute(route: Partial<KernelRoute> & { dst: string }): Promise<boolean> {
    try {
      await this.send(requests.deleteRoute(route));
      return true;
    } catch (e) {
      if (isErrno(e, 'ESRCH', 'ENOENT')) return false;
      throw e;
    }
  }

  /** Many route changes pipelined (see NlSocket.batch); returns the failed ones. */
  async routeBatch(ops: readonly RouteOp[]): Promise<{ op: RouteOp; error: NetlinkError }[]> {
    const items: BatchSource = {
      count: ops.length,
      type: (i) => (ops[i]!.op === 'del' ? RTM.DELROUTE : RTM.NEWROUTE),
      flags: (i) => {
        const o = ops[i]!.op;
        return o === 'add' ? NLM_F.CREATE | NLM_F.EXCL : o === 'replace' ? NLM_F.CREATE | NLM_F.REPLACE : 0;
      },
      body: (i, w) => encodeRoute(w, ops[i]!.route, ops[i]!.op === 'del'),
    };
    const failed = await this.sock.batch(items, 'route batch');
    return failed.map((f) => ({ op: ops[f.index]!, error: f.error }));
  }

  /** routeBatch without an op object per route: one op for all, route i as a template and its destination
   *  apart (the route reconciler's desired routes are templates shared by many destinations). */
  async routeBatchTo(
    op: 'replace' | 'del',
    count: number,
    route: (i: number) => Partial<KernelRoute>,
    dst: (i: number) => string,
    dst4?: { len(i: number): number; net(i: number): number },
  ): Promise<{ index: number; error: NetlinkError }[]> {
    const type = op === 'del' ? RTM.DELROUTE : RTM.NEWROUTE;
    const flags = op === 'del' ? 0 : NLM_F.CREATE | NLM_F.REPLACE;
    const del = op === 'del';
    const items: BatchSource = {
      count,
      type: () => type,
      flags: () => flags,
      // an IPv4 destination as numbers when dst4 has it (len ≥ 0), else as text
      body: dst4
        ? (i, w) => {
            const len = dst4.len(i);
            if (len >= 0) encodeRouteToV4(w, route(i), dst4.net(i), len, del);
            else encodeRouteTo(w, route(i), dst(i), del);
          }
        : (i, w) => encodeRouteTo(w, route(i), dst(i), del),
    };
    return this.sock.batch(items, 'route batch');
  }

  // ------------------------------------------------------------ neighbours and FDB

  async listNeighbors(family?: Family | 'bridge', ifindex = 0): Promise<Neighbor[]> {
    const parts = await this.sock.dump(RTM.GETNEIGH, (w) => encodeNeighDump(w, family, ifindex), 'list neighbours');
    const out = parts.filter((m) => m.type === RTM.NEWNEIGH).map((m) => decodeNeigh(m.data));
    return ifindex ? out.filter((n) => n.ifindex === ifindex) : out;
  }

  /** Add or replace a neighbour (permanent by default): ARP/NDP entry (family 4/6) or FDB entry ('bridge'). */
  async setNeighbor(n: NeighborRequest): Promise<void> {
    await this.send(requests.setNeighbor(n));
  }

  async deleteNeighbor(n: Omit<Neighbor, 'state' | 'flags'> & { state?: number; flags?: number }): Promise<boolean> {
    const full: Neighbor = { ...n, state: n.state ?? 0, flags: n.flags ?? (n.family === 'bridge' ? NTF.SELF : 0) };
    try {
      await this.sock.request(RTM.DELNEIGH, 0, (w) => encodeNeigh(w, full), `delete neighbour ${n.dst ?? n.lladdr} on ${n.ifindex}`);
      return true;
    } catch (e) {
      if (isErrno(e, 'ENOENT', 'ESRCH', 'ENODEV')) return false;
      throw e;
    }
  }

  /** FDB entry: frames for `mac` go to VTEP `dst` (vxlan) — `bridge fdb replace <mac> dev <if> dst <ip> self permanent`. */
  async setFdb(ifindex: number, mac: string, dst: string): Promise<void> {
    await this.setNeighbor({ family: 'bridge', ifindex, lladdr: mac, dst });
  }

  async deleteFdb(ifindex: number, mac: string, dst?: string): Promise<boolean> {
    return this.deleteNeighbor({ family: 'bridge', ifindex, lladdr: mac, dst });
  }

  // ------------------------------------------------------------ events

  /**
   * Subscribe to changes (a second socket in the same netns, joined to the kinds' multicast groups).
   * Close the subscription when done; it keeps the process alive while open.
   */
  /** Per-request timeout from now on (dumps: without a part arriving). */
  setTimeout(ms: number): void {
    this.timeoutMs = ms;
    this.sock.setTimeout(ms);
  }

  subscribe(kinds: readonly EventKind[], opts: { recvBufferBytes?: number } = {}): NetlinkSubscription {
    const groups: number[] = [];
    if (kinds.includes('link')) groups.push(RTNLGRP.LINK);
    if (kinds.includes('address')) groups.push(RTNLGRP.IPV4_IFADDR, RTNLGRP.IPV6_IFADDR);
    if (kinds.includes('route')) groups.push(RTNLGRP.IPV4_ROUTE, RTNLGRP.IPV6_ROUTE);
    if (kinds.includes('neigh')) groups.push(RTNLGRP.NEIGH);
    const sock = new NlSocket({ netnsPath: this.netnsPath, groups, ...opts });
    const sub = new NetlinkSubscription(sock);
    sock.onEvent = (m: NlMessage) => {
      const ev = decodeEvent(m);
      if (ev) sub.emit('event', ev);
    };
    sock.onOverrun = (e) => sub.emit('overrun', e);
    return sub;
  }
}

export function decodeEvent(m: NlMessage): NetlinkEvent | undefined {
  switch (m.type) {
    case RTM.NEWLINK:
    case RTM.DELLINK:
      return { kind: 'link', type: m.type === RTM.NEWLINK ? 'new' : 'del', link: decodeLink(m.data) };
    case RTM.NEWADDR:
    case RTM.DELADDR:
      return { kind: 'address', type: m.type === RTM.NEWADDR ? 'new' : 'del', address: decodeAddr(m.data) };
    case RTM.NEWROUTE:
    case RTM.DELROUTE:
      return { kind: 'route', type: m.type === RTM.NEWROUTE ? 'new' : 'del', route: decodeRoute(m.data) };
    case RTM.NEWNEIGH:
    case RTM.DELNEIGH:
      return { kind: 'neigh', type: m.type === RTM.NEWNEIGH ? 'new' : 'del', neigh: decodeNeigh(m.data) };
    default:
      return undefined;
  }
}

/** Open a typed rtnetlink handle (inside `netnsPath` when given). */
export async function openNetlink(opts: NetlinkOptions = {}): Promise<Netlink> {
  return new Netlink(opts);
}

export { AF };
