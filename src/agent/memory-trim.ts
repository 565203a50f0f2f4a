// Gives malloc's free pages back to the kernel as tabby-node runs. glibc returns only the top of its main
// heap by itself: the buffers of start-up (module loading, the first datastore list) and of a bulk route
// change (socket reads, netlink replies, decode slabs: ArrayBuffers under the mmap threshold come from
// malloc) leave free holes that stay resident. Every CHECK_MS (an unref'd timer) the agent looks at its
// RSS; when it grew by more than GROWTH_BYTES since the last trim, malloc_trim(0) (native addon) runs — busy
// or not: a 200k-route feed and withdrawal freed 12–16 MB of malloc pages over its ~14 trims of ~0.2 ms
// each, and its peak RSS fell ~2 MB (trimming only once quiet came after the peak). It is not repeated
// while nothing grows. Measured before that: an idle agent of the lab (3 peers, 1 block) 2.4 MB less.
// tuneMalloc() (first thing tabby-node does) fixes malloc's mmap threshold at 128 KB: glibc would raise it
// to the size of every large buffer freed (netlink batches, socket reads), after which such buffers come
// from the heap and leave holes there — at 200k routes the main heap peaked at 20 MB, 8 MB fixed. It also
// caps malloc at ARENA_MAX arenas: glibc gives a thread its own arena whenever the others' are busy (up
// to 16 here), each with its own free pages — an idle agent held ~0.8 MB in 4–5 of them, 0.4 MB capped;
// main.ts calls it before the agent's modules load, as threads keep the arena they first got.
// settleAfterStart() (once, when start-up is done): a full GC and a trim — start-up's garbage (module
// loading, the first datastore list, ~4 MB of RSS) is otherwise collected only by V8's memory reducer
// ~8 s later, or during the first burst of routes, whose peak it then adds to.
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { native } from '../native/index.js';

export const CHECK_MS = 1000;
/** RSS growth since the last trim that makes a trim worth it */
export const GROWTH_BYTES = 1 << 20;

export const MMAP_THRESHOLD = 128 * 1024;
export const TRIM_THRESHOLD = 256 * 1024;
/** malloc arenas: the main thread's and one that every other thread shares (glibc: up to 8 per core) */
export const ARENA_MAX = 2;

/** Fixed malloc thresholds for this process (see above); false when the addon cannot (an old build). */
export function tuneMalloc(): boolean {
  try {
    return native().mallocTune?.(MMAP_THRESHOLD, TRIM_THRESHOLD, ARENA_MAX) ?? false;
  } catch {
    return false;
  }
}

/** A full GC, then malloc_trim: the process at its live size once start-up is done (~10 ms). */
export function settleAfterStart(): void {
  // gc() without --expose-gc on the command line: a context made while the flag is set has it
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  v8.setFlagsFromString('--no-expose-gc');
  gc();
  try {
    native().mallocTrim?.();
  } catch {
    // an addon built before mallocTrim: the GC alone
  }
}

/** Whether to trim now (pure): RSS has grown since the last trim. */
export function shouldTrim(rss: number, rssAfterLastTrim: number): boolean {
  return rss > rssAfterLastTrim + GROWTH_BYTES;
}

/** Start the trim (every CHECK_MS, when RSS grew); stop() ends it. Does nothing when the addon has no mallocTrim (an old build). */
export function startMemoryTrim(): { stop(): void } {
  let trim: (() => boolean) | undefined;
  try {
    const n = native();
    if (n.mallocTrim) trim = () => n.mallocTrim!();
  } catch {
    trim = undefined;
  }
  if (!trim) return { stop() {} };
  let after = 0;
  const timer = setInterval(() => {
    if (!shouldTrim(process.memoryUsage.rss(), after)) return;
    trim!();
    after = process.memoryUsage.rss();
  }, CHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
