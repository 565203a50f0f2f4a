// Tunnel devices, Calico's way:
//  - tunl0: the ipip fallback device; MTU 1480 (or configured), up, the node's tunnel address as /32.
//  - vxlan.calico: VNI 4096, UDP 4789, learning off, local VTEP = node IP, MAC 66: + first 5 bytes of
//    SHA-1(node name) (felix's derivation), MTU 1450, the node's tunnel address as /32.
//  - vxlan-v6.calico (IPv6 pools): the same over the node's IPv6 address, MAC from SHA-1("<node>-v6"),
//    MTU 1430 (the IPv6 outer header is 20 bytes longer), the node's IPv6 tunnel address as /128.
// ensure* converge an existing device (wrong parameters → recreate; MTU/MAC/addresses fixed in place).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type { Netlink } from './netlink/netlink.js';
import type { Link } from './netlink/messages.js';
import { IFLA_VXLAN, RT_SCOPE } from './netlink/constants.js';
import { attrMap, ipText } from './netlink/wire.js';
import { NetlinkError, isErrno } from './netlink/socket.js';
import { IPIP_IF_NAME, VXLAN_IF_NAME, VXLAN_V6_IF_NAME } from './ownership.js';

export const VXLAN_DEFAULT_VNI = 4096;
export const VXLAN_DEFAULT_PORT = 4789;
export const VXLAN_DEFAULT_MTU = 1450;
export const VXLAN_V6_DEFAULT_MTU = 1430;
export const IPIP_DEFAULT_MTU = 1480;

/** Calico's VTEP MAC for a node: 0x66 ('f') followed by the first 5 bytes of SHA-1(nodeName), or of
 *  SHA-1(nodeName + "-v6") for the IPv6 VTEP (felix's seeds, so both VTEPs of a node differ). */
