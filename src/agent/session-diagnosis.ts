// Why a BGP session is not up, from one peer's /sessions entry (session-history.ts): the newest
// failure in its history (a NOTIFICATION sent or received, a TCP connect error by errno name, the
// peer closing before OPEN) and what the agent configured (passive side, MD5, GTSM) become one
// classified cause with a one-line fix. Pure: `tabbyctl bgp diagnose` renders it; the cluster check
// can reuse it. Branches on codes (errno names, NOTIFICATION code/subcode), never on message text.
import { notificationText } from '../bgp/codec/registry.js';
import type { PeerSessionJson, SessionEvent } from './session-history.js';

export type CauseKind =
  | 'established'
  | 'connection-refused'
  | 'no-route'
  | 'tcp-timeout'
  | 'closed-before-open'
  | 'waiting-passive'
  | 'connecting'
  | 'as-mismatch'
  | 'bad-bgp-identifier'
  | 'hold-timer-expired'
  | 'max-prefix'
  | 'admin-shutdown'
  | 'open-error'
  | 'notification'
  | 'removed';

export interface Diagnosis {
  peer: string;
  peerNode?: string;
  state: string;
  since: string;
  cause: CauseKind;
  /** One line: what is wrong. */
  summary: string;
  /** One line: what to do. */
  fix: string;
  /** The history entries the cause was read from (newest last). */
  evidence: SessionEvent[];
}

/** A NOTIFICATION's data, decoded where the RFCs give it a shape. */
export function decodeNotificationData(code: number, subcode: number, hex: string): string {
  const d = Buffer.from(hex, 'hex');
  if (d.length === 0) return '';
  if (code === 2 && subcode === 2 && (d.length === 2 || d.length === 4))
    return `peer AS in its OPEN: ${d.length === 2 ? d.readUInt16BE(0) : d.readUInt32BE(0)}`;
  if (code === 2 && subcode === 3 && d.length === 4) return `BGP identifier: ${[...d].join('.')}`;
  if (code === 6 && subcode === 1 && d.length >= 7)
    return `AFI ${d.readUInt16BE(0)} SAFI ${d.readUInt8(2)}, limit ${d.readUInt32BE(3)} prefixes`;
  if (code === 6 && (subcode === 2 || subcode === 4) && d.length >= 1) {
    // RFC 9003 shutdown communication: length octet + UTF-8.
    const n = d.readUInt8(0);
    if (n > 0 && n + 1 <= d.length) return `message: "${d.subarray(1, 1 + n).toString('utf8')}"`;
  }
  return `data ${hex}`;
}

export function describeNotification(e: Extract<SessionEvent, { kind: 'notification' }>): string {
  const data = decodeNotificationData(e.code, e.subcode, e.data);
  return `NOTIFICATION ${e.sent ? 'sent' : 'received'}: ${e.code}/${e.subcode} ${notificationText(e.code, e.subcode)}${data ? ` (${data})` : ''}`;
}

/** How long the session has been in its current state, in seconds. */
const ageS = (since: string, now: Date): number => Math.max(0, Math.round((now.getTime() - new Date(since).getTime()) / 1000));

/** The events since the session was last Established (the current failure), newest last. */
function currentEpisode(events: readonly SessionEvent[]): SessionEvent[] {
  let i = events.length - 1;
  while (i >= 0) {
    const e = events[i]!;
    if (e.kind === 'state' && e.to === 'Established') break;
    i--;
  }
  return events.slice(i + 1);
}

