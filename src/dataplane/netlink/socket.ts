// The request layer over node_netlink's RawNetlinkSocket (the `netlink` package gives the native
// AF_NETLINK socket wired into libuv; this file does sequence numbers, ACKs, multipart dumps and
// batching itself, so that errors keep their errno and 100k requests go out in a few sendmsg calls).
//  - request(): one message with NLM_F_ACK; resolves with the reply parts, rejects with NetlinkError.
//  - dump(): NLM_F_DUMP, multipart until NLMSG_DONE; an interrupted dump (NLM_F_DUMP_INTR) is retried,
//    and so is one the kernel refuses with EBUSY (a dump we gave up on is still running on this socket:
//    its remaining parts are drained first). A dump times out only when no part arrives for timeoutMs,
//    so a 1M-route table on a loaded machine is not cut off half way.
//  - batch(): many messages per datagram without NLM_F_ACK (the kernel still answers every failure
//    with NLMSG_ERROR carrying its seq), closed by an acknowledged NLMSG_NOOP barrier: when the
//    barrier's ACK arrives every earlier message has been processed (netlink_rcv_skb is in order).
// A socket opened with a netnsPath is created inside that netns (native().withNetns): the socket
// stays bound to the netns it was created in for its whole life.
// A socket opened `offLoop` makes its sendmsg/recvmsg on the addon's netlink threads (offloop.ts): the
// kernel's work for a request (and any wait for RTNL) no longer stops the event loop.
import os from 'node:os';
// Deep import of the raw layer only: the package root also loads its genl/nl80211/wireguard
// modules, ~50 ms of start-up that every CNI plugin run would pay.
import rawPkg from 'netlink/dist/raw.js';
import type { RawNetlinkSocket as RawSocketType } from 'netlink/dist/raw.js';
import { native } from '../../native/index.js';
import {
  NLM_F,
  NLMSG,
  NLMSGERR_ATTR,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_NO_ENOBUFS,
  SOL_NETLINK,
  SOL_SOCKET,
  SO_RCVBUFFORCE,
  SO_SNDBUFFORCE,
} from './constants.js';
import { NlWriter, NLMSG_HDRLEN, align4, cString, forEachAttr, type NlMessage } from './wire.js';
import { OffLoopRawSocket } from './offloop.js';

const { RawNetlinkSocket } = rawPkg as unknown as { RawNetlinkSocket: typeof RawSocketType };

const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([k, v]) => [v, k]));

/** A request the kernel refused (or a socket failure). Branch on `errno`/`code`, never on the message. */
export class NetlinkError extends Error {
  readonly code: string;
  constructor(
    readonly errno: number,
    readonly op: string,
    readonly extack?: string,
  ) {
    const code = errnoNames.get(errno) ?? `E${errno}`;
    super(`${op}: ${code}${extack ? ` (${extack})` : ''}`);
    this.name = 'NetlinkError';
    this.code = code;
  }
}

export const ERRNO = os.constants.errno;

export function isErrno(e: unknown, ...codes: string[]): boolean {
  return e instanceof NetlinkError && codes.includes(e.code);
}

/** A dump read in place (dumpRaw): `start` gives each attempt its part reader; `stop` may end it early. */
interface RawDump {
  start: () => RawPart;
  stop?: (() => boolean) | undefined;
}

interface Pending {
  op: string;
  parts: NlMessage[];
  /** a streamed dump: each part goes here as it arrives instead of into `parts` */
  each?: ((m: NlMessage) => void) | undefined;
  /** the same without a message object: the payload is buf[off, end) (valid during the call only) */
  raw?: RawPart | undefined;
  /** asked after each datagram of a dump: true ends it early (see dumpRaw) */
  stop?: (() => boolean) | undefined;
  /** dumps: a part arrived since the timer was last armed */
  progress?: boolean;
  dump: boolean;
  interrupted: boolean;
  resolve(parts: NlMessage[]): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
}

interface BatchWindow {
  first: number;
  last: number;
  onError(index: number, e: NetlinkError): void;
}

/** A dump part in place: its type and its payload buf[off, end) — no object per part (a 1M-route dump). */
export type RawPart = (buf: Buffer, off: number, end: number, type: number) => void;

