// Network namespaces and processes for the lab. Namespaces are bind-mounted under /var/run/netns
// (the iproute2 convention, so `ip netns`/`ip -n` can look at them). A process is started INSIDE a
// namespace by forking while the calling thread is in it (native withNetns around spawn: a child
// inherits the forking thread's netns) — no `ip netns exec`, and the same for `lab exec`, the CNI
// plugin (run in the node's namespace as containerd runs it in the host's) and ping.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';

export const NETNS_DIR = '/var/run/netns';
export const netnsPath = (name: string): string => path.join(NETNS_DIR, name);

/** Create a named network namespace (native addon: unshare + bind mount, like `ip netns add`). */
export function createNetns(name: string): string {
  return native().createNetns(name);
}

/** Delete a named network namespace; a missing one is fine. */
export function deleteNetns(name: string): boolean {
  return native().deleteNetns(name);
}

export function listNetns(prefix: string): string[] {
  try {
    return fs
      .readdirSync(NETNS_DIR)
      .filter((n) => n.startsWith(prefix))
      .sort();
  } catch {
    return [];
  }
}

/** Run `fn` synchronously with the calling thread inside the namespace. */
export function inNetns<T>(name: string, fn: () => T): T {
  return native().withNetns(netnsPath(name), fn);
}

/** Spawn a process inside a namespace (the fork happens while this thread is in it). */
export function spawnIn(netns: string, command: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return inNetns(netns, () => spawn(command, args, opts));
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Spawn inside a namespace, feed `input`, collect output, wait (with a deadline) for the exit. */
export function runIn(
  netns: string,
  command: string,
  args: readonly string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnIn(netns, command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin!.on('error', () => {
      /* the child may exit before reading */
    });
    child.stdin!.end(opts.input ?? '');
  });
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks): with the pid, it identifies one process. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** Is this exact process (pid + start time) still alive (and not a zombie)? */
export function processAlive(pid: number, startTime: string): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[0] !== 'Z' && rest[19] === startTime;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Only touches the exact process. */
export async function stopProcess(pid: number, startTime: string, graceMs = 5000): Promise<void> {
  if (!processAlive(pid, startTime)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid, startTime)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (processAlive(pid, startTime)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    const hard = Date.now() + 2000;
    while (Date.now() < hard && processAlive(pid, startTime)) await new Promise((r) => setTimeout(r, 20));
  }
}