export function diagnoseSession(p: PeerSessionJson, now: Date = new Date()): Diagnosis {
  const st = p.status;
  const base = { peer: st.address, state: st.state, since: st.since, ...(p.config.peerNode ? { peerNode: p.config.peerNode } : {}) };
  const who = p.config.peerNode ? `${p.config.peerNode} (${st.address})` : st.address;
  const mk = (cause: CauseKind, summary: string, fix: string, evidence: SessionEvent[] = []): Diagnosis => ({
    ...base,
    cause,
    summary,
    fix,
    evidence,
  });
  if (st.state === 'Established') {
    const last = [...p.events].reverse().find((e) => e.kind === 'notification');
    return mk(
      'established',
      `Established for ${ageS(st.since, now)} s${last ? `; earlier: ${describeNotification(last as Extract<SessionEvent, { kind: 'notification' }>)} at ${last.at}` : ''}`,
      'nothing to do',
      last ? [last] : [],
    );
  }
  const episode = currentEpisode(p.events);
  const notes = episode.filter((e): e is Extract<SessionEvent, { kind: 'notification' }> => e.kind === 'notification');
  const _errs = episode.filter((e): e is Extract<SessionEvent, { kind: 'connect-error' }> => e.kind === 'connect-error');
  const newest = episode.filter((e) => e.kind !== 'state').at(-1);
  const lastNote = notes.at(-1);
  // A NOTIFICATION followed only by the peer closing connections before OPEN (BIRD shuts a peer out
  // for a while after an error): the NOTIFICATION is the cause.
  const afterNote = lastNote ? episode.slice(episode.indexOf(lastNote) + 1).filter((e) => e.kind !== 'state') : [];
  const shutOut = !!lastNote && afterNote.length > 0 && afterNote.every((e) => e.kind === 'connect-error' && e.code === 'ECLOSED');
  const decisive = shutOut ? lastNote : newest;
  const md5 = p.config.md5;
  const gtsm = p.config.ttlSecurity;
  const silentDrop = (what: string): string =>
    [
      md5
        ? 'TCP-MD5 is configured for this peer: a key mismatch, or a key on one side only, looks exactly like this (the kernel drops segments with a wrong or missing signature without a word)'
        : `${what}. If the peer has a TCP-MD5 password (and this side none), it looks exactly like this: the kernel drops unsigned segments without a word`,
      gtsm
        ? `GTSM (ttlSecurity ${gtsm}) is configured: packets from a peer more than ${gtsm} hop(s) away, or one that does not send TTL 255, are dropped silently`
        : '',
    ]
      .filter(Boolean)
      .join('; ');
  // When the failure began: the drop from Established, or the first event of the episode.
  const episodeStart = episode[0]?.at ?? st.since;
  const down = episode[0]?.kind === 'state' && episode[0].from === 'Established' ? episode[0] : undefined;
  const dropped = down
    ? `The session dropped at ${down.at} without a NOTIFICATION (the peer stopped or restarted gracefully, crashed, or the path broke). `
    : '';

  if (decisive?.kind === 'notification') {
    const n = decisive;
    const text = `${describeNotification(n)}${shutOut ? ' (since then the peer closes every connection before OPEN)' : ''}`;
    const ev = [n];
    if (n.code === 2 && n.subcode === 2) {
      return n.sent
        ? mk(
            'as-mismatch',
            `${who} sends an OPEN with another AS than configured here (expected AS ${st.asn}): ${text}`,
            `make the AS agree: this node's BGPPeer/Node asNumber for ${st.address} says ${st.asn}; set it to the AS the peer really uses, or fix the peer's own AS`,
            ev,
          )
        : mk(
            'as-mismatch',
            `${who} rejects our AS ${p.config.localAsn}: ${text}`,
            `the peer expects another AS for this node: set its neighbor AS to ${p.config.localAsn}, or this node's AS (Node spec.bgp.asNumber / BGPConfiguration asNumber) to what it expects`,
            ev,
          );
    }
    if (n.code === 2 && n.subcode === 3)
      return mk(
        'bad-bgp-identifier',
        `${text}: the router IDs are equal or invalid`,
        'give every speaker a unique router ID (CALICO_ROUTER_ID on tabby nodes; router id on the peer)',
        ev,
      );
    if (n.code === 4) {
      return n.sent
        ? mk(
            'hold-timer-expired',
            `${who} went silent: no KEEPALIVE within the hold time (${text})`,
            `check that ${st.address} is alive and the path to it does not drop packets (MTU, firewall, a congested link)`,
            ev,
          )
        : mk(
            'hold-timer-expired',
            `${who} stopped hearing from this node within its hold time (${text})`,
            "check this node's tabby-node (stuck? overloaded?) and the path toward the peer",
            ev,
          );
    }
    if (n.code === 6 && n.subcode === 1) {
      return mk(
        'max-prefix',
        `${n.sent ? `${who} sent more prefixes than this node accepts` : `this node sent ${who} more prefixes than it accepts`}: ${text}`,
        n.sent
          ? 'raise the max-prefix limit for this peer or find why it sends so many routes'
          : 'raise the limit on the peer or send fewer prefixes (export filters)',
        ev,
      );
    }
    if (n.code === 6 && (n.subcode === 2 || n.subcode === 3 || n.subcode === 4)) {
      return mk(
        'admin-shutdown',
        `${n.sent ? 'this node' : who} shut the session down administratively: ${text}`,
        n.sent
          ? 'the peer was removed or reset by configuration here (BGPPeer deleted/changed, mesh off); re-add it if it should exist'
          : `the operator of ${st.address} shut it down: enable the neighbor there`,
        ev,
      );
    }
    if (n.code === 2)
      return mk(
        'open-error',
        `OPEN refused: ${text}`,
        "compare both sides' capabilities, hold time and BGP version; the NOTIFICATION names the field",
        ev,
      );
    return mk('notification', text, 'see the NOTIFICATION: the side that sent it names what it did not accept', ev);
  }
  if (decisive?.kind === 'connect-error') {
    const e = decisive;
    const ev = [e];
    const times = e.count && e.count > 1 ? ` (${e.count} times, last at ${e.lastAt})` : '';
    switch (e.code) {
      case 'ECONNREFUSED':
        return mk(
          'connection-refused',
          `${who} refuses TCP port 179${times}: nothing listens there`,
          `start the BGP speaker on ${st.address} (is its tabby-node running? tabbyctl node status there), or check the peer address/port (BGPConfiguration listenPort)`,
          ev,
        );
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return mk(
          'no-route',
          `no route to ${who}${times} (${e.message})`,
          `check this node's routing toward ${st.address} (ip route get ${st.address}) and the underlay; is the peer address right?`,
          ev,
        );
      case 'ETIMEDOUT':
        return mk(
          'tcp-timeout',
          `TCP connection to ${who} timed out${times}. ${silentDrop('Nothing answers: the peer is down, or a firewall drops TCP 179')}`,
          md5
            ? 'make the TCP-MD5 password the same on both sides (BGPPeer password secretKeyRef here, neighbor password there)'
            : gtsm
              ? 'lower the hop count between the peers or turn ttlSecurity off on both sides'
              : `check that ${st.address} is up and TCP 179 is allowed both ways`,
          ev,
        );
      case 'ECLOSED':
        return mk(
          'closed-before-open',
          `${who} accepted TCP and closed it before any OPEN${times}: it does not have this node (${p.config.localAddress ?? 'our address'}) configured as a peer`,
          'add this node as a neighbor on the peer (its BGPPeer/mesh, or its BIRD/GoBGP config), or fix the source address this node uses',
          ev,
        );
      default:
        return mk('tcp-timeout', `TCP connection to ${who} fails: ${e.code} ${e.message}${times}`, `check the path to ${st.address}`, ev);
    }
  }
  const age = ageS(episodeStart, now);
  const evidence = down ? [down] : [];
  if (p.config.passive) {
    return mk(
      'waiting-passive',
      `${dropped}This node is the passive side toward ${who} (the lower address waits for the higher one to connect) and it has not connected for ${age} s.`,
      `diagnose on ${p.config.peerNode ?? st.address}: tabbyctl bgp diagnose there shows why it does not connect${md5 ? '; compare the MD5 passwords' : ''}`,
      evidence,
    );
  }
  if ((st.state === 'Connect' || st.state === 'Active') && age >= 10) {
    return mk(
      'tcp-timeout',
      `${dropped}No answer from ${who} for ${age} s (${st.state}, TCP connects time out). ${silentDrop('Nothing answers: the peer is down, or a firewall drops TCP 179')}`,
      md5
        ? 'make the TCP-MD5 password the same on both sides'
        : gtsm
          ? 'lower the hop count or turn ttlSecurity off on both sides'
          : `check that ${st.address} is up and TCP 179 is allowed both ways; compare TCP-MD5 passwords on both sides`,
      evidence,
    );
  }
  return mk('connecting', `${dropped}${st.state} for ${age} s: the session is being set up`, 'wait a few seconds and ask again', evidence);
}