export function vxlanMacForNode(nodeName: string, family: 4 | 6 = 4): string {
  const sha = createHash('sha1')
    .update(family === 6 ? `${nodeName}-v6` : nodeName)
    .digest();
  return [0x66, ...sha.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/**
 * Does this kernel have IPIP? The module loaded (/sys/module/ipip), built in, or loadable
 * (listed in /lib/modules/<release>/modules.{builtin,dep}: the kernel auto-loads it on first use).
 */
export function kernelHasIpip(): boolean {
  if (fs.existsSync('/sys/module/ipip')) return true;
  const dir = `/lib/modules/${os.release()}`;
  for (const f of ['modules.builtin', 'modules.dep']) {
    try {
      if (/(^|\/)ipip\.ko/m.test(fs.readFileSync(`${dir}/${f}`, 'utf8'))) return true;
    } catch {
      /* no such file */
    }
  }
  return false;
}

/** Make the link's non-link-scope addresses exactly `want` (each "a.b.c.d" as /32, or "x::y" as /128). */
async function converge(nl: Netlink, link: Link, want: string[]): Promise<void> {
  const wantSet = new Set(want.map((a) => `${a}/${a.includes(':') ? 128 : 32}`));
  for (const a of await nl.listAddresses()) {
    if (a.index !== link.index || a.scope === RT_SCOPE.LINK) continue;
    const k = `${a.address}/${a.prefixLen}`;
    if (wantSet.has(k)) wantSet.delete(k);
    else await nl.deleteAddress(link.index, a.address, a.prefixLen);
  }
  for (const k of wantSet) {
    const [addr, len] = k.split('/') as [string, string];
    await nl.addAddress(link.index, addr, Number(len));
  }
}

export interface IpipTunnelOptions {
  /** the node's tunnel address (from its block); absent = no address */
  address?: string;
  mtu?: number;
}

/** tunl0 up with the MTU and address. Throws NetlinkError EOPNOTSUPP when the kernel has no ipip. */
export async function ensureIpipTunnel(nl: Netlink, opts: IpipTunnelOptions = {}): Promise<Link> {
  const mtu = opts.mtu ?? IPIP_DEFAULT_MTU;
  let link = await nl.getLink(IPIP_IF_NAME);
  if (link && link.kind !== undefined && link.kind !== 'ipip') {
    throw new NetlinkError(17 /* EEXIST */, `ensure ${IPIP_IF_NAME}`, `${IPIP_IF_NAME} exists but is a ${link.kind} device`);
  }
  if (!link) {
    try {
      await nl.createLink({ name: IPIP_IF_NAME, mtu, info: { kind: 'ipip' } });
    } catch (e) {
      if (isErrno(e, 'EOPNOTSUPP', 'ENOENT', 'EINVAL')) {
        throw new NetlinkError((e as NetlinkError).errno, `create ${IPIP_IF_NAME}`, 'kernel has no ipip support (modprobe ipip)');
      }
      if (!isErrno(e, 'EEXIST')) throw e; // the ipip module created its fallback tunl0 meanwhile
    }
    link = await nl.mustGetLink(IPIP_IF_NAME);
  }
  if (link.mtu !== mtu) await nl.setLinkMtu(link.index, mtu);
  if (!link.up) await nl.setLinkUp(link.index);
  await converge(nl, link, opts.address ? [opts.address.split('/')[0]!] : []);
  return nl.mustGetLink(link.index);
}

export interface VxlanTunnelOptions {
  name?: string;
  vni?: number;
  port?: number;
  /** local VTEP address: the node's IP */
  localIp: string;
  /** the VTEP MAC (vxlanMacForNode(nodeName)) */
  mac: string;
  mtu?: number;
  /** the node's tunnel address (from its block), as /32 (or /128) */
  address?: string;
  /** the underlay device (its index) */
  parentIndex?: number;
}

export interface VxlanParams {
  vni?: number;
  local?: string;
  port?: number;
  learning?: boolean;
  link?: number;
}

export function decodeVxlanInfo(data: Buffer | undefined): VxlanParams {
  if (!data) return {};
  const m = attrMap(data, 0, data.length);
  const out: VxlanParams = {};
  const id = m.get(IFLA_VXLAN.ID);
  if (id) out.vni = id.readUInt32LE(0);
  const l4 = m.get(IFLA_VXLAN.LOCAL);
  if (l4) out.local = ipText(l4);
  const l6 = m.get(IFLA_VXLAN.LOCAL6);
  if (l6) out.local = ipText(l6);
  const port = m.get(IFLA_VXLAN.PORT);
  if (port) out.port = port.readUInt16BE(0);
  const learning = m.get(IFLA_VXLAN.LEARNING);
  if (learning) out.learning = learning[0] !== 0;
  const link = m.get(IFLA_VXLAN.LINK);
  if (link) out.link = link.readUInt32LE(0);
  return out;
}

/** vxlan.calico (vxlan-v6.calico for an IPv6 local address) with the given parameters, up, with MTU, MAC and address. */
export async function ensureVxlanTunnel(nl: Netlink, opts: VxlanTunnelOptions): Promise<Link> {
  const local = opts.localIp.split('/')[0]!;
  const v6 = local.includes(':');
  const name = opts.name ?? (v6 ? VXLAN_V6_IF_NAME : VXLAN_IF_NAME);
  const vni = opts.vni ?? VXLAN_DEFAULT_VNI;
  const port = opts.port ?? VXLAN_DEFAULT_PORT;
  const mtu = opts.mtu ?? (v6 ? VXLAN_V6_DEFAULT_MTU : VXLAN_DEFAULT_MTU);
  let link = await nl.getLink(name);
  if (link) {
    const p = decodeVxlanInfo(link.infoData);
    const same =
      link.kind === 'vxlan' &&
      p.vni === vni &&
      p.local === local &&
      p.port === port &&
      p.learning === false &&
      (opts.parentIndex === undefined || p.link === opts.parentIndex);
    if (!same) {
      await nl.deleteLink(link.index);
      link = undefined;
    }
  }
  if (!link) {
    await nl.createLink({
      name,
      mtu,
      mac: opts.mac,
      info: { kind: 'vxlan', vxlan: { vni, local, port, learning: false, link: opts.parentIndex } },
    });
    link = await nl.mustGetLink(name);
  }
  if (link.mtu !== mtu) await nl.setLinkMtu(link.index, mtu);
  if (link.mac !== opts.mac) await nl.setLinkMac(link.index, opts.mac);
  if (!link.up) await nl.setLinkUp(link.index);
  await converge(nl, link, opts.address ? [opts.address.split('/')[0]!] : []);
  return nl.mustGetLink(link.index);
}

/** Remove vxlan.calico (when VXLAN is no longer used); false when absent. */
export async function removeVxlanTunnel(nl: Netlink, name = VXLAN_IF_NAME): Promise<boolean> {
  return nl.deleteLink(name);
}
