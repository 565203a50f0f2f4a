// The container image without a container engine (none runs here): the runtime stage's file layout is
// rebuilt in a temp dir from the Containerfile's own COPY lines and the image's wrappers are run from it;
// every package the product imports is a production dependency (the image prunes dev dependencies);
// the build context filter lets through everything the build copies.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { builtinModules } from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runTag } from '../../helpers/run-tag.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const CONTAINER = path.join(ROOT, 'deploy/container');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

interface Instr {
  stage: string;
  instr: string;
  args: string;
}

function parseContainerfile(): Instr[] {
  const text = fs.readFileSync(path.join(CONTAINER, 'Containerfile'), 'utf8').replace(/\\\n/g, ' ');
  const out: Instr[] = [];
  let stage = '';
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (!l || l.startsWith('#')) continue;
    const [instr, ...rest] = l.split(/\s+/);
    if (instr === 'FROM') stage = /\bAS\s+(\S+)$/i.exec(l)?.[1] ?? '';
    out.push({ stage, instr: instr!, args: rest.join(' ') });
  }
  return out;
}

t.test("the runtime stage's layout runs: tabby-node, tabbyctl, tabby-install-cni from /app", async (t) => {
  const dist = path.join(ROOT, 'dist/src');
  const addon = path.join(ROOT, 'src/native/build/Release/tabby_native.node');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}img-`));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const app = path.join(tmp, 'app');
  const bin = path.join(tmp, 'usr/local/bin');
  fs.mkdirSync(app, { recursive: true });
  fs.mkdirSync(bin, { recursive: true });
  t.ok(fs.existsSync(dist) && fs.existsSync(addon), 'compiled tree and addon present');

  // Replay the runtime stage: WORKDIR /app; COPY --from=build /src/<x> <dest>  (the build stage's /src is this
  // checkout after npm ci + tsc); COPY deploy/container/bin/ /usr/local/bin/.
  const runtime = parseContainerfile().filter((i) => i.stage === 'runtime');
  let workdir = '/';
  for (const i of runtime) {
    if (i.instr === 'WORKDIR') workdir = i.args;
    if (i.instr !== 'COPY') continue;
    const from = /--from=(\S+)/.exec(i.args)?.[1];
    const [src, dest] = i.args.replace(/--\S+\s*/g, '').split(/\s+/) as [string, string];
    const srcPath = from === 'build' ? path.join(ROOT, path.relative('/src', src)) : path.join(ROOT, src);
    const destAbs = path.isAbsolute(dest) ? dest : path.join(workdir, dest);
    const target = path.join(
      tmp,
      destAbs.endsWith('/') && !fs.statSync(srcPath).isDirectory() ? path.join(destAbs, path.basename(srcPath)) : destAbs,
    );
    t.ok(fs.existsSync(srcPath), `COPY source ${src} exists after the build stage`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // node_modules is linked, not copied (size); everything else is copied as the image would have it.
    if (path.basename(srcPath) === 'node_modules') fs.symlinkSync(srcPath, target.replace(/\/$/, ''));
    else fs.cpSync(srcPath, target, { recursive: true });
  }
  t.ok(fs.existsSync(path.join(app, 'src/native/build/Release/tabby_native.node')), 'addon where src/native/index.ts looks for it');

  // The wrappers, with /app mapped into the temp dir.
  const run = (
    wrapper: string,
    args: string[],
    env: Record<string, string> = {},
  ): { status: number | null; stdout: string; stderr: string } => {
    const script = fs.readFileSync(path.join(bin, wrapper), 'utf8').replaceAll('/app/', `${app}/`);
    return spawnSync('sh', ['-c', script, wrapper, ...args], {
      encoding: 'utf8',
      env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, TAP: '1', ...env },
    });
  };
  const version = run('tabbyctl', ['version']);
  t.equal(version.status, 0, version.stderr);
  t.match(version.stdout, PKG.version);
  const help = run('tabby-node', ['--help']);
  t.equal(help.status, 0, help.stderr);
  t.match(help.stdout, /IP_AUTODETECTION_METHOD/);
  const nodeVersion = run('tabby-node', ['--version']);
  t.match(nodeVersion.stdout, PKG.version);
  // A bad setting is refused with the variable's name (exit 2 = bad config), before anything is touched.
  const bad = run('tabby-node', [], { CALICO_IPV4POOL_IPIP: 'Sometimes', TABBY_STATE_DIR: path.join(tmp, 'state') });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /CALICO_IPV4POOL_IPIP/);
  const inst = run('tabby-install-cni', [], { DATASTORE_TYPE: 'etcdv3' });
  t.equal(inst.status, 1);
  t.match(inst.stderr, /tabby-install-cni: ETCD_ENDPOINTS: required with DATASTORE_TYPE=etcdv3/);
});

t.test('the product imports only production dependencies (the image has no dev dependencies)', async (t) => {
  const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
  const deps = new Set(Object.keys(PKG.dependencies));
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const f of fs.readdirSync(d)) {
      const p = path.join(d, f);
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.js')) files.push(p);
    }
  };
  // The compiled tree: what runs in the image (type-only imports are gone).
  walk(path.join(ROOT, 'dist/src'));
  const used = new Map<string, string>();
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    for (const m of text.matchAll(
      /^(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"];|\bimport\(\s*['"]([^'"]+)['"]\s*\)|^import\s*['"]([^'"]+)['"];/gm,
    )) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (spec.startsWith('.') || builtins.has(spec) || builtins.has(spec.split('/')[0]!)) continue;
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (!used.has(pkg)) used.set(pkg, path.relative(ROOT, f));
    }
  }
  t.ok(used.size >= 4, `packages imported: ${[...used.keys()].join(' ')}`);
  for (const [pkg, where] of used) {
    const typesOnly = pkg.startsWith('@types/');
    t.ok(deps.has(pkg) || typesOnly, `${pkg} (imported by ${where}) is in "dependencies"`);
  }
});

t.test('the build context filter lets through every file the build copies, and little else', async (t) => {
  const patterns = fs
    .readFileSync(path.join(CONTAINER, 'Containerfile.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  // Docker semantics for these simple patterns: the last matching pattern wins; a pattern matches a path
  // or any path under it; "*" matches every top-level entry.
  const included = (p: string): boolean => {
    let inc = true;
    for (const raw of patterns) {
      const neg = raw.startsWith('!');
      const pat = raw.replace(/^!/, '').replace(/\/$/, '');
      const hit = pat === '*' || p === pat || p.startsWith(`${pat}/`);
      if (hit) inc = neg;
    }
    return inc;
  };
  const sources = parseContainerfile()
    .filter((i) => i.instr === 'COPY' && !/--from=/.test(i.args))
    .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
    .map((s) => s.replace(/\/$/, ''));
  t.ok(sources.length >= 5);
  for (const s of sources) t.ok(included(s), `${s} is in the build context`);
  for (const s of ['node_modules', 'dist', 'src/native/build', '.git', 'test', '.tap']) t.notOk(included(s), `${s} is left out`);
});

t.test("npm ci in the build stage has the native addon's sources (its install script runs node-gyp)", async (t) => {
  const build = parseContainerfile().filter((i) => i.stage === 'build');
  const ci = build.findIndex((i) => i.instr === 'RUN' && /\bnpm ci\b/.test(i.args));
  t.ok(ci > 0, 'RUN npm ci');
  const copied = build
    .slice(0, ci)
    .filter((i) => i.instr === 'COPY')
    .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  const gyp = JSON.parse(fs.readFileSync(path.join(ROOT, 'src/native/binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
  for (const f of [
    'src/native/binding.gyp',
    ...gyp.targets.flatMap((x) => x.sources.map((s) => `src/native/${s}`)),
    'package.json',
    'package-lock.json',
  ]) {
    t.ok(copied.includes(f), `${f} is copied before npm ci`);
  }
});
