// rtnetlink message codecs: links (ifinfomsg), addresses (ifaddrmsg), routes (rtmsg), neighbours and
// bridge FDB entries (ndmsg). Pure: bytes in, typed values out and back; the socket is elsewhere.
import {
  AF,
  IFA,
  IFF,
  IFLA,
  IFLA_INET_CONF,
  IFLA_INFO,
  NDA,
  NDTA,
  NDTPA,
  RTA,
  RTN,
  RTNH_F,
  RT_SCOPE,
  RT_TABLE,
  RTPROT,
} from './constants.js';
import { parseIpv4Number } from '../../common/ip.js';
import { type NlWriter, attrMap, cString, forEachAttr, ipBytes, ipText, macBytes, macText } from './wire.js';
import { writeIfinfomsg, writeLinkAttrs, writeLinkInfo, type LinkInfo } from './linkinfo.js';

export type Family = 4 | 6;
export const afOf = (f: Family): number => (f === 4 ? AF.INET : AF.INET6);
export const familyOfAf = (af: number): Family => (af === AF.INET6 ? 6 : 4);
export const familyOfIp = (ip: string): Family => (ip.includes(':') ? 6 : 4);

// ---------------------------------------------------------------- links

export interface Link {
  index: number;
  name: string;
  /** ifi_flags (IFF_*) */
  flags: number;
  up: boolean;
  mtu: number;
  mac: string;
  /** IFLA_INFO_KIND ('veth', 'vxlan', 'ipip', 'bridge', …) when the link has one */
  kind?: string;
  /** IFLA_LINK: the peer's index for a veth (in the peer's netns) or the underlay of a tunnel */
  link?: number;
  master?: number;
  /** IFLA_LINK_NETNSID: the peer/underlay lives in another netns */
  linkNetnsId?: number;
  /** IFLA_INFO_DATA raw bytes (kind-specific) */
  infoData?: Buffer;
  /** IFLA_GROUP (0 = the default group) */
  group?: number;
}

export interface NewLinkRequest {
  name: string;
  mtu?: number;
  mac?: string;
  /** create the link directly in this netns (fd) */
  netnsFd?: number;
  info?: LinkInfo;
  up?: boolean;
}

export function encodeNewLink(w: NlWriter, req: NewLinkRequest): void {
  writeIfinfomsg(w, 0, req.up ? IFF.UP : 0, req.up ? IFF.UP : 0);
  writeLinkAttrs(w, req);
  if (req.info) writeLinkInfo(w, req.info);
}

export interface SetLinkRequest {
  index: number;
  up?: boolean;
  mtu?: number;
  mac?: string;
  name?: string;
  netnsFd?: number;
  master?: number;
  /** IFLA_GROUP */
  group?: number;
  /** IPv4 settings of the interface, [IPV4_DEVCONF id, value] (what net/ipv4/conf/<if>/* shows) */
  inetConf?: readonly (readonly [number, number])[];
}

export function encodeSetLink(w: NlWriter, req: SetLinkRequest): void {
  const change = req.up === undefined ? 0 : IFF.UP;
  writeIfinfomsg(w, req.index, req.up ? IFF.UP : 0, change);
  writeLinkAttrs(w, req);
  if (req.master !== undefined) w.attrU32(IFLA.MASTER, req.master);
  if (req.group !== undefined) w.attrU32(IFLA.GROUP, req.group);
  if (req.inetConf?.length) {
    const spec = w.beginAttr(IFLA.AF_SPEC);
    const inet = w.beginAttr(AF.INET);
    const conf = w.beginAttr(IFLA_INET_CONF);
    for (const [id, value] of req.inetConf) w.attrU32(id, value);
    w.endAttr(conf);
    w.endAttr(inet);
    w.endAttr(spec);
  }
}

export function encodeLinkIndex(w: NlWriter, index: number, name?: string): void {
  writeIfinfomsg(w, index);
  if (name !== undefined) w.attrString(IFLA.IFNAME, name);
}

