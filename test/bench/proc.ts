// What the process benchmarks (agent-ingest, bgp-ingest, rr-fanout) share: a teardown list run at the
// end or on error, and a daemon's memory and CPU read from /proc — the same way for tabby and the anchor.
import type { ChildProcess } from 'node:child_process';
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

/** Stop a daemon the benchmark started when the run ends: SIGTERM, then SIGKILL after `graceMs`. */
export function stopOnTeardown(p: ChildProcess, graceMs = 10_000): void {
  t.teardown(async () => {
    if (p.exitCode !== null) return;
    p.kill('SIGTERM');
    await Promise.race([new Promise((r) => p.once('exit', r)), sleep(graceMs)]);
    p.kill('SIGKILL');
  });
}

/** The JSON lines a benchmark child prints on stdout, collected as they arrive (`onLine` sees each). */
export function jsonLines(p: ChildProcess, onLine?: (l: Record<string, number | string>) => void): Record<string, number | string>[] {
  const lines: Record<string, number | string>[] = [];
  let buf = '';
  p.stdout!.on('data', (d: Buffer) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const l = JSON.parse(buf.slice(0, i)) as Record<string, number | string>;
      onLine?.(l);
      lines.push(l);
      buf = buf.slice(i + 1);
    }
  });
  return lines;
}
