// Typed entry to tabby's native addon (src/native/tabby_native.cc), built by node-gyp on `npm ci`.
// Only the few syscalls Node lacks: setns for a callback (netns.Do), setsockopt, pre-connect sockets,
// and libnftables in the process (nft transactions without a process each).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

export interface TabbyNative {
  /** Enter the netns at `nsPath` on this thread, run `fn` synchronously, return to the original netns. */
  withNetns<T>(nsPath: string, fn: () => T): T;
  setsockoptInt(fd: number, level: number, option: number, value: number): void;
  getsockoptInt(fd: number, level: number, option: number): number;
  setsockoptBuffer(fd: number, level: number, option: number, value: Buffer): void;
  /** A non-blocking, close-on-exec TCP socket; options can be set before connect. */
  socketTcp(family: 4 | 6): number;
  /** A non-blocking, close-on-exec UDP socket (BFD). */
  socketUdp(family: 4 | 6): number;
  /** Kernel filter: only datagrams with IP TTL / IPv6 hop limit exactly `ttl` are delivered (RFC 5881 §5). */
  attachTtlFilter(fd: number, family: 4 | 6, ttl: number): void;
  bindFd(fd: number, ip: string, port: number): void;
  /** true: connected at once; false: in progress (wait for writable, then check socketError). */
  connectNonBlocking(fd: number, ip: string, port: number): boolean;
  socketError(fd: number): number;
  closeFd(fd: number): void;
  /** The local address the kernel would use toward `ip` (UDP connect + getsockname; no packet is sent).
   *  Synchronous, so it can run inside withNetns. Throws (errno ENETUNREACH…) when there is no route. */
  udpSourceFor(ip: string, port: number): string;
  gettid(): number;
  /** Non-blocking flock(2): true when taken (or released, for 'un'), false when held by someone else.
   *  Released by the kernel when the process dies or the fd is closed. */
  flock(fd: number, op: 'sh' | 'ex' | 'un'): boolean;
  /** Blocking flock(2) on a libuv worker thread: cb(null) once held, cb(err) on failure.
   *  At most one pending call per fd; it cannot be cancelled (release the lock if no longer wanted). */
  flockWait(fd: number, op: 'sh' | 'ex', cb: (err: Error | null) => void): void;
  /** Create a network namespace bind-mounted at /var/run/netns/<name> (like `ip netns add`); returns its path. EEXIST if taken. */
  createNetns(name: string): string;
  /** Unmount and remove /var/run/netns/<name> (like `ip netns del`); false when it did not exist. */
  deleteNetns(name: string): boolean;
  /** Move the calling thread into the netns at `path` for good (for a process that lives in one netns, e.g. a lab agent).
   *  Only the main thread moves: libuv's thread pool (dns.lookup, fs) stays where it was. */
  enterNetns(path: string): void;
  /** malloc_trim(0): free malloc pages back to the kernel; true when some were (absent in an addon built before it). */
  mallocTrim?(): boolean;
  /** mallopt M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (bytes): fixed, not raised by glibc as blocks are freed;
   *  arenaMax: M_ARENA_MAX (an addon built before it ignores it). */
  mallocTune?(mmapThreshold: number, trimThreshold: number, arenaMax?: number): boolean;
  /** When V8's major GC starts (heap_pacer.cc): once the old generation or the external memory has grown by
   *  max(factor × what the last major GC left of it, minStep) bytes, while the old generation is under maxOld
   *  (0: always); factor 0 stops it. Absent in an addon built before it. */
  heapPacer?(factor: number, minStep: number, maxOld?: number): boolean;
  /** How often the pacer asked for a major GC, and the major GCs that ran while it was installed. */
  heapPacerStats?(): { requests: number; majors: number };
  /** The fd of this process's netlink socket bound to `portId`, or -1. */
  netlinkFd(portId: number): number;
  /** A libnftables context in the netns at `netnsPath` (default: the calling thread's); null when
   *  libnftables.so.1 cannot be loaded (nftLoadError() says why). */
  nftOpen(netnsPath?: string): NftHandle | null;
  /** One `nft -f -` transaction in the context, on a libuv worker thread: cb(null, '') when committed,
   *  cb(err, nft's error text) when nft refused it (nothing changed). */
  nftRun(h: NftHandle, script: string, cb: (err: Error | null, errorText: string) => void): void;
  nftLoadError(): string;
  /** A NETLINK_ROUTE socket for nlExchange, created inside the netns at `netnsPath` (default: the calling
   *  thread's); EXT_ACK and CAP_ACK on. */
  nlOpen(netnsPath?: string): { fd: number; port: number };
  /** On the addon's netlink threads: send `buf` (whole messages) in one sendmsg, then read until the
   *  NLMSG_ERROR/NLMSG_DONE of sequence `lastSeq`. cb per chunk of replies (whole datagrams back to
   *  back), `last` on the final call; err (errno, syscall) when sendmsg/recvmsg failed or nothing arrived
   *  for timeoutMs. One fd's exchanges run in order, one at a time. */
  nlExchange(
    fd: number,
    buf: Buffer,
    lastSeq: number,
    timeoutMs: number,
    cb: (err: Error | null, replies: Buffer | null, last: boolean) => void,
  ): void;
  /** Close the socket after its queued exchanges. */
  nlClose(fd: number): void;
}

/** An open libnftables context (opaque). */
export type NftHandle = { readonly __nft: unique symbol };

let loaded: TabbyNative | undefined;

/** The addon, loaded once. Throws a clear error when it was not built (run `npm ci`). */
export function native(): TabbyNative {
  if (loaded) return loaded;
  const here = path.dirname(fileURLToPath(import.meta.url));
  // Works from src/native (ts) and dist/src/native (compiled): find the repo's src/native/build.
  const candidates = [
    path.join(here, 'build/Release/tabby_native.node'),
    path.resolve(here, '../../../src/native/build/Release/tabby_native.node'),
  ];
  const file = candidates.find((f) => fs.existsSync(f));
  if (!file) throw new Error(`tabby native addon not built (looked in ${candidates.join(', ')}); run "npm ci" or "make deps"`);
  loaded = createRequire(import.meta.url)(file) as TabbyNative;
  return loaded;
}

// Socket option numbers (linux/in.h, linux/tcp.h)
export const SOL_IP = 0;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SOL_TCP = 6;
export const SOL_IPV6 = 41;
export const IP_TTL = 2;
export const IP_MINTTL = 21;
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_MINHOPCOUNT = 73;
export const TCP_MD5SIG = 14;
