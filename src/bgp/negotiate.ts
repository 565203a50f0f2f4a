// OPEN checks and capability negotiation (RFC 4271 §6.2, RFC 5492, RFC 6793, RFC 4760, RFC 7911,
// RFC 8654, RFC 4724): pure functions the FSM calls on a received OPEN.
import { Buffer } from 'node:buffer';
import type { Capability, CapabilityKind, CodecCaps, FamilyKey, OpenMessage } from './codec/types.js';
import { AS_TRANS, BgpMessageError, familyKey, FAMILY_IPV4_UNICAST } from './codec/types.js';
import { encodeCapability } from './codec/open.js';

export type FamilyName = 'ipv4' | 'ipv6';
export const FAMILY_KEYS: Readonly<Record<FamilyName, FamilyKey>> = { ipv4: familyKey(1, 1), ipv6: familyKey(2, 1) };

/** What this side offers/expects; built from the peer config by the session. */
export interface LocalOpenConfig {
  localAsn: number;
  routerId: string;
  /** Expected peer ASN (2/2 Bad Peer AS when different). */
  peerAsn: number;
  /** Proposed hold time, seconds (0 or ≥ 3). */
  holdTime: number;
  families: readonly FamilyName[];
  /** Families where we want to receive path identifiers (ADD-PATH receive). */
  addPathReceive?: readonly FamilyName[];
  /** Families where we offer to send path identifiers. */
  addPathSend?: readonly FamilyName[];
  extendedMessage?: boolean;
  gracefulRestart?: { restartTime: number; restarting?: boolean; forwardingPreserved?: boolean };
  /** Capabilities the peer must advertise, else NOTIFICATION 2/7 (RFC 5492 §5). */
  requireCapabilities?: readonly CapabilityKind[];
  hostname?: string;
}

/** The result of a successful OPEN exchange. */
export interface Negotiated {
  peerAsn: number;
  peerRouterId: string;
  /** Negotiated hold time (min of both, RFC 4271 §4.2); 0 = no keepalives and no hold timer. */
  holdTime: number;
  keepaliveTime: number;
  caps: CodecCaps;
  /** Families both sides advertised (IPv4 unicast only when the peer sent no MP capability). */
  families: FamilyKey[];
  routeRefresh: boolean;
  enhancedRouteRefresh: boolean;
  /** The peer's graceful-restart capability, when it sent one. */
  peerGracefulRestart?: Extract<Capability, { kind: 'graceful-restart' }>;
  peerHostname?: string;
  peerCapabilities: Capability[];
}

const FAMILY_AFI: Readonly<Record<FamilyName, [number, number]>> = { ipv4: [1, 1], ipv6: [2, 1] };

/** The capabilities we advertise. */
export function localCapabilities(c: LocalOpenConfig): Capability[] {
  const caps: Capability[] = [];
  for (const f of c.families) {
    const [afi, safi] = FAMILY_AFI[f];
    caps.push({ kind: 'multiprotocol', afi, safi });
  }
  caps.push({ kind: 'route-refresh' }, { kind: 'enhanced-route-refresh' });
  if (c.gracefulRestart) {
    caps.push({
      kind: 'graceful-restart',
      restarting: c.gracefulRestart.restarting ?? false,
      notification: false,
      restartTime: c.gracefulRestart.restartTime,
      families: c.families.map((f) => ({
        afi: FAMILY_AFI[f][0],
        safi: FAMILY_AFI[f][1],
        forwardingPreserved: c.gracefulRestart?.forwardingPreserved ?? false,
      })),
    });
  }
  caps.push({ kind: 'as4', asn: c.localAsn });
  if (c.extendedMessage) caps.push({ kind: 'extended-message' });
  const ap = new Map<FamilyName, number>();
  for (const f of c.addPathReceive ?? []) ap.set(f, (ap.get(f) ?? 0) | 1);
  for (const f of c.addPathSend ?? []) ap.set(f, (ap.get(f) ?? 0) | 2);
  if (ap.size)
    caps.push({
      kind: 'add-path',
      entries: [...ap].map(([f, mode]) => ({ afi: FAMILY_AFI[f][0], safi: FAMILY_AFI[f][1], mode: mode as 1 | 2 | 3 })),
    });
  if (c.hostname) caps.push({ kind: 'fqdn', hostname: c.hostname, domain: '' });
  return caps;
}