/** `count` requests, request i described by index (no object per request: a batch may hold 1M routes). */
export interface BatchSource {
  readonly count: number;
  type(i: number): number;
  /** NLM_F_* besides REQUEST (e.g. CREATE|REPLACE) */
  flags(i: number): number;
  body(i: number, w: NlWriter): void;
}

/** One acknowledged request: its type, NLM_F_* besides REQUEST|ACK, body and name in errors. */
export interface NlRequest {
  type: number;
  flags: number;
  body(w: NlWriter): void;
  op: string;
}

export interface NlSocketOptions {
  netnsPath?: string;
  /** multicast groups (RTNLGRP_* numbers) to join: makes this an event socket */
  groups?: number[];
  /** per request timeout in ms (default 30 s) */
  timeoutMs?: number;
  /** receive buffer (default 32 MiB); an event socket that must not lose a bulk change's events wants more */
  recvBufferBytes?: number;
  /** sendmsg/recvmsg on the addon's netlink threads, not the event loop (not for event sockets) */
  offLoop?: boolean;
}

const RCVBUF = 32 << 20;
const SNDBUF = 4 << 20;
/** Bytes per sendmsg in batch(): well under SO_SNDBUF; a route message is ~60 bytes. */
const BATCH_BYTES = 256 << 10;

export class NlSocket {
  private readonly raw: RawSocketType;
  private readonly pending = new Map<number, Pending>();
  private readonly windows = new Set<BatchWindow>();
  private seq: number;
  private readonly writer = new NlWriter(1 << 16);
  /** batch() writers, reused: a fresh 260 KB writer per batch and a copy of each 256 KB datagram
   *  outlived young-generation GCs while the kernel worked through them, and their memory stayed
   *  until a full GC (at 200k routes ~10 MB of ArrayBuffers piled up during an ingest) */
  private readonly batchWriters: NlWriter[] = [];
  /** sends go to the addon's threads (which may read the buffer later): batch() sends a copy */
  private readonly offLoop: boolean;
  private timeoutMs: number;
  private closed = false;
  private dumpQueue: Promise<void> = Promise.resolve();
  /** seq of a dump we stopped waiting for while the kernel may still be sending it (it blocks the next
   *  dump with EBUSY until its NLMSG_DONE); its parts are dropped, `drained` resolves on its end */
  private abandoned: { seq: number; drained: Promise<void>; done(): void } | undefined;
  /** Messages nobody asked for (multicast events): set by the owner. */
  onEvent?: (msg: NlMessage) => void;
  /** The same in place, instead of onEvent (no object per event: a counter of 1M route events) */
  onRawEvent?: RawPart;
  /** The socket lost messages (ENOBUFS) or failed: every pending request was rejected. */
  onOverrun?: (e: NetlinkError) => void;
  readonly port: number;
  private readonly groups: number[];
  private joined = true;

