// One configured peer's runtime inside the speaker: its session (the transport), status, negotiated
// capabilities, path generations (current + stale, see graceful-restart.ts), Adj-RIB-Out, inbound
// queue and output state. Every reset goes through the few methods here — startSession(),
// resetForSession() when a session reaches Established, endSession() when it goes down — and
// detach() is the one way a session leaves the peer (listeners removed, Cease or silent close).
import { Buffer } from 'node:buffer';
import type { TimerHandle } from './clock.js';
import { DEFAULT_CAPS, type CodecCaps, type RouteRefreshMessage, type UpdateMessage } from './codec/types.js';
import type { Negotiated } from './negotiate.js';
import type { AttrSet, AttrTable } from './rib/attrs.js';
import { AdjRibOut } from './rib/adj-rib-out.js';
import type { Path, PathSource } from './rib/path.js';
import type { PrefixKey } from './rib/prefix-table.js';
import type { PeerPolicy } from './policy.js';
import type { ReflectionTarget } from './reflector.js';
import type { BgpState } from './fsm.js';
import type { PeerConfig, PeerSession } from './speaker-types.js';
import { PeerFilters } from './filter/peer-filters.js';
import { OutQueue, type UpdateGroup } from './update-group.js';

export type InboundMessage = UpdateMessage | RouteRefreshMessage;

/** Raw attribute bytes → the interned import result of the UPDATE that carried them last. */
export class LastImport {
  private raw = Buffer.alloc(256);
  private len = -1;
  private set: AttrSet | null = null;

  /** The result for these bytes, or undefined. A set that left the table since (no references) is not returned. */
  get(raw: Buffer): AttrSet | null | undefined {
    if (raw.length !== this.len || raw.compare(this.raw, 0, this.len) !== 0) return undefined;
    return this.set === null || this.set.refs > 0 ? this.set : undefined;
  }

  put(raw: Buffer, set: AttrSet | null): void {
    if (raw.length > this.raw.length) this.raw = Buffer.alloc(Math.max(raw.length, 2 * this.raw.length));
    raw.copy(this.raw);
    this.len = raw.length;
    this.set = set;
  }

  clear(): void {
    this.len = -1;
    this.set = null;
  }
}

export class Peer {
  config: PeerConfig;
  readonly source: PathSource;
  policy: PeerPolicy;
  session: PeerSession | undefined = undefined;
  state: BgpState = 'Idle';
  since: Date;
  info = 'Idle';
  negotiated: Negotiated | undefined = undefined;
  caps: CodecCaps = DEFAULT_CAPS;
  /** This session generation's paths, one per attribute set (see path.ts; found through the set).
   *  Released ones stay until more than half are (pathReleased). */
  paths: Path[] = [];
  released = 0;
  /** Paths of earlier sessions kept for graceful restart, or marked at BoRR (RFC 7313). */
  stalePaths: Path[] = [];
  readonly adjOut: AdjRibOut;
  /** The update group this peer shares its Adj-RIB-Out with (then adjOut is empty), if any. */
  group: UpdateGroup | undefined = undefined;
  /** Encoded messages queued for this session (a group's shared Buffers), written as the socket accepts. */
  readonly outQueue = new OutQueue();
  /** Initial dump of a member: the rest of its group's table to send (update-group.ts dumpRound). */
  groupDump: Iterator<[number, PrefixKey, AttrSet]> | undefined = undefined;
  /** The last UPDATE's raw attribute bytes (IPv4) and their import result: a set split over several
   *  UPDATEs is decided once. One entry, copied into a reused buffer — a map of 4096 text keys cost
   *  ~0.4 MB per peer, a string per UPDATE, never hit on a feed of distinct sets, and held sets
   *  without a reference after their routes were gone. */
  readonly lastImport = new LastImport();
  /** (best attrs, source, afi) → export attribute set. */
  readonly exportCache = new Map<number, AttrSet | null>();
  /** Received UPDATEs / ROUTE-REFRESHes not yet processed: inQueue[inHead..] (slots before inHead are emptied). */
  inQueue: (InboundMessage | undefined)[] = [];
  inHead = 0;
  /** We asked the session to stop reading (queue over the bound). */
  inputHeld = false;
  inboundPeak = 0;
  /** Initial dump: walking the Loc-RIB into Adj-RIB-Out. */
  dumping: Iterator<[number, PrefixKey, Path | Path[]]> | undefined = undefined;
  dumpDone = false;
  eorSent = false;
  readonly eorReceived = new Set<1 | 2>();
  /** Families between the peer's BoRR and EoRR (RFC 7313). */
  readonly refreshing = new Set<1 | 2>();
  refreshPaths: Path[] = [];
  /** Route refreshes the peer asked for (RFC 2918/7313), per family: 'queued' → BoRR sent → EoRR at the end. */
  readonly refreshOut = new Map<1 | 2, 'queued' | 'sending'>();
  flushScheduled = false;
  /** The socket pushed back: no writes until 'drain'. */
  blocked = false;
  grTimer: TimerHandle | undefined = undefined;
  restartTimer: TimerHandle | undefined = undefined;
  maxPrefixWarned = false;
  /** Stopped on purpose (speaker stop, removed, max-prefix): a 'down' leaves it Idle, not Active. */
  stopped = false;
  /** BGPFilters of this peer (import before the Loc-RIB, export before the Adj-RIB-Out). */
  readonly filters: PeerFilters;