export function decodeLink(data: Buffer): Link {
  const index = data.readInt32LE(4);
  const flags = data.readUInt32LE(8);
  const link: Link = { index, name: '', flags, up: (flags & IFF.UP) !== 0, mtu: 0, mac: '' };
  forEachAttr(data, 16, data.length, (t, o, l) => {
    const v = data.subarray(o, o + l);
    switch (t) {
      case IFLA.IFNAME:
        link.name = cString(v);
        break;
      case IFLA.MTU:
        link.mtu = v.readUInt32LE(0);
        break;
      case IFLA.ADDRESS:
        link.mac = macText(v);
        break;
      case IFLA.LINK:
        link.link = v.readUInt32LE(0);
        break;
      case IFLA.MASTER:
        link.master = v.readUInt32LE(0);
        break;
      case IFLA.LINK_NETNSID:
        link.linkNetnsId = v.readInt32LE(0);
        break;
      case IFLA.GROUP:
        link.group = v.readUInt32LE(0);
        break;
      case IFLA.LINKINFO: {
        const info = attrMap(data, o, o + l);
        const kind = info.get(IFLA_INFO.KIND);
        if (kind) link.kind = cString(kind);
        const d = info.get(IFLA_INFO.DATA);
        if (d) link.infoData = Buffer.from(d);
        break;
      }
    }
  });
  return link;
}

// ---------------------------------------------------------------- addresses

export interface Address {
  index: number;
  family: Family;
  address: string;
  prefixLen: number;
  scope: number;
  /** IFA_LOCAL when it differs from IFA_ADDRESS (point-to-point peers) */
  peer?: string;
  label?: string;
}

export function encodeAddr(w: NlWriter, a: { index: number; address: string; prefixLen: number; scope?: number; peer?: string }): void {
  const f = familyOfIp(a.address);
  w.u8(afOf(f));
  w.u8(a.prefixLen);
  w.u8(0);
  w.u8(a.scope ?? RT_SCOPE.UNIVERSE);
  w.u32(a.index);
  w.attrIp(IFA.LOCAL, a.address);
  w.attrIp(IFA.ADDRESS, a.peer ?? a.address);
}

export function encodeAddrDump(w: NlWriter, family?: Family): void {
  w.u8(family ? afOf(family) : AF.UNSPEC);
  w.u8(0);
  w.u8(0);
  w.u8(0);
  w.u32(0);
}

export function decodeAddr(data: Buffer): Address {
  const family = familyOfAf(data[0]!);
  const a: Address = { index: data.readUInt32LE(4), family, address: '', prefixLen: data[1]!, scope: data[3]! };
  let local: string | undefined, address: string | undefined;
  forEachAttr(data, 8, data.length, (t, o, l) => {
    if (t === IFA.LOCAL) local = ipText(data.subarray(o, o + l));
    else if (t === IFA.ADDRESS) address = ipText(data.subarray(o, o + l));
    else if (t === IFA.LABEL) a.label = cString(data.subarray(o, o + l));
  });
  a.address = local ?? address ?? '';
  if (local && address && local !== address) a.peer = address;
  return a;
}

// ---------------------------------------------------------------- routes

export type RouteType = 'unicast' | 'blackhole' | 'unreachable' | 'prohibit' | 'local' | 'broadcast' | 'multicast' | 'anycast' | 'other';
export const routeTypeNames: Record<number, RouteType> = {
  [RTN.UNICAST]: 'unicast',
  [RTN.BLACKHOLE]: 'blackhole',
  [RTN.UNREACHABLE]: 'unreachable',
  [RTN.PROHIBIT]: 'prohibit',
  [RTN.LOCAL]: 'local',
  [RTN.BROADCAST]: 'broadcast',
  [RTN.MULTICAST]: 'multicast',
  [RTN.ANYCAST]: 'anycast',
};
const routeTypeNumbers: Record<string, number> = {
  unicast: RTN.UNICAST,
  blackhole: RTN.BLACKHOLE,
  unreachable: RTN.UNREACHABLE,
  prohibit: RTN.PROHIBIT,
  local: RTN.LOCAL,
  broadcast: RTN.BROADCAST,
  multicast: RTN.MULTICAST,
  anycast: RTN.ANYCAST,
};

export interface NextHop {
  gateway?: string;
  oif?: number;
  onlink?: boolean;
  /** 1..256 (rtnh_hops + 1) */
  weight?: number;
}

/** A kernel route as rtnetlink describes it (interfaces by index). */
export interface KernelRoute {
  family: Family;
  /** destination prefix, "10.0.0.0/26" (default route: "0.0.0.0/0") */
  dst: string;
  table: number;
  protocol: number;
  scope: number;
  type: RouteType;
  oif?: number;
  gateway?: string;
  onlink?: boolean;
  priority?: number;
  prefsrc?: string;
  multipath?: NextHop[];
}

function splitCidr(dst: string): { ip: string; len: number; family: Family } {
  const slash = dst.indexOf('/');
  const ip = slash < 0 ? dst : dst.slice(0, slash);
  const family = familyOfIp(ip);
  const len = slash < 0 ? (family === 4 ? 32 : 128) : Number(dst.slice(slash + 1));
  return { ip, len, family };
}