  constructor(opts: NlSocketOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.offLoop = opts.offLoop ?? false;
    this.seq = (Math.random() * 0x3fffffff) >>> 0 || 1;
    // node_netlink hands each datagram over in a fresh native buffer of msgBufferSize that V8 does not
    // count (no GC pressure): an event socket gets one datagram per route change, so 64 KiB each made
    // 20k route events ~1.3 GB of RSS, and a dump's few-KiB datagrams cost 64 KiB each too. Peeking
    // for the exact size costs one more recvmsg per datagram and allocates only what arrived.
    const open = (): RawSocketType => new RawNetlinkSocket(0 /* NETLINK_ROUTE */, { messagePeeking: true } as never);
    if (opts.offLoop && opts.groups?.length) throw new TypeError('an event socket cannot be off the loop');
    this.raw = opts.offLoop
      ? (new OffLoopRawSocket(opts.netnsPath, () => this.timeoutMs) as unknown as RawSocketType)
      : opts.netnsPath
        ? native().withNetns(opts.netnsPath, open)
        : open();
    this.port = this.raw.address().port;
    // Big buffers so that a burst of replies/events is not dropped; EXT_ACK for the kernel's reason text.
    const fd = opts.offLoop ? undefined : native().netlinkFd(this.port);
    if (fd === undefined) {
      /* off the loop: the addon set its socket up (nl_worker.cc) */
    } else if (fd >= 0) {
      const n = native();
      try {
        n.setsockoptInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, opts.recvBufferBytes ?? RCVBUF);
      } catch {
        try {
          this.raw.setRecvBufferSize(opts.recvBufferBytes ?? RCVBUF);
        } catch {
          /* keep default */
        }
      }
      try {
        n.setsockoptInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, SNDBUF);
      } catch {
        /* keep default */
      }
      try {
        n.setsockoptInt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
      } catch {
        /* old kernel */
      }
      try {
        n.setsockoptInt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
      } catch {
        /* old kernel */
      }
      // MUST: without it a receive-queue overrun raises POLLERR, which node_netlink 0.3 turns into a
      // C++ exception that aborts the process ("Error in native callback"). Lost events are instead
      // covered by pausing subscriptions around our own bulk changes and by periodic resyncs.
      n.setsockoptInt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
    } else {
      throw new NetlinkError(ERRNO.EBADF, 'open netlink socket', 'cannot find its fd to set NETLINK_NO_ENOBUFS');
    }
    this.groups = [...(opts.groups ?? [])];
    for (const g of this.groups) this.raw.addMembership(g);
    // These run inside node_netlink's native callback: an exception escaping here aborts the process
    // ("Error in native callback"), so nothing may throw out of them.
    this.raw.on('message', (buf: Buffer) => {
      try {
        this.receive(buf);
      } catch (e) {
        this.uncaught(e);
      }
    });
    this.raw.on('error', (e: Error & { errno?: number }) => {
      try {
        this.fail(new NetlinkError(Math.abs(e.errno ?? ERRNO.EIO), 'recvmsg'));
      } catch (err) {
        this.uncaught(err);
      }
    });
    if (!opts.groups?.length) this.raw.unref();
  }

  /** Leave (false) or re-join (true) the multicast groups given at open. */
  setMembership(join: boolean): void {
    if (this.closed || join === this.joined) return;
    for (const g of this.groups) {
      if (join) this.raw.addMembership(g);
      else this.raw.dropMembership(g);
    }
    this.joined = join;
  }

  /** A handler threw while we were called from native code: rethrow on a clean stack instead. */
  private uncaught(e: unknown): void {
    process.nextTick(() => {
      throw e;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // An error (and its stack) only for requests still waiting: a pod's wiring closes two sockets per ADD.
    if (this.pending.size) this.fail(new NetlinkError(ERRNO.EBADF, 'close'), false);
    this.raw.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Per-request timeout from now on (dumps: without a part arriving). */
  setTimeout(ms: number): void {
    this.timeoutMs = ms;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /** We stop waiting for dump `seq` while the kernel may still be sending it: drop the rest of it, and
   *  let the next dump wait for its end (the kernel refuses a second dump with EBUSY meanwhile). */
  private abandon(seq: number): void {
    if (this.closed) return;
    let done!: () => void;
    const drained = new Promise<void>((r) => {
      done = r;
    });
    this.abandoned?.done();
    this.abandoned = { seq, drained, done };
    this.raw.ref();
  }

  private fail(e: NetlinkError, notify = true): void {
    for (const [seq, p] of this.pending) {
      if (p.dump) this.abandon(seq);
      this.pending.delete(seq);
      if (p.timer) clearTimeout(p.timer);
      p.reject(e);
    }
    this.refresh();
    if (notify) this.onOverrun?.(e);
  }

  private refresh(): void {
    if (this.closed) return;
    if (this.pending.size || this.abandoned)
      this.raw.ref(); // an abandoned dump is read to its end
    else if (!this.onEvent && !this.onRawEvent) this.raw.unref();
  }

  private receive(buf: Buffer): void {
    // headers read in place: a message object is made only for what needs one (not for a raw dump's
    // parts, nor for the dropped rest of an abandoned dump)
    let lastSeq = -1;
    let last: Pending | undefined;
    let o = 0;
    while (o + NLMSG_HDRLEN <= buf.length) {
      const len = buf.readUInt32LE(o);
      if (len < NLMSG_HDRLEN || o + len > buf.length) break;
      const at = o;
      o += align4(len);
      const type = buf.readUInt16LE(at + 4);
      const seq = buf.readUInt32LE(at + 8);
      let p: Pending | undefined;
      if (seq === lastSeq) p = last;
      else if (seq) {
        p = this.pending.get(seq);
        lastSeq = seq;
        last = p;
      }
      if (p?.raw && type !== NLMSG.DONE && type !== NLMSG.ERROR) {
        if (buf.readUInt16LE(at + 6) & NLM_F.DUMP_INTR) p.interrupted = true;
        p.raw(buf, at + NLMSG_HDRLEN, at + len, type);
        p.progress = true;
        continue;
      }
      if (!p && this.onRawEvent && type !== NLMSG.ERROR && type !== NLMSG.DONE && type !== NLMSG.OVERRUN) {
        this.onRawEvent(buf, at + NLMSG_HDRLEN, at + len, type);
        continue;
      }
      if (!p && this.abandoned && seq === this.abandoned.seq) {
        if (type === NLMSG.DONE || type === NLMSG.ERROR) {
          this.abandoned.done();
          this.abandoned = undefined;
          this.refresh();
        }
        continue;
      }
      const m: NlMessage = {
        type,
        flags: buf.readUInt16LE(at + 6),
        seq,
        pid: buf.readUInt32LE(at + 12),
        data: buf.subarray(at + NLMSG_HDRLEN, at + len),
      };
      if (!p) {
        if (m.type === NLMSG.ERROR && this.windows.size) {
          for (const w of this.windows) {
            if (m.seq >= w.first && m.seq <= w.last) {
              w.onError(m.seq - w.first, this.errorOf(m, 'batch'));
              break;
            }
          }
          continue;
        }
        if (m.type === NLMSG.OVERRUN) {
          this.fail(new NetlinkError(ERRNO.ENOBUFS, 'overrun'));
          continue;
        }
        if (m.type !== NLMSG.ERROR && m.type !== NLMSG.DONE) this.onEvent?.(m);
        continue;
      }
      if (m.flags & NLM_F.DUMP_INTR) p.interrupted = true;
      if (m.type === NLMSG.ERROR || m.type === NLMSG.DONE) lastSeq = -1; // settled below: looked up again
      if (m.type === NLMSG.ERROR) {
        const errno = -m.data.readInt32LE(0);
        if (errno === 0) this.settle(m.seq, p, null);
        else this.settle(m.seq, p, this.errorOf(m, p.op));
      } else if (m.type === NLMSG.DONE) {
        const errno = m.data.length >= 4 ? -m.data.readInt32LE(0) : 0;
        this.settle(m.seq, p, errno > 0 ? new NetlinkError(errno, p.op) : null);
      } else {
        // node_netlink hands every datagram over in a fresh buffer: views are safe to keep.
        // A single reply (RTM_GETLINK by name) is followed by the ACK we asked for: settle on that.
        if (p.each) p.each(m);
        else p.parts.push(m);
        p.progress = true;
      }
    }
    // a dump asked to give way stops here: the rest of it is dropped as it arrives
    if (lastSeq >= 0 && last?.stop && this.pending.get(lastSeq) === last && last.stop()) {
      this.abandon(lastSeq);
      this.settle(lastSeq, last, new NetlinkError(ERRNO.ECANCELED, last.op, 'stopped early'));
    }
  }

  private errorOf(m: NlMessage, op: string): NetlinkError {
    const errno = -m.data.readInt32LE(0);
    let extack: string | undefined;
    if (m.flags & NLM_F.ACK_TLVS) {
      // struct nlmsgerr: int error; struct nlmsghdr msg; [payload unless CAPPED]; then TLVs
      const origLen = m.data.length >= 8 ? m.data.readUInt32LE(4) : NLMSG_HDRLEN;
      const start = 4 + (m.flags & NLM_F.CAPPED ? NLMSG_HDRLEN : (origLen + 3) & ~3);
      forEachAttr(m.data, start, m.data.length, (t, o, l) => {
        if (t === NLMSGERR_ATTR.MSG) extack = cString(m.data.subarray(o, o + l));
      });
    }
    return new NetlinkError(errno, op, extack);
  }

  private settle(seq: number, p: Pending, err: NetlinkError | null): void {
    this.pending.delete(seq);
    if (p.timer) clearTimeout(p.timer);
    this.refresh();
    if (err) p.reject(err);
    else p.resolve(p.parts);
  }

  private track(seq: number, op: string, dump: boolean): Promise<NlMessage[]> {
    return new Promise<NlMessage[]>((resolve, reject) => {
      const p: Pending = { op, parts: [], dump, interrupted: false, resolve, reject };
      if (this.timeoutMs > 0) {
        // a dump times out once a whole timeoutMs went by without a part (so after timeoutMs to 2×timeoutMs
        // of silence): the timer re-arms itself while parts arrive — a flag per part, not a timer per
        // part (a 1M-route dump has 1M parts)
        const arm = (): void => {
          p.timer = setTimeout(() => {
            if (this.pending.get(seq) !== p) return;
            if (dump && p.progress) {
              p.progress = false;
              arm();
              return;
            }
            if (dump) this.abandon(seq);
            this.settle(seq, p, new NetlinkError(ERRNO.ETIMEDOUT, op));
          }, this.timeoutMs);
          p.timer.unref();
        };
        arm();
      }
      this.pending.set(seq, p);
      this.raw.ref();
    });
  }

  private sendBuffer(buf: Buffer, op: string): void {
    try {
      this.raw.send(buf, {}, (err?: Error & { errno?: number }) => {
        try {
          if (err) this.fail(new NetlinkError(Math.abs(err.errno ?? ERRNO.EIO), `sendmsg ${op}`), false);
        } catch (e) {
          this.uncaught(e);
        }
      });
    } catch (e) {
      // the native socket is gone (closed after a poll error): fail everything waiting on it
      this.closed = true;
      this.fail(new NetlinkError(ERRNO.EBADF, `sendmsg ${op}`, (e as Error).message), false);
    }
  }

  /** Send one request with NLM_F_ACK; resolves with the reply messages (empty for a plain ACK). */
  request(type: number, flags: number, body: (w: NlWriter) => void, op: string): Promise<NlMessage[]> {
    if (this.closed) return Promise.reject(new NetlinkError(ERRNO.EBADF, op));
    const w = this.writer;
    w.reset();
    const seq = this.nextSeq();
    const start = w.beginMessage(type, flags | NLM_F.REQUEST | NLM_F.ACK, seq, this.port);
    body(w);
    w.endMessage(start);
    const done = this.track(seq, op, false);
    this.sendBuffer(w.finish(), op);
    return done;
  }

  /** Several requests in one sendmsg, each with NLM_F_ACK: the kernel runs them in order and a failed one
   *  does not stop those after it. Resolves with each one's replies or its NetlinkError, in order. */
  pipeline(reqs: readonly NlRequest[]): Promise<(NlMessage[] | NetlinkError)[]> {
    if (this.closed) return Promise.reject(new NetlinkError(ERRNO.EBADF, reqs[0]?.op ?? 'pipeline'));
    if (!reqs.length) return Promise.resolve([]);
    const w = this.writer;
    w.reset();
    const settled = reqs.map((r) => {
      const seq = this.nextSeq();
      const start = w.beginMessage(r.type, r.flags | NLM_F.REQUEST | NLM_F.ACK, seq, this.port);
      r.body(w);
      w.endMessage(start);
      return this.track(seq, r.op, false).catch((e: unknown) => {
        if (e instanceof NetlinkError) return e;
        throw e;
      });
    });
    this.sendBuffer(w.finish(), reqs.map((r) => r.op).join(', '));
    return Promise.all(settled);
  }

  /** A dump request (NLM_F_DUMP); retried up to 5 times when the kernel flags it interrupted (then the
   *  last, possibly inconsistent, answer is returned: callers resync periodically anyway), and retried
   *  while the kernel answers EBUSY (another dump still running on this socket).
   *  One dump at a time per socket (the kernel answers a second one with EBUSY): dumps queue here. */
  dump(type: number, body: (w: NlWriter) => void, op: string): Promise<NlMessage[]> {
    return this.queueDump(type, body, op);
  }

  /** A dump whose parts are handed over as they arrive and not kept (a 1M-route table is not held as
   *  1M raw messages): `start()` is called before each attempt (an interrupted dump starts over) and
   *  returns the consumer of that attempt's parts. */
  async dumpEach(type: number, body: (w: NlWriter) => void, op: string, start: () => (m: NlMessage) => void): Promise<void> {
    await this.queueDump(type, body, op, start);
  }

  /** dumpEach without a message object per part (the consumer reads the payload in place), and with
   *  `stop`, asked after each datagram: true ends the dump early — it rejects with ECANCELED, the rest
   *  of it is dropped as it arrives (or goes with the socket when that is closed). */
  async dumpRaw(type: number, body: (w: NlWriter) => void, op: string, start: () => RawPart, stop?: () => boolean): Promise<void> {
    await this.queueDump(type, body, op, undefined, { start, stop });
  }

  private queueDump(
    type: number,
    body: (w: NlWriter) => void,
    op: string,
    consumer?: () => (m: NlMessage) => void,
    raw?: RawDump,
  ): Promise<NlMessage[]> {
    const run = this.dumpQueue.then(() => this.dumpNow(type, body, op, consumer, raw));
    this.dumpQueue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async dumpNow(
    type: number,
    body: (w: NlWriter) => void,
    op: string,
    consumer?: () => (m: NlMessage) => void,
    raw?: RawDump,
  ): Promise<NlMessage[]> {
    let busy = 0;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new NetlinkError(ERRNO.EBADF, op);
      if (this.abandoned) await this.waitDrained();
      const w = this.writer;
      w.reset();
      const seq = this.nextSeq();
      const start = w.beginMessage(type, NLM_F.REQUEST | NLM_F.DUMP, seq, this.port);
      body(w);
      w.endMessage(start);
      const done = this.track(seq, op, true);
      const p = this.pending.get(seq)!;
      if (consumer) p.each = consumer();
      if (raw) {
        p.raw = raw.start();
        p.stop = raw.stop;
      }
      this.sendBuffer(w.finish(), op);
      let parts: NlMessage[];
      try {
        parts = await done;
      } catch (e) {
        // EBUSY: a dump we no longer track still runs here; wait for it (bounded), then ask again
        if (!(e instanceof NetlinkError) || e.code !== 'EBUSY' || ++busy > 50) throw e;
        attempt--;
        await new Promise((r) => setTimeout(r, Math.min(20 * busy, 500)));
        continue;
      }
      if (!p.interrupted || attempt >= 4) return parts;
    }
  }

  /** Wait until an abandoned dump has ended (or timeoutMs passed: then it is forgotten). */
  private async waitDrained(): Promise<void> {
    const a = this.abandoned;
    if (!a) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      a.drained,
      new Promise<void>((r) => {
        timer = setTimeout(r, this.timeoutMs || 30_000);
        timer.unref();
      }),
    ]);
    if (timer) clearTimeout(timer);
    if (this.abandoned === a) {
      this.abandoned = undefined;
      this.refresh();
    }
  }

  /**
   * Send many requests, packed into few datagrams, without waiting for each ACK. Returns the
   * failures (index into items, error); everything else succeeded.
   */
  async batch(items: BatchSource, op: string): Promise<{ index: number; error: NetlinkError }[]> {
    const failures: { index: number; error: NetlinkError }[] = [];
    let i = 0;
    const w = this.batchWriters.pop() ?? new NlWriter(BATCH_BYTES + 4096);
    while (i < items.count) {
      if (this.closed) throw new NetlinkError(ERRNO.EBADF, op);
      w.reset();
      const base = i;
      const first = this.seq + 1;
      while (i < items.count && w.off < BATCH_BYTES) {
        const seq = this.nextSeq();
        if (seq < first) break; // sequence wrapped: start a new window
        const start = w.beginMessage(items.type(i), items.flags(i) | NLM_F.REQUEST, seq, this.port);
        items.body(i, w);
        w.endMessage(start);
        i++;
      }
      const count = i - base;
      const window: BatchWindow = {
        first,
        last: first + count - 1,
        onError: (k, e) => failures.push({ index: base + k, error: e }),
      };
      const barrierSeq = this.nextSeq();
      const b = w.beginMessage(NLMSG.NOOP, NLM_F.REQUEST | NLM_F.ACK, barrierSeq, this.port);
      w.endMessage(b);
      this.windows.add(window);
      const done = this.track(barrierSeq, op, false);
      // in the loop, sendmsg has run when the barrier's ack comes: the writer is free again then
      this.sendBuffer(this.offLoop ? Buffer.from(w.view()) : w.view(), op);
      try {
        await done;
      } finally {
        this.windows.delete(window);
      }
    }
    // not on a failure: a send may still be queued with the buffer (it is dropped, not reused)
    this.batchWriters.push(w);
    return failures;
  }
}
