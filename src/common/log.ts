// One logger factory for all of tabby: pino, JSON by default, human-readable on a TTY.
// Components take a child logger: log('bgp', {peer: '10.0.0.2'}).
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { parseLogLevel, safeLogLevel } from './log-level.js';

export type { Logger };

let root: Logger | undefined;

export interface LogOptions {
  level?: LevelWithSilent;
  /** Write to this file descriptor or path instead of stderr (the CNI plugin must never log to stdout). */
  destination?: string | number;
  pretty?: boolean;
}

/** Configure the root logger once, at an entry point (agent/main.ts, cli/main.ts, cni/main.ts).
 *  Throws LogLevelError (a configuration error naming TABBY_LOG_LEVEL) for a level pino does not know. */
export function configureLogging(opts: LogOptions = {}): Logger {
  const level = opts.level ?? parseLogLevel(process.env.TABBY_LOG_LEVEL, 'TABBY_LOG_LEVEL');
  const dest = opts.destination ?? 2;
  const pretty = opts.pretty ?? (typeof dest === 'number' && Boolean(process.stderr.isTTY));
  root = pretty
    ? pino({ level, base: undefined, transport: { target: 'pino-pretty', options: { destination: dest, colorize: true } } })
    : pino({ level, base: undefined }, pino.destination({ dest, sync: true, mkdir: typeof dest === 'string' }));
  return root;
}

/** A component-scoped child logger. Before configureLogging(), logs go to stderr at TABBY_LOG_LEVEL or 'silent' under tests. */
export function log(component: string, bindings: Record<string, unknown> = {}): Logger {
  if (!root) {
    // Modules make loggers at import time, before an entry point has checked TABBY_LOG_LEVEL: a bad
    // value must not crash here (the entry point reports it as a configuration error).
    const level = safeLogLevel(process.env.TABBY_LOG_LEVEL, process.env.TAP ? 'silent' : 'info');
    root = pino({ level, base: undefined }, pino.destination({ dest: 2, sync: true }));
  }
  return root.child({ component, ...bindings });
}
