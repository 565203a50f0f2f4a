// Peer computation: which BGP sessions this node wants, computed from the datastore's Nodes, BGPPeers
// and BGPConfiguration exactly as Calico's confd does for BIRD (pure; the selector language is
// passed in). Rules:
//  - node-to-node mesh (BGPConfiguration nodeToNodeMeshEnabled, default true): every other node with
//    an address of the family; sourced from our own address; the node whose address is lower (string
//    comparison, as Calico) is passive toward the higher one, so the two never race to connect;
//  - BGPPeer with neither `node` nor `nodeSelector`: global — every node peers with it;
//  - BGPPeer with `node: X` or `nodeSelector`: node specific — only the named/selected nodes;
//  - BGPPeer with `peerSelector`: the peers are the *nodes* it selects (their addresses and ASNs), and
//    the selected nodes peer back with the local side (one resource describes both ends, as Calico)
//    unless reversePeering: Manual;
//  - a node with routeReflectorClusterID is a route reflector: every node peer whose cluster ID differs
//    from ours (or who has none) is its RR client (RFC 4456).
// Duplicates (same address) keep the first: mesh, then node specific, then global.
// Passwords stay references here ({name, key} of a secret); the agent reads them (secrets.ts).
import type { SecretKeyRef } from './secrets.js';
import type { BfdTimers } from '../bfd/fsm.js';

export type PeerType = 'node-to-node mesh' | 'global' | 'node specific';

export interface PeerNode {
  name: string;
  labels: Readonly<Record<string, string>>;
  /** Address without prefix. */
  ipv4?: string;
  ipv6?: string;
  asNumber?: number;
  rrClusterId?: string;
}

export interface PeerResource {
  name: string;
  node?: string;
  nodeSelector?: string;
  peerSelector?: string;
  peerIP?: string;
  asNumber?: number;
  keepOriginalNextHop?: boolean;
  password?: SecretKeyRef;
  /** BFD for this session (BGPPeer bfd). */
  bfd?: BfdTimers;
  /** 'UseNodeIP' (default) or 'None'. */
  sourceAddress?: string;
  maxRestartTime?: number;
  ttlSecurity?: number;
  numAllowedLocalASNumbers?: number;
  /** BGPFilter names, in order. */
  filters?: string[];
  /** Auto | Self | Keep. */
  nextHopMode?: string;
  /** Our AS toward this peer (BGPPeer localASNumber). */
  localASNumber?: number;
  /** Gateway of a static route to peerIP (BGPPeer reachableBy). */
  reachableBy?: string;
  /** 'Manual': the nodes a peerSelector selects do not peer back by themselves (Calico reversePeering). */
  reversePeering?: 'Auto' | 'Manual';
}

export interface PeerBgpConfig {
  asNumber: number;
  nodeToNodeMeshEnabled: boolean;
  /** BGPConfiguration nodeMeshPassword: TCP-MD5 key of every mesh session. */
  nodeMeshPassword?: SecretKeyRef;
  /** BGPConfiguration nodeMeshMaxRestartTime, seconds: graceful restart time on mesh sessions. */
  nodeMeshMaxRestartTime?: number;
  /** BGPConfiguration nodeMeshBFD: BFD on every mesh session. */
  nodeMeshBFD?: BfdTimers;
  /** BGPConfiguration listenPort: every node listens there, so node peers are dialled there (Calico). */
  listenPort?: number;
}

