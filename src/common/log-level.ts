// Log levels as tabby accepts them everywhere (TABBY_LOG_LEVEL, the CNI netconf's log_level, the
// agent's --log-level): pino's names. Kept apart from log.ts so the CNI plugin checks a level without
// loading pino. A bad level is a configuration error that names where it came from, never a crash.
import { echo } from './echo.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export class LogLevelError extends Error {
  readonly code = 'ECONFIG';
  constructor(
    readonly variable: string,
    value: string,
  ) {
    super(`invalid ${variable}=${echo(value)}: expected one of ${LOG_LEVELS.join(', ')}`);
    this.name = 'LogLevelError';
  }
}

/** The level named by `value` (case-insensitive; unset or empty = `dflt`); throws LogLevelError. */
export function parseLogLevel(value: string | undefined, variable: string, dflt: LogLevel = 'info'): LogLevel {
  if (value === undefined || value.trim() === '') return dflt;
  const v = value.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new LogLevelError(variable, value);
  return v as LogLevel;
}

/** Like parseLogLevel but never throws (for a logger made before the entry point checked its config). */
export function safeLogLevel(value: string | undefined, dflt: LogLevel): LogLevel {
  try {
    return parseLogLevel(value, 'TABBY_LOG_LEVEL', dflt);
  } catch {
    return dflt;
  }
}
