// The npm package as a user installs it: `npm pack` → `npm install <tarball>` into a temporary project (the
// install script builds the native addon and the CNI client there) → the bins run (`npx tabbyctl version`,
// `tabby-node --help`, `tabby` answering VERSION).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runId } from '../../helpers/run-tag.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const run = runId();
const built = fs.existsSync(path.join(ROOT, 'dist/src/cli/main.js')) ? false : 'not built (make build)';
const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const sh = (cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number; input?: string } = {}) => {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: opts.timeout ?? 120_000,
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    input: opts.input,
  });
  return {
    status: r.status,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`,
  };
};

t.test('npm pack: the tarball installs and its bins run', { skip: built, timeout: 240_000 }, async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tb${run}npm-`));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  // --ignore-scripts: dist/ is the build this suite runs from (prepack would compile it again).
  const pack = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: ROOT });
  t.equal(pack.status, 0, 'npm pack', { log: pack.out });
  const info = (JSON.parse(pack.stdout) as { filename: string; files: { path: string; mode: number }[] }[])[0]!;
  const files = info.files.map((f) => f.path);
  for (const f of [
    'dist/src/cli/main.js',
    'dist/src/agent/main.js',
    'dist/tabby-node.cjs',
    'dist/src/cni/main.js',
    'proto/bgp/registry.json',
    'src/native/binding.gyp',
    'src/native/tabby_native.cc',
    'src/native/cni_client.c',
    'deploy/systemd/tabby-node.service',
  ]) {
    t.ok(files.includes(f), `tarball has ${f}`);
  }
  t.notOk(
    files.some((f) => f.startsWith('dist/test/') || f.startsWith('node_modules/') || f.startsWith('test/') || f.endsWith('.ts')),
    "no tests, no sources but the addon's, no node_modules",
  );
  const bins = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin;
  for (const [name, file] of Object.entries(bins)) {
    t.match(fs.readFileSync(path.join(ROOT, file), 'utf8'), /^#!\/usr\/bin\/env node\n/, `bin ${name}: ${file} starts with a node shebang`);
  }

  // Installed as a dependency of a fresh project (dependencies from npm's cache when there, else the registry).
  const prefix = path.join(tmp, 'project');
  fs.mkdirSync(prefix);
  const inst = sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--prefix', prefix, path.join(tmp, info.filename)], {
    cwd: tmp,
    timeout: 180_000,
  });
  t.equal(inst.status, 0, `npm install ${info.filename}`, { log: inst.out });
  const pkgDir = path.join(prefix, 'node_modules/tabby');
  t.ok(fs.existsSync(path.join(pkgDir, 'src/native/build/Release/tabby_native.node')), 'the install script built the native addon');
  const env = { ...process.env, PATH: `/usr/bin:/bin`, TABBY_STATE_DIR: path.join(tmp, 'state') };
  const npx = sh('npx', ['--no-install', 'tabbyctl', 'version'], { cwd: prefix, env });
  t.equal(npx.status, 0, 'npx tabbyctl version', { log: npx.out });
  t.match(npx.stdout, new RegExp(`Client Version:\\s+v${version.replace(/\./g, '\\.')}`));
  const bin = path.join(prefix, 'node_modules/.bin');
  const help = sh(path.join(bin, 'tabby-node'), ['--help'], { env });
  t.equal(help.status, 0, 'tabby-node --help', { log: help.out });
  t.match(help.stdout, /tabby-node \[flags\]/);
  const cni = sh(path.join(bin, 'tabby'), [], { env: { ...env, CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}' });
  t.equal(cni.status, 0, 'tabby (CNI plugin) VERSION', { log: cni.out });
  t.match(cni.stdout, /"supportedVersions"/);
});