/**
 * rtmsg + attributes for RTM_NEWROUTE, or for RTM_DELROUTE with `del`: then what is not given is a
 * wildcard (protocol 0, scope NOWHERE, type UNSPEC), as iproute2 does for `ip route del`.
 */
export function encodeRoute(w: NlWriter, r: Partial<KernelRoute> & { dst: string }, del = false): void {
  if (!encodeRoute4(w, r, del, r.dst)) encodeRouteAny(w, r, del);
}

/** encodeRoute with the destination given apart (a template route shared by many destinations). */
export function encodeRouteTo(w: NlWriter, r: Partial<KernelRoute>, dst: string, del = false): void {
  if (!encodeRoute4(w, r, del, dst)) encodeRouteAny(w, { ...r, dst }, del);
}

/** encodeRouteTo with an IPv4 destination as numbers (network, signed or not; length): no text per route. */
export function encodeRouteToV4(w: NlWriter, r: Partial<KernelRoute>, net: number, len: number, del = false): void {
  if (!encodeRoute4At(w, r, del, net >>> 0, len)) {
    const n = net >>> 0;
    encodeRouteAny(w, { ...r, dst: `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}` }, del);
  }
}

/** encodeRoute for every case (exported for the test that the bulk case's bytes are the same). */
export function encodeRouteAny(w: NlWriter, r: Partial<KernelRoute> & { dst: string }, del = false): void {
  const { ip, len, family } = splitCidr(r.dst);
  const type = r.type ? (routeTypeNumbers[r.type] ?? RTN.UNICAST) : del ? RTN.UNSPEC : RTN.UNICAST;
  const table = r.table ?? RT_TABLE.MAIN;
  w.u8(afOf(family));
  w.u8(len);
  w.u8(0);
  w.u8(0);
  w.u8(table < 256 ? table : RT_TABLE.UNSPEC);
  w.u8(r.protocol ?? (del ? RTPROT.UNSPEC : RTPROT.BOOT));
  w.u8(r.scope ?? (del ? RT_SCOPE.NOWHERE : type === RTN.UNICAST && !r.gateway && !r.multipath ? RT_SCOPE.LINK : RT_SCOPE.UNIVERSE));
  w.u8(type);
  w.u32(r.onlink ? RTNH_F.ONLINK : 0);
  if (table >= 256) w.attrU32(RTA.TABLE, table);
  if (len > 0 || ip !== (family === 4 ? '0.0.0.0' : '::')) w.attrIp(RTA.DST, ip);
  if (r.priority !== undefined) w.attrU32(RTA.PRIORITY, r.priority);
  if (r.prefsrc) w.attrIp(RTA.PREFSRC, r.prefsrc);
  if (r.gateway) w.attrIp(RTA.GATEWAY, r.gateway);
  if (r.oif !== undefined) w.attrU32(RTA.OIF, r.oif);
  if (r.multipath?.length) {
    const mp = w.beginAttr(RTA.MULTIPATH);
    for (const nh of r.multipath) {
      // struct rtnexthop { u16 len; u8 flags; u8 hops; i32 ifindex } + attrs
      w.pad();
      const start = w.off;
      w.u16(0);
      w.u8(nh.onlink ? RTNH_F.ONLINK : 0);
      w.u8((nh.weight ?? 1) - 1);
      w.i32(nh.oif ?? 0);
      if (nh.gateway) w.attrIp(RTA.GATEWAY, nh.gateway);
      w.buf.writeUInt16LE(w.off - start, start);
    }
    w.endAttr(mp);
  }
}

/** The address of the last prefix ipv4Prefix() read (a module slot: no object per call). */
let v4Dst = 0;
/** "a.b.c.d/len" (canonical, as the reconciler keys routes) → len, the address in v4Dst; -1: another form. */
function ipv4Prefix(dst: string): number {
  const slash = dst.indexOf('/');
  if (slash < 7 || slash > dst.length - 2 || dst.length - slash > 3) return -1;
  let len = 0;
  for (let i = slash + 1; i < dst.length; i++) {
    const c = dst.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    len = len * 10 + c;
  }
  if (len > 32) return -1;
  let v = 0,
    octet = 0,
    digits = 0,
    dots = 0;
  for (let i = 0; i < slash; i++) {
    const c = dst.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46 && digits && ++dots <= 3) {
      v = v * 256 + octet;
      octet = digits = 0;
    } else return -1;
  }
  if (dots !== 3 || !digits) return -1;
  v4Dst = v * 256 + octet;
  return len;
}

