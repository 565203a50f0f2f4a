// `lab down`: find and stop the lab's processes, delete its namespaces and its state directory —
// from any process, with or without lab.json (everything carries the lab's prefix).
import fs from 'node:fs';
import path from 'node:path';
import { log } from '../common/log.js';
import { deleteNetns, listNetns, processStartTime, stopProcess } from './netns.js';
import { DEFAULT_LAB_PREFIX, DEFAULT_LAB_STATE_DIR, readLabState } from './state.js';

const logger = log('lab');

/** The last non-empty line of a log file (for error messages), or a placeholder. */
export function lastLogLine(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    return (lines[lines.length - 1] ?? '').slice(0, 400) || 'empty log';
  } catch {
    return `no log at ${file}`;
  }
}

/** Processes carrying TABBY_LAB_PREFIX=<prefix> in their environment (this lab's agents), by pid. */
export function findLabProcesses(prefix: string): { pid: number; startTime: string }[] {
  const found: { pid: number; startTime: string }[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const env = fs.readFileSync(`/proc/${d}/environ`, 'latin1').split('\0');
      if (env.includes(`TABBY_LAB_PREFIX=${prefix}`)) {
        const st = processStartTime(Number(d));
        if (st) found.push({ pid: Number(d), startTime: st });
      }
    } catch {
      /* gone or not readable */
    }
  }
  return found;
}

/**
 * `lab down`: stop this lab's processes (recorded pids, and any process marked with its prefix),
 * delete every namespace named <prefix>-*, remove the state directory. Safe to run twice.
 */
export async function destroyLab(opts: { prefix?: string; stateDir?: string } = {}): Promise<{ processes: number; namespaces: string[] }> {
  const stateDir = path.resolve(opts.stateDir ?? DEFAULT_LAB_STATE_DIR);
  const state = readLabState(stateDir);
  const prefix = opts.prefix ?? state?.prefix ?? DEFAULT_LAB_PREFIX;
  const procs = new Map<number, string>();
  for (const n of state?.nodes ?? []) if (n.agent) procs.set(n.agent.pid, n.agent.startTime);
  for (const p of findLabProcesses(prefix)) procs.set(p.pid, p.startTime);
  await Promise.all([...procs].map(([pid, st]) => stopProcess(pid, st, 5000)));
  const namespaces = listNetns(`${prefix}-`);
  // pods first, then nodes, the router, the underlay
  const order = (n: string): number => (n.includes('-pod-') ? 0 : n.endsWith('-underlay') ? 3 : n.endsWith('-router') ? 2 : 1);
  for (const ns of [...namespaces].sort((a, b) => order(a) - order(b))) {
    try {
      deleteNetns(ns);
    } catch (err) {
      logger.warn({ netns: ns, err: (err as Error).message }, 'cannot delete namespace');
    }
  }
  // Only a directory that is recognisably a lab's (never an arbitrary --state-dir such as /).
  const base = path.basename(stateDir);
  if (stateDir !== '/' && (fs.existsSync(path.join(stateDir, 'lab.json')) || base.includes('tabby-lab') || base.startsWith(prefix))) {
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
  return { processes: procs.size, namespaces };
}
