// tabby's JSON log lines, written synchronously to a file descriptor or file: pino's line format, so every
// reader of tabby's logs (tests, the CNI harness, jq recipes) sees what pino wrote before —
// {"level":30,"time":<ms>,<child bindings>,<the call's fields>,"msg":"…"}, levels trace 10 … fatal 60, an
// `err` field that is an Error as {type, message, stack, …its own fields} (pino's std serializer), an
// Error as the first argument logged as {err} with its message as msg. test/unit/common/json-log.test.ts
// compares the lines with pino's for the same calls. Printf-style extra arguments are not supported
// (tabby passes none).
import fs from 'node:fs';
import path from 'node:path';

/** The levels pino names, with its numbers. */
const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
type Level = keyof typeof LEVELS;

export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/** What tabby's components use of a logger (pino's Logger has all of it: tests may pass one). */
export interface Logger {
  level: string;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: Record<string, unknown>): Logger;
  /** this logger's bindings and its parents' */
  bindings(): Record<string, unknown>;
}

/** A logger at `level` ('silent': nothing) writing to fd `dest` or appending to the file `dest`. */
export function jsonLogger(level: string, dest: string | number): Logger {
  return new JsonLogger(level, writerTo(dest), {}, '');
}

class JsonLogger implements Logger {
  private readonly min: number;
  readonly trace: LogFn;
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
  readonly fatal: LogFn;

  constructor(
    readonly level: string,
    private readonly write: (line: string) => void,
    private readonly bound: Record<string, unknown>,
    /** the same as `,"k":v…` */
    private readonly boundText: string,
  ) {
    this.min = level in LEVELS ? LEVELS[level as Level] : Number.POSITIVE_INFINITY;
    const at = (l: Level): LogFn => (LEVELS[l] < this.min ? noop : (obj: object | string, msg?: string) => this.line(LEVELS[l], obj, msg));
    this.trace = at('trace');
    this.debug = at('debug');
    this.info = at('info');
    this.warn = at('warn');
    this.error = at('error');
    this.fatal = at('fatal');
  }

  child(bindings: Record<string, unknown>): Logger {
    return new JsonLogger(this.level, this.write, { ...this.bound, ...bindings }, this.boundText + fields(bindings));
  }

  bindings(): Record<string, unknown> {
    return { ...this.bound };
  }

  private line(level: number, obj: object | string, msg?: string): void {
    let text = msg;
    let rest = '';
    if (typeof obj === 'string') text = obj;
    else if (obj instanceof Error) {
      text ??= obj.message;
      rest = fields({ err: obj });
    } else if (obj !== null) rest = fields(obj as Record<string, unknown>);
    const m = text === undefined ? '' : `,"msg":${json(text)}`;
    this.write(`{"level":${level},"time":${Date.now()}${this.boundText}${rest}${m}}\n`);
  }
}

function noop(): void {}

/** `,"k":v` for each field JSON keeps (undefined and functions are left out, as JSON.stringify does). */
function fields(o: Record<string, unknown>): string {
  let out = '';
  for (const k of Object.keys(o)) {
    const v = k === 'err' && o[k] instanceof Error ? serializeError(o[k]) : o[k];
    const s = json(v);
    if (s !== undefined) out += `,${JSON.stringify(k)}:${s}`;
  }
  return out;
}

/** pino-std-serializers' err: type, message, stack, then the error's own enumerable fields. */
function serializeError(e: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: e.constructor?.name ?? 'Error', message: e.message, stack: e.stack };
  for (const k of Object.keys(e)) if (!(k in out)) out[k] = (e as unknown as Record<string, unknown>)[k];
  return out;
}

/** JSON text of v; a value JSON.stringify cannot take (a cycle, a BigInt) is written with those replaced. */
function json(v: unknown): string | undefined {
  try {
    return JSON.stringify(v);
  } catch {
    const seen = new WeakSet<object>();
    return JSON.stringify(v, (_k, x: unknown) => {
      if (typeof x === 'bigint') return x.toString();
      if (typeof x === 'object' && x !== null) {
        if (seen.has(x)) return '[Circular]';
        seen.add(x);
      }
      return x;
    });
  }
}

/** Synchronous whole-line writes; a full pipe (EAGAIN) is waited out up to a second, then the line is dropped. */
function writerTo(dest: string | number): (line: string) => void {
  let fd = typeof dest === 'number' ? dest : -1;
  const file = typeof dest === 'string' ? dest : undefined;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  return (line: string) => {
    if (fd < 0 && file !== undefined) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fd = fs.openSync(file, 'a');
    }
    let buf = Buffer.from(line);
    for (let waited = 0; buf.length > 0; ) {
      try {
        buf = buf.subarray(fs.writeSync(fd, buf));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || waited >= 1000) return;
        Atomics.wait(pause, 0, 0, 10);
        waited += 10;
      }
    }
  };
}