/** An 8-byte attribute holding a u32 (little-endian: host order, or big-endian: an IPv4 address). */
function attr32(b: Buffer, o: number, type: number, v: number, bigEndian: boolean): void {
  b[o] = 8;
  b[o + 1] = 0;
  b[o + 2] = type;
  b[o + 3] = 0;
  if (bigEndian) {
    b[o + 4] = v >>> 24;
    b[o + 5] = (v >>> 16) & 255;
    b[o + 6] = (v >>> 8) & 255;
    b[o + 7] = v & 255;
  } else {
    b[o + 4] = v & 255;
    b[o + 5] = (v >>> 8) & 255;
    b[o + 6] = (v >>> 16) & 255;
    b[o + 7] = v >>> 24;
  }
}

/** encodeRoute for the bulk case — an IPv4 prefix in a table < 256, an IPv4 gateway or none, no
 *  multipath or prefsrc — written byte by byte (a 1M-route batch spent more time in the general
 *  encoder's per-field writes than the kernel took to insert). Same bytes; false: not that case. */
function encodeRoute4(w: NlWriter, r: Partial<KernelRoute>, del: boolean, dstText: string): boolean {
  if (r.multipath?.length || r.prefsrc) return false;
  const len = ipv4Prefix(dstText);
  return len >= 0 && encodeRoute4At(w, r, del, v4Dst, len);
}

/** encodeRoute4 with the destination as numbers (unsigned network, length). */
function encodeRoute4At(w: NlWriter, r: Partial<KernelRoute>, del: boolean, dst: number, len: number): boolean {
  if (r.multipath?.length || r.prefsrc) return false;
  const table = r.table ?? RT_TABLE.MAIN;
  if (table >= 256) return false;
  const gw = r.gateway ? parseIpv4Number(r.gateway) : -2;
  if (gw === -1) return false;
  const type = r.type ? (routeTypeNumbers[r.type] ?? RTN.UNICAST) : del ? RTN.UNSPEC : RTN.UNICAST;
  w.ensure(12 + 4 * 8);
  const b = w.buf;
  let o = w.off;
  b[o] = AF.INET;
  b[o + 1] = len;
  b[o + 2] = 0;
  b[o + 3] = 0;
  b[o + 4] = table;
  b[o + 5] = r.protocol ?? (del ? RTPROT.UNSPEC : RTPROT.BOOT);
  b[o + 6] = r.scope ?? (del ? RT_SCOPE.NOWHERE : type === RTN.UNICAST && !r.gateway ? RT_SCOPE.LINK : RT_SCOPE.UNIVERSE);
  b[o + 7] = type;
  b[o + 8] = r.onlink ? RTNH_F.ONLINK : 0;
  b[o + 9] = b[o + 10] = b[o + 11] = 0;
  o += 12;
  if (len > 0 || dst !== 0) {
    attr32(b, o, RTA.DST, dst, true);
    o += 8;
  }
  if (r.priority !== undefined) {
    attr32(b, o, RTA.PRIORITY, r.priority, false);
    o += 8;
  }
  if (gw >= 0) {
    attr32(b, o, RTA.GATEWAY, gw, true);
    o += 8;
  }
  if (r.oif !== undefined) {
    attr32(b, o, RTA.OIF, r.oif, false);
    o += 8;
  }
  w.off = o;
  return true;
}

export function encodeRouteDump(w: NlWriter, family?: Family): void {
  w.u8(family ? afOf(family) : AF.UNSPEC);
  w.zeros(11);
}

export function decodeRoute(data: Buffer): KernelRoute {
  const family = familyOfAf(data[0]!);
  const dstLen = data[1]!;
  const rtFlags = data.readUInt32LE(8);
  const r: KernelRoute = {
    family,
    dst: '',
    table: data[4]!,
    protocol: data[5]!,
    scope: data[6]!,
    type: routeTypeNames[data[7]!] ?? 'other',
  };
  if (rtFlags & RTNH_F.ONLINK) r.onlink = true;
  let dst: string | undefined;
  forEachAttr(data, 12, data.length, (t, o, l) => {
    switch (t) {
      case RTA.DST:
        dst = ipText(data.subarray(o, o + l));
        break;
      case RTA.TABLE:
        r.table = data.readUInt32LE(o);
        break;
      case RTA.OIF:
        r.oif = data.readUInt32LE(o);
        break;
      case RTA.GATEWAY:
        r.gateway = ipText(data.subarray(o, o + l));
        break;
      case RTA.PRIORITY:
        r.priority = data.readUInt32LE(o);
        break;
      case RTA.PREFSRC:
        r.prefsrc = ipText(data.subarray(o, o + l));
        break;
      case RTA.MULTIPATH: {
        const hops: NextHop[] = [];
        let p = o;
        const end = o + l;
        while (p + 8 <= end) {
          const len = data.readUInt16LE(p);
          if (len < 8) break;
          const nh: NextHop = { oif: data.readInt32LE(p + 4), weight: data[p + 3]! + 1 };
          if (data[p + 2]! & RTNH_F.ONLINK) nh.onlink = true;
          forEachAttr(data, p + 8, p + len, (t2, o2, l2) => {
            if (t2 === RTA.GATEWAY) nh.gateway = ipText(data.subarray(o2, o2 + l2));
          });
          hops.push(nh);
          p += (len + 3) & ~3;
        }
        r.multipath = hops;
        break;
      }
    }
  });
  r.dst = `${dst ?? (family === 4 ? '0.0.0.0' : '::')}/${dstLen}`;
  return r;
}

