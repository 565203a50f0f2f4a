// IFLA_LINKINFO encoder for the link kinds tabby creates (veth, ipip, vxlan; bridge/dummy have no data).
// Byte-for-byte what iproute2 6.1 `ip -d link add …` sends for the same options (golden vectors and
// how they were captured: proto/netlink/). Attribute order mirrors iproute2 so the vectors compare.
import { IFLA, IFLA_INFO, IFLA_IPTUN, IFLA_VXLAN, VETH_INFO } from './constants.js';
import { type NlWriter, ipBytes, macBytes } from './wire.js';

export interface VethPeer {
  name: string;
  mtu?: number;
  mac?: string;
  /** An open fd of the netns the peer is created in (IFLA_NET_NS_FD). */
  netnsFd?: number;
}

export interface IpipOptions {
  local?: string;
  remote?: string;
  /** 0 = inherit */
  ttl?: number;
  tos?: number;
  pmtudisc?: boolean;
  link?: number;
}

export interface VxlanOptions {
  vni: number;
  local?: string;
  /** UDP destination port (IANA 4789) */
  port?: number;
  learning?: boolean;
  /** underlay device index */
  link?: number;
}

export type LinkInfo =
  | { kind: 'veth'; peer: VethPeer }
  | { kind: 'ipip'; ipip?: IpipOptions }
  | { kind: 'vxlan'; vxlan: VxlanOptions }
  | { kind: 'bridge' }
  | { kind: 'dummy' };

/** The ifinfomsg that starts RTM_NEWLINK and VETH_INFO_PEER: family, type, index, flags, change. */
export function writeIfinfomsg(w: NlWriter, index = 0, flags = 0, change = 0, family = 0): void {
  w.u8(family);
  w.u8(0);
  w.u16(0);
  w.i32(index);
  w.u32(flags);
  w.u32(change);
}

/** Link attributes in iproute2's order: MTU, ADDRESS, NET_NS_FD, IFNAME. */
export function writeLinkAttrs(w: NlWriter, a: { name?: string; mtu?: number; mac?: string; netnsFd?: number }): void {
  if (a.mtu !== undefined) w.attrU32(IFLA.MTU, a.mtu);
  if (a.mac !== undefined) w.attrBytes(IFLA.ADDRESS, macBytes(a.mac));
  if (a.netnsFd !== undefined) w.attrU32(IFLA.NET_NS_FD, a.netnsFd);
  if (a.name !== undefined) w.attrString(IFLA.IFNAME, a.name);
}

export function writeLinkInfo(w: NlWriter, info: LinkInfo): void {
  const li = w.beginAttr(IFLA.LINKINFO);
  w.attrStringRaw(IFLA_INFO.KIND, info.kind);
  switch (info.kind) {
    case 'veth': {
      const data = w.beginAttr(IFLA_INFO.DATA);
      const peer = w.beginAttr(VETH_INFO.PEER);
      writeIfinfomsg(w);
      writeLinkAttrs(w, info.peer);
      w.endAttr(peer);
      w.endAttr(data);
      break;
    }
    case 'ipip': {
      const o = info.ipip;
      // iproute2 sends IFLA_INFO_DATA only when options were given, then always the full set.
      if (o && Object.values(o).some((v) => v !== undefined)) {
        const data = w.beginAttr(IFLA_INFO.DATA);
        w.attrU8(IFLA_IPTUN.PROTO, 0);
        if (o.remote) w.attrIp(IFLA_IPTUN.REMOTE, o.remote);
        if (o.local) w.attrIp(IFLA_IPTUN.LOCAL, o.local);
        w.attrU8(IFLA_IPTUN.PMTUDISC, o.pmtudisc === false ? 0 : 1);
        w.attrU8(IFLA_IPTUN.TOS, o.tos ?? 0);
        w.attrU8(IFLA_IPTUN.TTL, o.ttl ?? 0);
        w.attrU32(IFLA_IPTUN.LINK, o.link ?? 0);
        w.attrU32(IFLA_IPTUN.FWMARK, 0);
        w.attrU16(IFLA_IPTUN.ENCAP_TYPE, 0);
        w.attrU16(IFLA_IPTUN.ENCAP_FLAGS, 0);
        w.attrU16be(IFLA_IPTUN.ENCAP_SPORT, 0);
        w.attrU16be(IFLA_IPTUN.ENCAP_DPORT, 0);
        w.endAttr(data);
      }
      break;
    }
    case 'vxlan': {
      const o = info.vxlan;
      const data = w.beginAttr(IFLA_INFO.DATA);
      w.attrU32(IFLA_VXLAN.ID, o.vni);
      if (o.local) {
        const b = ipBytes(o.local);
        w.attrBytes(b.length === 4 ? IFLA_VXLAN.LOCAL : IFLA_VXLAN.LOCAL6, b);
      }
      if (o.link !== undefined) w.attrU32(IFLA_VXLAN.LINK, o.link);
      if (o.learning !== undefined) w.attrU8(IFLA_VXLAN.LEARNING, o.learning ? 1 : 0);
      if (o.port !== undefined) w.attrU16be(IFLA_VXLAN.PORT, o.port);
      w.endAttr(data);
      break;
    }
    case 'bridge':
    case 'dummy':
      break;
  }
  w.endAttr(li);
}
