// Bad input to the programs, as an operator gives it: a huge resource file (on disk and on stdin), a
// 200 KB name full of terminal escape codes, an invalid TABBY_LOG_LEVEL. Each gives a short, specific
// error and an exit code, never a stack trace or gigabytes of memory. Runs the compiled programs.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runTag } from '../../helpers/run-tag.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src');
const CLI = path.join(DIST, 'cli/main.js');
const AGENT = path.join(DIST, 'agent/main.js');
const tag = `${runTag()}cbi`;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}
function run(prog: string, args: string[], env: NodeJS.ProcessEnv, input: string | Buffer = ''): Promise<Result> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const c = spawn(process.execPath, [prog, ...args], {
      env: { PATH: process.env.PATH, TABBY_CONFIG: '/dev/null', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '',
      stderr = '';
    c.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    c.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    c.once('error', reject);
    c.once('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 }));
    c.stdin.on('error', () => undefined); // the program may stop reading early
    c.stdin.end(input);
  });
}
const noStack = (s: string) => !/^\s+at /m.test(s);

t.test('tabbyctl: a resource file over the cap is refused before it is parsed (file and stdin)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { DATASTORE_TYPE: 'file', TABBY_DATASTORE_DIR: path.join(dir, 'ds') };
  // 26 MB of JSON: a List of many pools (what made tabbyctl use 3.8 GB).
  const item = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/24' } };
  const big = JSON.stringify({ kind: 'List', items: Array.from({ length: 260_000 }, () => item) });
  t.ok(big.length > 25e6, `${(big.length / 1e6).toFixed(1)} MB`);
  const file = path.join(dir, 'big.json');
  fs.writeFileSync(file, big);
  for (const [what, args, input] of [
    ['file', ['apply', '-f', file], ''],
    ['stdin', ['apply', '-f', '-'], big],
  ] as const) {
    const r = await run(CLI, [...args], env, input);
    t.equal(r.code, 1, `${what}: exit 1`);
    t.match(r.stderr, /larger than 4 MiB/, `${what}: ${r.stderr.trim().split('\n')[0]}`);
    t.ok(noStack(r.stderr), `${what}: no stack trace`);
    t.ok(r.ms < 30_000, `${what}: answered in ${r.ms} ms`);
  }
  t.notOk(
    fs.existsSync(path.join(dir, 'ds', 'datastore.log')) && fs.statSync(path.join(dir, 'ds', 'datastore.log')).size > 0,
    'nothing was written',
  );
});

t.test('tabbyctl: a huge name with control characters is echoed cut and escaped', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { DATASTORE_TYPE: 'file', TABBY_DATASTORE_DIR: path.join(dir, 'ds') };
  const name = `\u001b[2J\u001b]0;pwned\u0007${'n'.repeat(200_000)}`;
  const doc = JSON.stringify({
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name },
    spec: { cidr: `x${'\u0007'.repeat(5)}${'1'.repeat(100_000)}` },
  });
  const r = await run(CLI, ['apply', '-f', '-'], env, doc);
  t.equal(r.code, 1);
  t.ok(r.stderr.length < 2000, `stderr is ${r.stderr.length} bytes`);
  t.notMatch(r.stderr, /[\u0000-\u0009\u000b-\u001f\u007f]/, 'no raw control characters reach the terminal');
  t.match(r.stderr, /\\u001b/, 'they are shown escaped');
  t.ok(noStack(r.stderr));
});

t.test('an invalid TABBY_LOG_LEVEL is a configuration error (exit 2) naming the variable', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { DATASTORE_TYPE: 'file', TABBY_DATASTORE_DIR: path.join(dir, 'ds'), TABBY_LOG_LEVEL: 'loud' };
  for (const [prog, args] of [
    [CLI, ['get', 'ippool']],
    [AGENT, []],
  ] as const) {
    const r = await run(prog, [...args], {
      ...env,
      TABBY_STATE_DIR: dir,
      NODENAME: 'n1',
      TABBY_HEALTH_ADDR: 'none',
      TABBY_METRICS_ADDR: 'none',
    });
    t.equal(r.code, 2, `${path.basename(path.dirname(prog))}: exit 2 (${r.stderr.trim()})`);
    t.match(r.stderr, /TABBY_LOG_LEVEL/, 'names the variable');
    t.match(r.stderr, /loud/);
    t.ok(noStack(r.stderr), 'no stack trace');
  }
});