// ---------------------------------------------------------------- neighbours / FDB

export interface Neighbor {
  /** 4, 6 for ARP/NDP entries; 'bridge' for FDB entries (AF_BRIDGE) */
  family: Family | 'bridge';
  ifindex: number;
  /** NUD_* bits */
  state: number;
  /** NTF_* bits */
  flags: number;
  dst?: string;
  lladdr?: string;
  vni?: number;
  master?: number;
}

export function encodeNeigh(w: NlWriter, n: Neighbor): void {
  const af = n.family === 'bridge' ? AF.BRIDGE : afOf(n.family);
  w.u8(af);
  w.u8(0);
  w.u16(0);
  w.i32(n.ifindex);
  w.u16(n.state);
  w.u8(n.flags);
  w.u8(0);
  if (n.dst) w.attrIp(NDA.DST, n.dst);
  if (n.lladdr) w.attrBytes(NDA.LLADDR, macBytes(n.lladdr));
  if (n.vni !== undefined) w.attrU32(NDA.VNI, n.vni);
  if (n.master !== undefined) w.attrU32(NDA.MASTER, n.master);
}

export function encodeNeighDump(w: NlWriter, family: Family | 'bridge' | undefined, ifindex = 0): void {
  w.u8(family === undefined ? AF.UNSPEC : family === 'bridge' ? AF.BRIDGE : afOf(family));
  w.u8(0);
  w.u16(0);
  w.i32(0);
  w.u16(0);
  w.u8(0);
  w.u8(0);
  // AF_BRIDGE (FDB) dumps parse a different request layout on older kernels: filter those in JS.
  if (ifindex && family !== 'bridge') w.attrU32(NDA.IFINDEX, ifindex);
}

export function decodeNeigh(data: Buffer): Neighbor {
  const af = data[0]!;
  const n: Neighbor = {
    family: af === AF.BRIDGE ? 'bridge' : familyOfAf(af),
    ifindex: data.readInt32LE(4),
    state: data.readUInt16LE(8),
    flags: data[10]!,
  };
  forEachAttr(data, 12, data.length, (t, o, l) => {
    const v = data.subarray(o, o + l);
    if (t === NDA.DST) n.dst = ipText(v);
    else if (t === NDA.LLADDR && l === 6) n.lladdr = macText(v);
    else if (t === NDA.VNI) n.vni = v.readUInt32LE(0);
    else if (t === NDA.MASTER) n.master = v.readUInt32LE(0);
  });
  return n;
}

export { ipBytes };

/** RTM_SETNEIGHTBL body: one interface's parameters in a neighbour table (arp_cache for IPv4, ndisc_cache
 *  for IPv6) — what net/ipv4/neigh/<if>/* sets. Only the proxy delay so far (ms). */
export function encodeNeighTblParms(w: NlWriter, p: { family: Family; ifindex: number; proxyDelayMs: number }): void {
  w.u8(p.family === 6 ? AF.INET6 : AF.INET);
  w.u8(0);
  w.u16(0);
  w.attrString(NDTA.NAME, p.family === 6 ? 'ndisc_cache' : 'arp_cache');
  const parms = w.beginAttr(NDTA.PARMS);
  w.attrU32(NDTPA.IFINDEX, p.ifindex);
  const delay = w.beginAttr(NDTPA.PROXY_DELAY); // u64
  w.u32(p.proxyDelayMs >>> 0);
  w.u32(Math.floor(p.proxyDelayMs / 2 ** 32));
  w.endAttr(delay);
  w.endAttr(parms);
}
