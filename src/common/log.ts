// One logger factory for all of tabby: pino, JSON by default, human-readable on a TTY.
// Components take a child logger: log('bgp', {peer: '10.0.0.2'}).
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

let root: Logger | undefined;

export interface LogOptions {
  level?: LevelWithSilent;
  /** Write to this file descriptor or path instead of stderr (the CNI plugin must never log to stdout). */
  destination?: string | number;
  pretty?: boolean;
}

/** Configure the root logger once, at an entry point (agent/main.ts, cli/main.ts, cni/main.ts). */
export function configureLogging(opts: LogOptions = {}): Logger {
  const level = opts.level ?? (process.env.TABBY_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
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
    const level = (process.env.TABBY_LOG_LEVEL as LevelWithSilent | undefined) ?? (process.env.TAP ? 'silent' : 'info');
    root = pino({ level, base: undefined }, pino.destination({ dest: 2, sync: true }));
  }
  return root.child({ component, ...bindings });
}