  constructor(config: PeerConfig, source: PathSource, policy: PeerPolicy, attrTable: AttrTable, now: Date) {
    this.config = { ...config };
    this.source = source;
    this.policy = policy;
    this.adjOut = new AdjRibOut(attrTable);
    this.since = now;
    this.filters = new PeerFilters(attrTable, policy.ebgp);
    this.filters.set(config.filters ?? [], policy.ebgp);
  }

  /** A path of the current generation was released (no prefix holds it): when most of the list is, it
   *  is compacted (a withdraw-all leaves no Path, and so no attribute set, behind). */
  pathReleased(): void {
    if (++this.released * 2 <= this.paths.length) return;
    this.paths = this.paths.filter((x) => x.interned);
    this.released = 0;
  }

  get address(): string {
    return this.config.address;
  }

  private targetOf: PeerPolicy | undefined;
  private targetObj: ReflectionTarget | undefined;
  /** This peer as the receiver of a path (reflector.ts), one object per policy — asked per exported
   *  prefix, where an object literal each time was the speaker's largest per-prefix garbage. */
  get target(): ReflectionTarget {
    if (this.targetOf !== this.policy || !this.targetObj) {
      this.targetObj = { source: this.source, ebgp: this.policy.ebgp, rrClient: this.policy.rrClient };
      this.targetOf = this.policy;
    }
    return this.targetObj;
  }

  /** Queued inbound messages not yet processed. */
  get inboundQueued(): number {
    return this.inQueue.length - this.inHead;
  }

  /** A session reached Established: everything negotiated or sent on the previous one starts over. */
  resetForSession(n: Negotiated, policy: PeerPolicy): void {
    this.negotiated = n;
    this.caps = n.caps;
    this.policy = policy;
    this.exportCache.clear();
    this.lastImport.clear();
    this.filters.resetSession();
    this.eorReceived.clear();
    this.refreshing.clear();
    this.refreshPaths = [];
    this.refreshOut.clear();
    this.eorSent = false;
    this.dumpDone = false;
    this.blocked = false;
    this.maxPrefixWarned = false;
    this.group?.leave(this);
    this.groupDump = undefined;
    this.outQueue.clear();
    this.adjOut.clear();
    this.restartTimer?.cancel();
    this.restartTimer = undefined;
  }

  /** The session ended (down, detached): drop what only made sense on it. Paths are the caller's (GR). */
  endSession(): void {
    this.clearInbound();
    this.lastImport.clear();
    this.dumping = undefined;
    this.blocked = false;
    this.group?.leave(this);
    this.groupDump = undefined;
    this.outQueue.clear();
    this.adjOut.clear();
    this.filters.rejected.clear();
    this.refreshOut.clear();
    this.negotiated = undefined;
  }

  clearInbound(): void {
    this.inQueue = [];
    this.inHead = 0;
    this.releaseInput();
  }

  /** The next queued message, its slot emptied: a taken UPDATE kept in the array until the queue
   *  drained lived through young-generation collections and was promoted — old-generation garbage
   *  of ~1 KB per UPDATE during an ingest. */
  takeInbound(): InboundMessage | undefined {
    if (this.inHead >= this.inQueue.length) return undefined;
    const m = this.inQueue[this.inHead];
    this.inQueue[this.inHead++] = undefined;
    if (this.inHead >= 4096 && this.inHead * 2 >= this.inQueue.length) {
      this.inQueue = this.inQueue.slice(this.inHead);
      this.inHead = 0;
    }
    return m;
  }

  /** Queue a received message; at `max` queued, ask the session to stop reading (back-pressure). */
  enqueue(m: InboundMessage, max: number): void {
    this.inQueue.push(m);
    const n = this.inboundQueued;
    if (n > this.inboundPeak) this.inboundPeak = n;
    if (n >= max && !this.inputHeld && this.session?.holdInput) {
      this.inputHeld = true;
      this.session.holdInput(true);
    }
  }

  /** Resume reading once the queue has drained to `low`. */
  releaseInput(low = Infinity): void {
    if (!this.inputHeld || this.inboundQueued > low) return;
    this.inputHeld = false;
    this.session?.holdInput?.(false);
  }

  /**
   * Take the session away from this peer: no more events from it, then a Cease NOTIFICATION
   * (subcode, data) or — cease undefined — a silent close (graceful restart: the peer keeps our routes).
   */
  detach(cease?: { subcode: number; data?: Buffer }): void {
    const s = this.session;
    this.session = undefined;
    if (!s) return;
    s.removeAllListeners();
    s.stop(cease);
  }

  /** Stop for good (speaker stop, peer removed): timers cancelled, session detached. */
  shutdown(cease?: { subcode: number; data?: Buffer }): void {
    this.stopped = true;
    this.grTimer?.cancel();
    this.grTimer = undefined;
    this.restartTimer?.cancel();
    this.restartTimer = undefined;
    this.detach(cease);
  }
}
