// tabby's JSON log lines (src/common/json-log.ts) against pino's for the same calls: the same fields in the
// same order, levels, child bindings, errors; and what an agent that logs JSON loads: none of pino's
// modules (sonic-boom, thread-stream, worker_threads), which only the pretty TTY output needs.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { jsonLogger, type Logger } from '../../../src/common/json-log.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const err = Object.assign(new Error('boom'), { code: 'ENOENT', errno: -2 });
const weird = new Error('weird');

/** The same calls on a logger; each child and level as a component would use them. */
function calls(l: Logger): void {
  l.info('hello');
  l.info({ a: 1, b: 'x', c: [1, { d: null }] }, 'with fields');
  l.warn({ err }, 'failed');
  l.error(weird);
  l.error(err, 'an error with a message');
  l.info({ err: 'just text', gone: undefined, f: () => 1 }, 'no error object');
  l.debug('below the level');
  l.info('quote " backslash \\ newline \n tab \t ü €');
  l.info({ n: 1 });
  const c = l.child({ component: 'bgp', peer: '10.0.0.2' });
  c.info({ state: 'Established' }, 'session up');
  c.child({ family: 'ipv4' }).fatal('nested child');
  c.trace('trace is below info');
}

/** Lines written to a temporary file by `make(file)`, with the time field checked and set to 0. */
function linesOf(make: (file: string) => Logger, t: { ok(v: boolean, m: string): void; teardown(f: () => void): void }): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tabby-json-log-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'sub', 'log');
  const before = Date.now();
  calls(make(file));
  const lines = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  return lines.map((line) => {
    const time = Number(/"time":(\d+)/.exec(line)?.[1]);
    t.ok(time >= before && time <= Date.now(), 'time is the epoch in ms');
    return line.replace(/"time":\d+/, '"time":0');
  });
}

t.test('the same lines as pino writes for the same calls', async (t) => {
  const ours = linesOf((file) => jsonLogger('info', file), t);
  const theirs = linesOf((file) => pino({ level: 'info', base: undefined }, pino.destination({ dest: file, sync: true, mkdir: true })), t);
  t.equal(ours.length, 10, 'the calls at info and above');
  t.same(ours, theirs);
});

t.test('levels: silent writes nothing, fatal only fatal; bindings', async (t) => {
  t.same(
    linesOf((file) => jsonLogger('silent', file), t),
    [],
  );
  const fatal = linesOf((file) => jsonLogger('fatal', file), t);
  t.equal(fatal.length, 1);
  t.match(fatal[0], /^\{"level":60,"time":0,"component":"bgp","peer":"10.0.0.2","family":"ipv4","msg":"nested child"\}$/);
  t.same(jsonLogger('info', 2).child({ a: 1 }).child({ b: 2 }).bindings(), { a: 1, b: 2 });
});

t.test('an agent that logs JSON loads none of pino', async (t) => {
  const log = pathToFileURL(path.resolve(here, '../../../src/common/log.js')).href;
  const code = `const { configureLogging, log } = await import(${JSON.stringify(log)});
    configureLogging({ level: 'info', pretty: false });
    log('test').info({ x: 1 }, 'logged');
    const { createRequire } = await import('node:module');
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => /node_modules\\/(pino|sonic-boom|thread-stream)/.test(f));
    const builtins = process.moduleLoadList.filter((m) => / (worker_threads|assert)$/.test(m));
    process.stdout.write(JSON.stringify({ loaded, builtins }));`;
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '--input-type=module', '-e', code], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /^\{"level":30,"time":\d+,"component":"test","x":1,"msg":"logged"\}\n$/, 'the line on stderr');
  t.same(JSON.parse(r.stdout), { loaded: [], builtins: [] }, 'no pino, sonic-boom, thread-stream, worker_threads, assert');
});
