// The bounded BGP session history the agent keeps per peer and serves at /sessions on its status
// socket (read by `tabbyctl bgp diagnose`): state transitions with times, NOTIFICATIONs sent and
// received (code, subcode, data), and TCP connect errors (errno code). Fed by the speaker's events
// (SpeakerPort.onSessionEvent); a repeated connect error is counted, not appended, so a peer that has
// refused connections for an hour still shows what happened before. Nothing here touches a socket.
import type { BgpState } from '../bgp/index.js';
import type { DesiredPeer } from './peers.js';
import type { PeerStatusJson } from './status-types.js';
import { isoTime } from '../common/iso-time.js';

export type SessionEvent =
  | { kind: 'state'; peer: string; at: string; from: BgpState; to: BgpState; info: string; count?: number; lastAt?: string }
  | {
      kind: 'notification';
      peer: string;
      at: string;
      sent: boolean;
      code: number;
      subcode: number;
      data: string;
      count?: number;
      lastAt?: string;
    }
  | { kind: 'connect-error'; peer: string; at: string; code: string; message: string; count?: number; lastAt?: string };

/** A SessionEvent without its time (the history stamps it). */
export type SessionEventInput = SessionEvent extends infer E ? (E extends SessionEvent ? Omit<E, 'at'> : never) : never;

export interface PeerSessionJson {
  status: PeerStatusJson;
  /** What the agent configured for this peer (what diagnose needs to explain a failure). */
  config: {
    passive: boolean;
    md5: boolean;
    ttlSecurity?: number;
    localAddress?: string;
    source: string;
    peerNode?: string;
    localAsn: number;
  };
  events: SessionEvent[];
  /** Events dropped from the front of the bounded history. */
  dropped: number;
}

export interface SessionsJson {
  nodeName: string;
  now: string;
  peers: PeerSessionJson[];
}

/** How far back a repeat is looked for (a retry loop is at most a few distinct entries long). */
const RETRY_LOOP_SPAN = 4;
const RETRY_STATES: ReadonlySet<string> = new Set(['Idle', 'Connect', 'Active']);

function repeats(e: SessionEvent, x: SessionEventInput): boolean {
  if (x.kind === 'connect-error') return e.kind === 'connect-error' && e.code === x.code;
  if (x.kind === 'state')
    return (
      e.kind === 'state' && e.from === x.from && e.to === x.to && e.info === x.info && RETRY_STATES.has(x.from) && RETRY_STATES.has(x.to)
    );
  return false;
}

export class SessionHistory {
  private readonly byPeer = new Map<string, { events: SessionEvent[]; dropped: number }>();

  constructor(
    private readonly limit = 64,
    private readonly now: () => Date = () => new Date(),
  ) {}

  record(input: SessionEventInput): void {
    const at = isoTime(this.now());
    let h = this.byPeer.get(input.peer);
    if (!h) {
      h = { events: [], dropped: 0 };
      this.byPeer.set(input.peer, h);
    }
    // A retry loop (Connect <-> Active, the same TCP error every few seconds) is counted on the entry
    // it repeats, so the history keeps what happened before the loop began.
    const same = h.events
      .slice(-RETRY_LOOP_SPAN)
      .reverse()
      .find((e) => repeats(e, input));
    if (same) {
      same.count = (same.count ?? 1) + 1;
      same.lastAt = at;
      return;
    }
    h.events.push({ ...input, at } as SessionEvent);
    if (h.events.length > this.limit) {
      h.events.shift();
      h.dropped++;
    }
  }

  /** A removed peer's history goes with it. */
  forget(peer: string): void {
    this.byPeer.delete(peer);
  }

  events(peer: string): { events: SessionEvent[]; dropped: number } {
    const h = this.byPeer.get(peer);
    return h ? { events: h.events.map((e) => ({ ...e })), dropped: h.dropped } : { events: [], dropped: 0 };
  }
}

/** The /sessions answer: every configured peer with its status, configuration and history. */
export function sessionsJson(
  nodeName: string,
  localAsn: number,
  desired: Iterable<DesiredPeer>,
  status: readonly PeerStatusJson[],
  history: SessionHistory,
  now: Date = new Date(),
): SessionsJson {
  const peers: PeerSessionJson[] = [];
  for (const d of desired) {
    const st = status.find((s) => s.address === d.address);
    if (!st) continue;
    const config: PeerSessionJson['config'] = { passive: d.passive, md5: Boolean(d.password), source: d.source, localAsn };
    if (d.ttlSecurity) config.ttlSecurity = d.ttlSecurity;
    if (d.localAddress) config.localAddress = d.localAddress;
    if (d.peerNode) config.peerNode = d.peerNode;
    peers.push({ status: st, config, ...history.events(d.address) });
  }
  return { nodeName, now: isoTime(now), peers };
}