export interface DesiredPeer {
  address: string;
  family: 4 | 6;
  asn: number;
  type: PeerType;
  /** The Node (node peers) or BGPPeer resource (external peers) this came from. */
  source: string;
  /** When the peer is a tabby node: its name. */
  peerNode?: string;
  localAddress?: string;
  passive: boolean;
  routeReflectorClient: boolean;
  keepOriginalNextHop: boolean;
  /** TCP-MD5 key to read from this secret (RFC 2385). */
  password?: SecretKeyRef;
  /** Graceful restart time for this session, seconds (BGPPeer maxRestartTime / nodeMeshMaxRestartTime). */
  maxRestartTime?: number;
  /** TCP port of the peer when not 179 (BGPPeer peerIP "ip:port"). */
  port?: number;
  /** BFD timers when BFD runs on this session (RFC 5880/5881/5882). */
  bfd?: BfdTimers;
  /** GTSM hops (RFC 5082), from BGPPeer ttlSecurity. */
  ttlSecurity?: number;
  /** Own AS allowed this many times in a received AS_PATH (BGPPeer numAllowedLocalASNumbers). */
  allowOwnAs?: number;
  /** BGPFilter names (BGPPeer.filters), in order. */
  filters?: string[];
  /** BGPPeer nextHopMode. */
  nextHopMode?: string;
  /** BGPPeer localASNumber: our AS on this session. */
  localAsn?: number;
  /** BGPPeer reachableBy: the agent installs `<address>/32 via reachableBy` (Calico's static route to the peer). */
  reachableBy?: string;
}

export type SelectorMatch = (selector: string, labels: Readonly<Record<string, string>>) => boolean;

function addressOf(n: PeerNode, family: 4 | 6): string | undefined {
  return family === 4 ? n.ipv4 : n.ipv6;
}

