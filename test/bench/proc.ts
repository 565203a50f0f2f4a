// What the process benchmarks (agent-ingest, bgp-ingest, rr-fanout) share: a teardown list run at the
// end or on error, and a daemon's memory and CPU read from /proc — the same way for tabby and the anchor.
import fs from 'node:fs';

const teardowns: (() => unknown)[] = [];

export const t = {
  teardown(fn: () => unknown): void {
    teardowns.push(fn);
  },
};

/** Run the teardowns, last registered first; each is best effort. */
export async function cleanup(): Promise<void> {
  for (const fn of teardowns.splice(0).reverse()) {
    try {
      await fn();
    } catch {
      /* best effort */
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A byte count field of /proc/<pid>/status (VmRSS, VmHWM, …). */
export function procStatus(pid: number, field: string): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** CPU seconds (user + system, all threads) a process has used. */
export function cpuOf(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}
