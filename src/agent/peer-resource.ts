// BGPPeer / BGPConfiguration resources (as the store holds them) → the peer computation's inputs
// (peers.ts). One conversion, used by the agent and by the cluster check (`cluster status`, `--dry-run`).
import { parseDuration } from '../datastore/resources.js';
import type { BfdSpecRes, BgpPeerRes } from './ports.js';
import type { PeerResource } from './peers.js';
import { secretKeyRefOf } from './secrets.js';

export type BfdTimersJson = { desiredMinTxMs: number; requiredMinRxMs: number; detectMult: number };

/** BGPPeer bfd / BGPConfiguration nodeMeshBFD (validated durations) → timers; defaults 300 ms × 3. */
export function bfdTimersOf(b: BfdSpecRes): BfdTimersJson {
  const ms = (d: string | undefined): number | undefined => (d === undefined ? undefined : parseDuration(d));
  return {
    desiredMinTxMs: ms(b.transmitInterval) ?? 300,
    requiredMinRxMs: ms(b.receiveInterval) ?? 300,
    detectMult: b.detectMultiplier ?? 3,
  };
}

/** A duration (validated) → seconds in the 12 bits RFC 4724 gives the restart time. */
export function restartTimeSeconds(d: unknown): number | undefined {
  const ms = typeof d === 'string' ? parseDuration(d) : undefined;
  return ms === undefined ? undefined : Math.min(4095, Math.round(ms / 1000));
}

/** One BGPPeer → the peer computation's view of it. The ASN is taken as the store normalised it. */
export function peerResourceOf(p: BgpPeerRes): PeerResource {
  const r: PeerResource = { name: p.metadata.name };
  const s = p.spec;
  if (s.node) r.node = s.node;
  if (s.nodeSelector) r.nodeSelector = s.nodeSelector;
  if (s.peerSelector) r.peerSelector = s.peerSelector;
  if (s.peerIP) r.peerIP = s.peerIP;
  if (s.asNumber !== undefined) r.asNumber = s.asNumber;
  if (s.keepOriginalNextHop) r.keepOriginalNextHop = true;
  if (s.sourceAddress) r.sourceAddress = s.sourceAddress;
  if (s.password !== undefined) {
    // Validation only lets {secretKeyRef: {name, key}} in; anything else (a store written around
    // validation) must not turn into a session without MD5: a ref that cannot exist holds the peer.
    r.password = secretKeyRefOf(s.password) ?? { name: '(invalid password field)', key: p.metadata.name };
  }
  if (s.bfd) r.bfd = bfdTimersOf(s.bfd);
  const mrt = restartTimeSeconds(s.maxRestartTime);
  if (mrt !== undefined) r.maxRestartTime = mrt;
  if (typeof s.ttlSecurity === 'number' && s.ttlSecurity > 0) r.ttlSecurity = s.ttlSecurity;
  if (typeof s.numAllowedLocalASNumbers === 'number' && s.numAllowedLocalASNumbers > 0)
    r.numAllowedLocalASNumbers = s.numAllowedLocalASNumbers;
  if (Array.isArray(s.filters) && s.filters.length) r.filters = s.filters as string[];
  if (typeof s.nextHopMode === 'string') r.nextHopMode = s.nextHopMode;
  if (typeof s.localASNumber === 'number') r.localASNumber = s.localASNumber;
  if (typeof s.reachableBy === 'string') r.reachableBy = s.reachableBy;
  if (s.reversePeering === 'Manual') r.reversePeering = 'Manual';
  return r;
}
