// The CNI plugin's logger: JSON lines in pino's format ({level, time, component, msg, …}) appended to
// log_file_path with one write(2) each. Not pino itself: the plugin starts once per pod, and loading
// pino would cost more than the rest of an ADD. Never writes to stdout (stdout carries the result).
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from './plugin.js';

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: 100 } as const;
type Level = keyof typeof LEVELS;

export function fileLogger(file: string, level: string, bindings: Record<string, unknown>): Logger {
  const min = LEVELS[(level in LEVELS ? level : 'info') as Level];
  let fd: number | undefined;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fd = fs.openSync(file, 'a', 0o644);
  } catch {
    fd = 2; // cannot open the log file: stderr (the runtime shows it), never stdout
  }
  const emit = (lvl: Level) => (obj: object, msg?: string) => {
    if (LEVELS[lvl] < min || fd === undefined) return;
    const o: Record<string, unknown> = { level: LEVELS[lvl], time: Date.now(), ...bindings };
    for (const [k, v] of Object.entries(obj))
      o[k] = v instanceof Error ? { type: v.name, message: v.message, stack: v.stack, ...(v as object) } : v;
    if (msg !== undefined) o.msg = msg;
    try {
      fs.writeSync(fd, `${JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}\n`);
    } catch {
      /* logging never fails a pod */
    }
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const nullLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