export function computePeers(
  self: PeerNode,
  nodes: readonly PeerNode[],
  peers: readonly PeerResource[],
  cfg: PeerBgpConfig,
  matches: SelectorMatch,
): DesiredPeer[] {
  const out: DesiredPeer[] = [];
  const seen = new Set<string>();
  const others = nodes.filter((n) => n.name !== self.name);
  const byAddress = new Map<string, PeerNode>();
  for (const n of nodes) {
    if (n.ipv4) byAddress.set(n.ipv4, n);
    if (n.ipv6) byAddress.set(n.ipv6, n);
  }
  const ownAsn = self.asNumber ?? cfg.asNumber;

  const push = (p: DesiredPeer): void => {
    if (seen.has(p.address)) return;
    const own = addressOf(self, p.family);
    if (!own || p.address === own) return; // no session of a family we have no address in; never to ourselves
    seen.add(p.address);
    out.push(p);
  };

  const nodePeer = (
    other: PeerNode,
    family: 4 | 6,
    type: PeerType,
    source: string,
    extra: Partial<DesiredPeer> = {},
  ): DesiredPeer | undefined => {
    const addr = addressOf(other, family);
    const own = addressOf(self, family);
    if (!addr || !own) return undefined;
    const asn = other.asNumber ?? cfg.asNumber;
    const p: DesiredPeer = {
      address: addr,
      family,
      asn,
      type,
      source,
      peerNode: other.name,
      localAddress: own,
      // Calico: `passive on` toward a peer whose address is greater (string comparison).
      passive: addr > own,
      routeReflectorClient: isRrClient(self, other, asn === ownAsn),
      keepOriginalNextHop: false,
      ...extra,
    };
    if (cfg.listenPort !== undefined && cfg.listenPort !== 179) p.port = cfg.listenPort;
    return p;
  };

  // 1. node-to-node mesh
  if (cfg.nodeToNodeMeshEnabled) {
    for (const fam of [4, 6] as const) {
      for (const o of others) {
        const p = nodePeer(o, fam, 'node-to-node mesh', o.name);
        if (!p) continue;
        p.routeReflectorClient = false;
        if (cfg.nodeMeshPassword) p.password = cfg.nodeMeshPassword;
        if (cfg.nodeMeshMaxRestartTime !== undefined) p.maxRestartTime = cfg.nodeMeshMaxRestartTime;
        if (cfg.nodeMeshBFD) p.bfd = cfg.nodeMeshBFD;
        push(p);
      }
    }
  }

  const isLocal = (r: PeerResource, n: PeerNode): boolean => {
    if (r.node !== undefined && r.node !== '') return r.node === n.name;
    if (r.nodeSelector !== undefined && r.nodeSelector !== '') return matches(r.nodeSelector, n.labels);
    return true; // global
  };
  const typeOf = (r: PeerResource): PeerType =>
    (r.node !== undefined && r.node !== '') || (r.nodeSelector !== undefined && r.nodeSelector !== '') ? 'node specific' : 'global';

  const resourceExtras = (r: PeerResource): Partial<DesiredPeer> => {
    const e: Partial<DesiredPeer> = { keepOriginalNextHop: r.keepOriginalNextHop ?? false };
    if (r.password !== undefined) e.password = r.password;
    if (r.bfd !== undefined) e.bfd = r.bfd;
    if (r.maxRestartTime !== undefined) e.maxRestartTime = r.maxRestartTime;
    if (r.ttlSecurity !== undefined) e.ttlSecurity = r.ttlSecurity;
    if (r.numAllowedLocalASNumbers !== undefined) e.allowOwnAs = r.numAllowedLocalASNumbers;
    if (r.filters?.length) e.filters = r.filters.slice();
    if (r.nextHopMode) e.nextHopMode = r.nextHopMode;
    if (r.localASNumber !== undefined) e.localAsn = r.localASNumber;
    return e;
  };

  // Node specific before global, so a more specific definition of the same address wins; then by name
  // in code-unit order (resource names are lower-case DNS names: the same order as localeCompare, whose
  // ICU collator would cost every agent ~1 MB of RSS).
  const ordered = [...peers].sort((a, b) =>
    typeOf(a) === typeOf(b) ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : typeOf(a) === 'node specific' ? -1 : 1,
  );
  for (const r of ordered) {
    const type = typeOf(r);
    const extras = resourceExtras(r);
    if (r.peerSelector !== undefined && r.peerSelector !== '') {
      // Forward: we are a local node → peer with every node the peerSelector selects.
      if (isLocal(r, self)) {
        for (const o of others) {
          if (!matches(r.peerSelector, o.labels)) continue;
          for (const fam of [4, 6] as const) {
            const p = nodePeer(o, fam, type, r.name, extras);
            if (p) {
              if (r.sourceAddress === 'None') delete p.localAddress;
              push(p);
            }
          }
        }
      }
      // Reverse: we are selected by peerSelector → peer with every local node (unless reversePeering
      // Manual: then only a BGPPeer of our own makes that session).
      if (r.reversePeering !== 'Manual' && matches(r.peerSelector, self.labels)) {
        for (const o of others) {
          if (!isLocal(r, o)) continue;
          for (const fam of [4, 6] as const) {
            const p = nodePeer(o, fam, type, r.name, extras);
            if (p) {
              if (r.sourceAddress === 'None') delete p.localAddress;
              push(p);
            }
          }
        }
      }
      continue;
    }
    if (!isLocal(r, self) || r.peerIP === undefined || r.peerIP === '') continue;
    const { address: addr, port } = splitPeerIP(r.peerIP);
    const family: 4 | 6 = addr.includes(':') ? 6 : 4;
    const asn = r.asNumber ?? cfg.asNumber;
    const asNode = byAddress.get(addr);
    const own = addressOf(self, family);
    const p: DesiredPeer = {
      address: addr,
      family,
      asn,
      type,
      source: r.name,
      passive: asNode !== undefined && own !== undefined && addr > own,
      routeReflectorClient: asNode ? isRrClient(self, asNode, asn === ownAsn) : Boolean(self.rrClusterId) && asn === ownAsn,
      keepOriginalNextHop: false,
      ...extras,
    };
    if (asNode) p.peerNode = asNode.name;
    if (port !== undefined && port !== 179) p.port = port;
    if (own && r.sourceAddress !== 'None') p.localAddress = own;
    if (r.reachableBy) p.reachableBy = r.reachableBy;
    push(p);
  }
  return out;
}

/** RFC 4456 as Calico configures it: a route reflector treats an iBGP peer outside its cluster as a client. */
function isRrClient(self: PeerNode, other: PeerNode, ibgp: boolean): boolean {
  if (!self.rrClusterId || !ibgp) return false;
  return other.rrClusterId !== self.rrClusterId;
}

/** Calico's peerIP: "ip", "ip:port" (IPv4) or "[ip]:port" (IPv6); the port is dialled. */
export function splitPeerIP(ip: string): { address: string; port?: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(ip);
  const m = v6 ?? /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(ip);
  if (!m) return { address: ip };
  return m[2] === undefined ? { address: m[1]! } : { address: m[1]!, port: Number(m[2]) };
}
