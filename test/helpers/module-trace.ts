// Preload for a tabby-node under test (`NODE_OPTIONS=--import <this file's .js>`, MODULE_TRACE_FILE=<path>):
// writes what the process has loaded to MODULE_TRACE_FILE every 200 ms — the ES modules by URL (a load
// hook, which runs on node's loader thread) and node's built-in modules (process.moduleLoadList) — so a
// test can check that a feature nobody configured did not load its modules, and that configuring it did.
// It also lists where the process formatted a Date through V8 (toISOString, toUTCString, toString…): the
// first such call loads ICU's time-zone data (~1 MB resident, see src/common/iso-time.ts).
import fs from 'node:fs';
import { register } from 'node:module';

const file = process.env.MODULE_TRACE_FILE;
if (file) {
  const urls = `${file}.urls`;
  fs.writeFileSync(urls, '');
  register(
    `data:text/javascript,${encodeURIComponent(`import fs from 'node:fs';
export async function load(url, context, next) {
  fs.appendFileSync(${JSON.stringify(urls)}, url + '\\n');
  return next(url, context);
}`)}`,
  );
  const dates: string[] = [];
  const proto = Date.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const m of [
    'toISOString',
    'toJSON',
    'toUTCString',
    'toString',
    'toDateString',
    'toTimeString',
    'toLocaleString',
    'getTimezoneOffset',
  ]) {
    const original = proto[m]!;
    proto[m] = function (this: Date, ...a: unknown[]) {
      if (dates.length < 20) dates.push(`${m} ${(new Error().stack ?? '').split('\n').slice(2, 5).join(' ').replace(/\s+/g, ' ')}`);
      return original.apply(this, a);
    };
  }
  const write = (): void => {
    const modules = fs.readFileSync(urls, 'utf8').split('\n').filter(Boolean);
    const builtins = (process as { moduleLoadList?: string[] }).moduleLoadList ?? [];
    fs.writeFileSync(`${file}.tmp`, JSON.stringify({ modules, builtins, dates }));
    fs.renameSync(`${file}.tmp`, file);
  };
  setInterval(write, 200).unref();
}

/** What a traced process has loaded so far (undefined before its first write). */
export function readTrace(file: string): { modules: string[]; builtins: string[]; dates: string[] } | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as { modules: string[]; builtins: string[]; dates: string[] };
  } catch {
    return undefined;
  }
}
