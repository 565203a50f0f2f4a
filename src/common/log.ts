// One logger factory for all of tabby: JSON lines in pino's format by default, human-readable on a TTY.
// Components take a child logger: log('bgp', {peer: '10.0.0.2'}).
// The JSON lines come from json-log.ts, a synchronous writer of pino's line format ({"level":30,"time":…,
// bindings, fields, "msg":…}): pino itself (sonic-boom, thread-stream and worker_threads, assert, its
// serializers) is loaded only for the pretty output on a TTY — in an agent that logs a few lines a
// minute its modules cost ~2 MB of the process's fixed memory.
import { createRequire } from 'node:module';
import type { LevelWithSilent, Logger as PinoLogger } from 'pino';
import { jsonLogger, type Logger } from './json-log.js';
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
  root = pretty ? prettyLogger(level, dest) : jsonLogger(level, dest);
  return root;
}

/** pino with pino-pretty as its transport (a worker thread), loaded only here. */
function prettyLogger(level: LevelWithSilent, dest: string | number): Logger {
  const { pino } = createRequire(import.meta.url)('pino') as typeof import('pino');
  const logger: PinoLogger = pino({
    level,
    base: undefined,
    transport: { target: 'pino-pretty', options: { destination: dest, colorize: true } },
  });
  return logger;
}

/** A component-scoped child logger. Before configureLogging(), logs go to stderr at TABBY_LOG_LEVEL or 'silent' under tests. */
export function log(component: string, bindings: Record<string, unknown> = {}): Logger {
  // Modules make loggers at import time, before an entry point has checked TABBY_LOG_LEVEL: a bad
  // value must not crash here (the entry point reports it as a configuration error).
  root ??= jsonLogger(safeLogLevel(process.env.TABBY_LOG_LEVEL, process.env.TAP ? 'silent' : 'info'), 2);
  return root.child({ component, ...bindings });
}