export function buildOpen(c: LocalOpenConfig): OpenMessage {
  return {
    type: 'open',
    version: 4,
    asn: c.localAsn > 0xffff ? AS_TRANS : c.localAsn,
    holdTime: c.holdTime,
    routerId: c.routerId,
    capabilities: localCapabilities(c),
  };
}

/** The peer's real ASN: the 4-octet AS capability when present (RFC 6793 §4.1), else the 2-octet field. */
export function openAsn(open: OpenMessage): number {
  for (const c of open.capabilities) if (c.kind === 'as4') return c.asn;
  return open.asn;
}

const none = Buffer.alloc(0);

/** Check a received OPEN against our config; throws BgpMessageError (2/x) or returns the negotiation. */
export function negotiate(local: LocalOpenConfig, open: OpenMessage): Negotiated {
  const peerAsn = openAsn(open);
  if (peerAsn !== local.peerAsn)
    throw new BgpMessageError(2, 2, none, 'session-reset', `bad peer AS ${peerAsn}, expected ${local.peerAsn}`);
  // RFC 6286 §2.2: a zero identifier is bad; iBGP peers must not share ours.
  if (open.routerId === '0.0.0.0' || (local.peerAsn === local.localAsn && open.routerId === local.routerId)) {
    throw new BgpMessageError(2, 3, none, 'session-reset', `bad BGP identifier ${open.routerId}`);
  }
  // RFC 4271 §6.2: hold time 1 or 2 is unacceptable.
  if (open.holdTime === 1 || open.holdTime === 2)
    throw new BgpMessageError(2, 6, none, 'session-reset', `unacceptable hold time ${open.holdTime}`);
  for (const kind of local.requireCapabilities ?? []) {
    if (!open.capabilities.some((c) => c.kind === kind)) {
      const mine = localCapabilities(local).find((c) => c.kind === kind);
      throw new BgpMessageError(2, 7, mine ? encodeCapability(mine) : none, 'session-reset', `peer lacks required capability ${kind}`);
    }
  }
  const holdTime = Math.min(local.holdTime, open.holdTime);
  const pc = open.capabilities;
  const has = (k: CapabilityKind): boolean => pc.some((c) => c.kind === k);
  const peerMp = pc
    .filter((c): c is Extract<Capability, { kind: 'multiprotocol' }> => c.kind === 'multiprotocol')
    .map((c) => familyKey(c.afi, c.safi));
  const ours = local.families.map((f) => FAMILY_KEYS[f]);
  const families = peerMp.length === 0 ? ours.filter((k) => k === FAMILY_IPV4_UNICAST) : ours.filter((k) => peerMp.includes(k));
  const addPathRx = new Set<FamilyKey>();
  const addPathTx = new Set<FamilyKey>();
  const peerAp = pc.find((c): c is Extract<Capability, { kind: 'add-path' }> => c.kind === 'add-path');
  if (peerAp) {
    for (const e of peerAp.entries) {
      const k = familyKey(e.afi, e.safi);
      const name = (Object.keys(FAMILY_KEYS) as FamilyName[]).find((n) => FAMILY_KEYS[n] === k);
      if (!name) continue;
      if (e.mode & 2 && local.addPathReceive?.includes(name)) addPathRx.add(k);
      if (e.mode & 1 && local.addPathSend?.includes(name)) addPathTx.add(k);
    }
  }
  const n: Negotiated = {
    peerAsn,
    peerRouterId: open.routerId,
    holdTime,
    keepaliveTime: Math.floor(holdTime / 3),
    caps: { as4: has('as4'), addPathRx, addPathTx, extendedMessage: !!local.extendedMessage && has('extended-message') },
    families,
    routeRefresh: has('route-refresh'),
    enhancedRouteRefresh: has('enhanced-route-refresh'),
    peerCapabilities: pc,
  };
  const gr = pc.find((c): c is Extract<Capability, { kind: 'graceful-restart' }> => c.kind === 'graceful-restart');
  if (gr) n.peerGracefulRestart = gr;
  const fq = pc.find((c): c is Extract<Capability, { kind: 'fqdn' }> => c.kind === 'fqdn');
  if (fq) n.peerHostname = fq.hostname;
  return n;
}
