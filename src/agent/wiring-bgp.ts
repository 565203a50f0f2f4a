// Adapter from the BGP speaker (src/bgp) to the agent's SpeakerPort, and from the autodetection
// module to its AddressPort.
import { BgpSpeaker, tcpSessions, type BestRouteEvent, type WithdrawnRouteEvent, type PeerEvent } from '../bgp/index.js';
import type { Logger } from '../common/log.js';
import { log } from '../common/log.js';
import { parseAutodetectionMethod } from '../autodetect/method.js';
import { resolveNodeAddresses } from '../autodetect/detect.js';
import type { AutodetectConfig } from '../autodetect/settings.js';
import type { AgentConfig } from './config.js';
import type { AddressPort, SpeakerOptions, SpeakerPort, SpeakerPeerConfig } from './ports.js';

export function bgpSpeakerPort(o: SpeakerOptions, logger: Logger = log('bgp')): SpeakerPort {
  const s = new BgpSpeaker({
    asn: o.asn,
    routerId: o.routerId,
    listenPort: o.listenPort,
    ...(o.listenAddress ? { listenAddress: o.listenAddress } : {}),
    ...(o.clusterId ? { clusterId: o.clusterId } : {}),
    ...(o.gracefulRestart ? { gracefulRestart: { restartTime: o.gracefulRestart.restartTime } } : {}),
    sessions: tcpSessions({}),
    logger,
  });
  const toPeer = (p: SpeakerPeerConfig) => ({ ...p });
  return {
    start: () => s.start(),
    stop: (x) => s.stop(x),
    addPeer: (p) => s.addPeer(toPeer(p)),
    updatePeer: (p) => s.updatePeer(toPeer(p)),
    removePeer: (a) => s.removePeer(a),
    resetPeer: (a, reason) => {
      s.resetPeer(a, reason);
    },
    originate: (prefix, x) => s.originate(prefix, x ?? {}),
    withdraw: (prefix) => s.withdraw(prefix),
    setConnected: (subnets) => s.setConnected(subnets),
    peers: () =>
      s.peers().map((p) => ({
        address: p.address,
        asn: p.asn,
        state: p.state,
        since: p.since,
        info: p.info,
        prefixesReceived: p.prefixesReceived,
        prefixesAccepted: p.prefixesAccepted,
        prefixesAdvertised: p.prefixesAdvertised,
      })),
    onBest: (fn) => {
      s.on('best', (e: BestRouteEvent) =>
        fn({
          prefix: e.prefix,
          nextHops: e.nextHops,
          source: e.source,
          ...(e.attrs.priority !== undefined ? { metric: e.attrs.priority } : {}),
        }),
      );
    },
    onWithdrawn: (fn) => {
      s.on('withdrawn', (e: WithdrawnRouteEvent) => fn({ prefix: e.prefix }));
    },
    onChanges: (fn) => {
      s.on('changes', fn);
    },
    onPeerChange: (fn) => {
      s.on('peer', () => fn());
    },
    routeReport: (peer, dir) => s.routeReport(peer, dir),
    decisionReason: (prefix) => s.locRib().reason(prefix),
    exportRejections: () => s.exportRejections(),
    onEndOfRib: (fn) => {
      s.on('end-of-rib', (e: { address: string }) => fn({ address: e.address }));
    },
    onSessionEvent: (fn) => {
      s.on('peer', (e: PeerEvent) => fn({ kind: 'state', peer: e.address, from: e.previous, to: e.state, info: e.info }));
      s.on('notification', (e) =>
        fn({ kind: 'notification', peer: e.address, sent: e.sent, code: e.code, subcode: e.subcode, data: e.data.toString('hex') }),
      );
      s.on('connect-error', (e) => fn({ kind: 'connect-error', peer: e.address, code: e.code, message: e.message }));
    },
  };
}

/** The autodetect settings of the agent's configuration. */
export function autodetectConfigOf(cfg: AgentConfig): AutodetectConfig {
  const c: AutodetectConfig = {
    ip4: cfg.ip,
    ip6: cfg.ip6,
    method4: parseAutodetectionMethod(cfg.ipAutodetectionMethod, 4),
    method6: parseAutodetectionMethod(cfg.ip6AutodetectionMethod, 6),
    pollIntervalMs: cfg.autodetectPollIntervalMs,
  };
  if (cfg.nodeInternalIps) c.internalIps = cfg.nodeInternalIps;
  return c;
}

export function addressPort(cfg: AgentConfig): AddressPort {
  const ac = autodetectConfigOf(cfg);
  return {
    resolve: async (stored, otherNodes) => {
      const r = await resolveNodeAddresses(ac, { nodeName: cfg.nodeName, stored, otherNodes });
      const out: { ipv4?: string; ipv6?: string; interface4?: string } = {};
      if (r.ipv4.choice) out.ipv4 = r.ipv4.choice.address;
      if (r.ipv4.choice?.interface) out.interface4 = r.ipv4.choice.interface;
      if (r.ipv6.choice) out.ipv6 = r.ipv6.choice.address;
      return out;
    },
  };
}
