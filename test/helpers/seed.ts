// Test helper: seeded randomness for the tests that use random input (junk streams, random splits,
// random UPDATEs, fault schedules). Each run picks a fresh seed, so the tests keep finding new cases;
// a failed test prints `re-run with TABBY_TEST_SEED=<n>` in its output (tap comment), and that
// environment variable makes every seeded test in the file draw the same numbers again. Each test's
// stream is the run seed mixed with the test's name, so one test's draws do not depend on the others'.
import { randomInt } from 'node:crypto';

export interface TestLike {
  name: string;
  passing(): boolean;
  comment(...args: unknown[]): void;
  teardown(fn: () => unknown): void;
}

export interface Rand {
  /** A float in [0, 1). */
  (): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** n random bytes. */
  bytes(n: number): Buffer;
  /** The stream's own seed (pass it to a worker process as its TABBY_TEST_SEED). */
  readonly seed: number;
}

/** The run's seed: TABBY_TEST_SEED when set (a decimal or 0x… uint32), else a random one. */
export function runSeed(): number {
  const env = process.env.TABBY_TEST_SEED;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`TABBY_TEST_SEED=${env}: not a uint32`);
    return n;
  }
  return randomInt(0, 0x1_0000_0000);
}

const fileSeed = runSeed();

/** FNV-1a of a string mixed into a seed. */
function mix(seed: number, s: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** mulberry32: small, fast, and good enough to generate test input. */
export function prng(seed: number): Rand {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 0x1_0000_0000;
  };
  const r = next as Rand;
  r.int = (n: number) => Math.floor(next() * n);
  r.bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => r.int(256)));
  Object.defineProperty(r, 'seed', { value: seed >>> 0 });
  return r;
}

/**
 * The random stream of test `t` (its name mixed into the run's seed); when `t` fails, the run's seed is
 * printed with the line to re-run it.
 */
export function seeded(t: TestLike): Rand {
  t.teardown(() => {
    if (!t.passing()) t.comment(`random input: re-run with TABBY_TEST_SEED=${fileSeed} (test "${t.name}")`);
  });
  return prng(mix(fileSeed, t.name));
}
