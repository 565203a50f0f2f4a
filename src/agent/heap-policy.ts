// tabby-node's V8 heap policy, set by the process itself as main.ts's first import, so every way of
// starting it (systemd unit, container, host install, npm bin, lab, benchmarks, tests) runs with the
// same flags and none of the launchers can drift. Only flags V8 reads while it runs work here (the
// heap is already configured when this runs; test/unit/agent/heap-policy.test.ts checks the effect):
//   --semi-space-growth-factor=1: the young generation stays at its initial 2 × 1 MB instead of
//     doubling up to 2 × 16 MB under a burst of UPDATEs and keeping that size (no CPU cost measured);
//   --heap-growing-percent=20 while the live heap is small: after a full GC the old space may grow
//     20 % over what survived before the next one, not V8's 1.1–4× (chosen by GC speed) — filling a
//     route table promotes decoding garbage that otherwise piles up to 2–3× the live heap. Above
//     TIGHT_HEAP_MAX of live heap (a table of ~1M routes) V8's own growth again: there a full GC costs
//     ~0.5 s and 20 % steps made a 1M-route ingest 1.7× the CPU for 23 % less peak RSS.
//   the heap pacer (native addon, src/native/heap_pacer.cc): V8 starts a major GC only once the old
//     generation has grown by at least 8 MB (at an agent's 15–30 MB of live heap that step, not the 20 %,
//     sets the rhythm) and its external memory (every ArrayBuffer: grown typed-array columns, netlink and
//     decode buffers) by 64 MB. The pacer asks for one once either has grown by PACER_FACTOR of what the
//     last major GC left of it, at least PACER_MIN_STEP, while the old generation is under PACER_MAX_OLD.
//     (--optimize-for-size would give V8 a 2 MB step, but it makes every major GC a memory-reducing
//     one, after which V8's step is 8 MB again: no effect — see heap_pacer.cc.)
// Measured (test/bench/agent-ingest.ts, one feeder, load 10–20): 200k routes peak RSS 320 → 204 MB for
// ~10 % more CPU; 1M with the young generation alone 860 → 805 MB at the same CPU.
// A flag of the same name given on the command line or in NODE_OPTIONS wins (an operator's choice); an
// operator's --heap-growing-percent also means no pacer.
import v8 from 'node:v8';
import { native } from '../native/index.js';

export const AGENT_V8_FLAGS: readonly string[] = ['--semi-space-growth-factor=1', '--heap-growing-percent=20'];

/** Live heap (bytes) above which the old space grows as V8 chooses; below half of it, 20 % steps again. */
export const TIGHT_HEAP_MAX = 256 * 2 ** 20;

/** The pacer's growth between major GCs: this fraction of what the last one left (old generation; external memory)… */
export const PACER_FACTOR = 0.2;
/** …and at least this many bytes */
export const PACER_MIN_STEP = 1 << 20;
/** Old generation (bytes, after a major GC) above which the pacer stands aside: V8's own 20 % steps are
 *  the same from 40 MB (its 8 MB minimum / 0.2) and paced GCs of a 100+ MB heap cost (1M routes: 1.5× CPU). */
export const PACER_MAX_OLD = 48 * 2 ** 20;

/** Flags that set the same thing: an operator's --max-semi-space-size means they chose the young generation. */
const SAME: Record<string, readonly string[]> = {
  'semi-space-growth-factor': ['semi-space-growth-factor', 'max-semi-space-size', 'min-semi-space-size', 'max-heap-size'],
  'heap-growing-percent': ['heap-growing-percent'],
};

/** The flags of `wanted` the operator did not set themselves (`given`: execArgv and NODE_OPTIONS words). */
export function flagsToSet(wanted: readonly string[], given: readonly string[]): string[] {
  const name = (f: string): string => f.replace(/^--/, '').split('=')[0]!.replace(/_/g, '-');
  const taken = new Set(given.filter((g) => g.startsWith('--')).map(name));
  return wanted.filter((f) => !(SAME[name(f)] ?? [name(f)]).some((n) => taken.has(n)));
}

/** Whether the old space should grow in 20 % steps, given the live heap and the current choice (with hysteresis). */
export function tightGrowth(usedHeap: number, tight: boolean): boolean {
  return tight ? usedHeap < TIGHT_HEAP_MAX : usedHeap < TIGHT_HEAP_MAX / 2;
}

/** Start (or stop, on=false) the heap pacer; false when the addon cannot (built before it, or not built). */
export function heapPacer(on: boolean): boolean {
  try {
    return native().heapPacer?.(on ? PACER_FACTOR : 0, PACER_MIN_STEP, PACER_MAX_OLD) ?? false;
  } catch {
    return false;
  }
}

const toSet = flagsToSet(AGENT_V8_FLAGS, [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]);
for (const f of toSet) v8.setFlagsFromString(f);
if (toSet.includes('--heap-growing-percent=20')) {
  let tight = true;
  heapPacer(true);
  setInterval(() => {
    const next = tightGrowth(v8.getHeapStatistics().used_heap_size, tight);
    if (next === tight) return;
    tight = next;
    v8.setFlagsFromString(`--heap-growing-percent=${tight ? 20 : 0}`);
    heapPacer(tight);
  }, 1000).unref();
}
