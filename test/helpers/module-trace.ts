// Preload for a tabby-node under test (`NODE_OPTIONS=--import <this file's .js>`, MODULE_TRACE_FILE=<path>):
// writes what the process has loaded to MODULE_TRACE_FILE every 200 ms — the ES modules by URL (a load
// hook, which runs on node's loader thread) and node's built-in modules (process.moduleLoadList) — so a
// test can check that a feature nobody configured did not load its modules, and that configuring it did.
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
  const write = (): void => {
    const modules = fs.readFileSync(urls, 'utf8').split('\n').filter(Boolean);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify({ modules, builtins: (process as { moduleLoadList?: string[] }).moduleLoadList ?? [] }));
    fs.renameSync(`${file}.tmp`, file);
  };
  setInterval(write, 200).unref();
}

/** What a traced process has loaded so far (undefined before its first write). */
export function readTrace(file: string): { modules: string[]; builtins: string[] } | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as { modules: string[]; builtins: string[] };
  } catch {
    return undefined;
  }
}
