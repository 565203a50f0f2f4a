// Gives malloc's free pages back to the kernel when tabby-node goes quiet. glibc returns only the top of
// its main heap by itself: the buffers of start-up (module loading, the first datastore list) and of a bulk
// route change leave free holes that stay resident. Every CHECK_MS (an unref'd timer) the agent looks at
// its CPU time and RSS; when the last window was quiet (under QUIET_CPU_MS of CPU) and RSS grew by more than
// GROWTH_BYTES since the last trim, malloc_trim(0) (native addon) runs once — it costs ~1 ms and is not
// repeated while nothing changes. Measured: an idle agent of the lab (3 peers, 1 block) 2.4 MB less.
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

export const CHECK_MS = 10_000;
/** CPU time (ms) in one window under which the process counts as quiet */
export const QUIET_CPU_MS = 200;
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

/** Whether to trim now (pure): quiet during the last window, and RSS has grown since the last trim. */
export function shouldTrim(cpuMsInWindow: number, rss: number, rssAfterLastTrim: number): boolean {
  return cpuMsInWindow < QUIET_CPU_MS && rss > rssAfterLastTrim + GROWTH_BYTES;
}

/** Start the quiet-time trim; stop() ends it. Does nothing when the addon has no mallocTrim (an old build). */
export function startMemoryTrim(): { stop(): void } {
  let trim: (() => boolean) | undefined;
  try {
    const n = native();
    if (n.mallocTrim) trim = () => n.mallocTrim!();
  } catch {
    trim = undefined;
  }
  if (!trim) return { stop() {} };
  let lastCpu = process.cpuUsage();
  let after = 0;
  const timer = setInterval(() => {
    const cpu = process.cpuUsage(lastCpu);
    lastCpu = process.cpuUsage();
    const rss = process.memoryUsage.rss();
    if (!shouldTrim((cpu.user + cpu.system) / 1000, rss, after)) return;
    trim!();
    after = process.memoryUsage.rss();
  }, CHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
