// The transport of an NlSocket opened with `offLoop`: the socket belongs to the native addon's netlink
// threads (src/native/nl_worker.cc), which make the sendmsg — inside which the kernel runs the request,
// holding RTNL or waiting for it — and read the replies; the JS thread only encodes and decodes. It
// stands in for node_netlink's RawNetlinkSocket with the few members NlSocket uses; each send is one
// exchange that reads until the reply ending the last message's sequence (an ACK, an error or a dump's
// NLMSG_DONE — NlSocket asks an ACK of every request and ends a batch with an acknowledged barrier).
import { EventEmitter } from 'node:events';
import { native } from '../../native/index.js';

type SendCallback = (err?: Error & { errno?: number }) => void;

/** The sequence number of the last message in `buf` (whole netlink messages back to back). */
export function lastSeqOf(buf: Buffer): number {
  let seq = 0;
  for (let o = 0; o + 16 <= buf.length; ) {
    const len = buf.readUInt32LE(o);
    if (len < 16) break;
    seq = buf.readUInt32LE(o + 8);
    o += (len + 3) & ~3;
  }
  return seq;
}

export class OffLoopRawSocket extends EventEmitter {
  private readonly fd: number;
  private readonly port: number;
  private closed = false;
  /** exchanges sent whose last answer has not come back */
  private inFlight = 0;

  constructor(
    netnsPath: string | undefined,
    /** how long an exchange waits without a reply (the caller's per-request timeout decides first) */
    private readonly timeoutMs: () => number,
  ) {
    super();
    const s = native().nlOpen(netnsPath);
    this.fd = s.fd;
    this.port = s.port;
  }

  address(): { port: number } {
    return { port: this.port };
  }

  send(buf: Buffer, _opts: object, cb: SendCallback): void {
    if (this.closed) throw new Error('netlink socket closed');
    const ms = this.timeoutMs();
    this.inFlight++;
    native().nlExchange(this.fd, buf, lastSeqOf(buf), ms > 0 ? ms + 1000 : 86_400_000, (err, replies, last) => {
      if (last) this.inFlight--;
      if (replies) this.emit('message', replies);
      if (!err) return;
      const e = err as Error & { errno?: number; syscall?: string };
      if (e.syscall === 'sendmsg') cb(e);
      // a silent kernel: the caller's own timer rejects what waited (and a late reply finds nothing)
      else if (e.errno !== 110 /* ETIMEDOUT */) this.emit('error', e);
    });
  }

  /** The addon keeps the process alive while an exchange is queued or running. */
  ref(): void {}
  unref(): void {}

  addMembership(): void {
    throw new TypeError('an off-loop netlink socket cannot join multicast groups');
  }
  dropMembership(): void {}
  setRecvBufferSize(): void {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Nothing left on a thread (the usual case): close here, without a trip to the netlink threads.
    if (this.inFlight === 0) native().closeFd(this.fd);
    else native().nlClose(this.fd);
  }
}
