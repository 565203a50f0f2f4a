// A child node process running an ES module given as text, for tests that measure a process of their own
// (memory, modules loaded, malloc): `env -u NODE_OPTIONS` because tap preloads its own module into every
// child through NODE_OPTIONS.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';

export interface ModuleRunOptions {
  /** run with --expose-gc (the child calls gc() to measure what is live) */
  exposeGc?: boolean;
  /** kill the child after this many ms */
  timeout?: number;
}

export function runModule(code: string, opts: ModuleRunOptions = {}): SpawnSyncReturns<string> {
  const flags = opts.exposeGc ? ['--expose-gc'] : [];
  return spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, ...flags, '--input-type=module', '-e', code], {
    encoding: 'utf8',
    ...(opts.timeout !== undefined ? { timeout: opts.timeout } : {}),
  });
}

/** The child's last line of output, as JSON (what it measured; earlier lines are free for logging). */
export function lastJsonLine<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split('\n').pop()!) as T;
}
