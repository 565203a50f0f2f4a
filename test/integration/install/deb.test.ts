// The Debian package as a user installs it: `make deb` → `dpkg -i` → the commands on PATH work, nothing is
// started, the env file is a conffile → `dpkg -r` keeps only the conffile → `dpkg --purge` leaves nothing:
// the host's install paths are as before. (It installs into the real /usr/bin, /opt, /etc, /lib/systemd:
// skipped when a tabby package or a make-install is already there; removed in teardown whatever happens.)
// The purge also removes /var/lib/tabby and /run/tabby (debian/postrm): the machine's own, there before
// the test (a developer's datastore), is moved aside around each purge and put back.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hostPathsLock } from '../../helpers/host-lock.js';
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

const debSkip =
  built ||
  (process.getuid?.() !== 0
    ? 'needs root (dpkg -i)'
    : sh('dpkg-deb', ['--version']).status !== 0
      ? 'dpkg-deb is not installed'
      : sh('dpkg', ['-s', 'tabby']).status === 0
        ? 'a tabby package is already installed on this machine (the test would replace it)'
        : fs.existsSync('/opt/tabby')
          ? '/opt/tabby exists (a make install on this machine; the test would collide with it)'
          : // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
            sh('dpkg-query', ['-W', '-f=${Status} ${Version}', 'nodejs']).stdout.startsWith('install ok installed')
            ? false
            : 'node is not from a Debian package here (the package depends on nodejs >= 20.19)');

/** The host paths a Debian package of tabby touches: name, size, mode of every entry (bounded depth). */
const HOST_PATHS: [string, number][] = [
  ['/usr/bin', 1],
  ['/opt', 1],
  ['/etc/tabby', 2],
  ['/lib/systemd/system', 1],
  ['/usr/share/bash-completion/completions', 1],
  ['/usr/share/zsh/vendor-completions', 1],
  ['/usr/share/doc/tabby', 1],
  ['/var/lib/tabby', 1],
];
function snapshot(): string[] {
  const out: string[] = [];
  const walk = (p: string, depth: number): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    out.push(`${p} ${st.isDirectory() ? 'd' : st.size} ${st.mode.toString(8)}`);
    if (st.isDirectory() && depth > 0) for (const c of fs.readdirSync(p).sort()) walk(path.join(p, c), depth - 1);
  };
  for (const [d, depth] of HOST_PATHS) walk(d, depth);
  return out;
}

/** What `dpkg --purge tabby` removes besides the package's files (debian/postrm): datastore, runtime dir. */
const STATE_DIRS = ['/var/lib/tabby', '/run/tabby'];
const aside = (d: string): string => `${d}.tb${run}-kept`;

/**
 * dpkg --purge tabby with the machine's own state dirs moved aside meanwhile and put back after;
 * `left`: the state dirs still there after the purge (before putting the own ones back).
 */
async function purgeKeepingState(whilePurged: () => void = () => {}) {
  const own = STATE_DIRS.filter((d) => fs.existsSync(d));
  for (const d of own) fs.renameSync(d, aside(d));
  try {
    whilePurged();
    const r = await dpkg('--purge', 'tabby');
    return { ...r, left: STATE_DIRS.filter((d) => fs.existsSync(d)) };
  } finally {
    for (const d of own) {
      fs.rmSync(d, { recursive: true, force: true });
      fs.renameSync(aside(d), d);
    }
  }
}

/** dpkg, waiting (bounded) while another dpkg/apt holds its lock. */
async function dpkg(...args: string[]) {
  const end = Date.now() + 120_000;
  for (;;) {
    const r = sh('dpkg', args);
    if (r.status === 0 || !/lock/i.test(r.stderr) || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

t.test('make deb: dpkg -i, the commands work, dpkg -r / --purge leave nothing', { skip: debSkip, timeout: 540_000 }, async (t) => {
  const t0 = Date.now();
  const lap = (what: string): void => {
    t.comment(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  };
  t.teardown(await hostPathsLock());
  lap('lock');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tb${run}deb-`));
  // The machine's own state, which the purge must not take: a marker in each state dir (made when
  // there is none, so that case is always checked).
  const made = STATE_DIRS.filter((d) => !fs.existsSync(d));
  const marker = (d: string): string => path.join(d, `tb${run}-own-state`);
  for (const d of STATE_DIRS) {
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(marker(d), "not the package test's\n");
  }
  t.teardown(async () => {
    if (sh('dpkg', ['-s', 'tabby']).status === 0) await purgeKeepingState();
    for (const d of STATE_DIRS) fs.rmSync(marker(d), { force: true });
    for (const d of made) fs.rmSync(d, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const before = snapshot();
  // The stage next to node_modules (same filesystem: staging hard-links it instead of copying 200 MB).
  const stage = path.join(ROOT, `.stage/test-deb-${run}`);
  t.teardown(() => fs.rmSync(stage, { recursive: true, force: true }));
  const mk = sh('make', ['-s', '-o', 'build', '-C', ROOT, 'deb', `STAGE=${stage}`, `DEB_DIR=${tmp}`], { timeout: 180_000 });
  t.equal(mk.status, 0, 'make deb', { log: mk.out });
  lap('make deb');
  const deb = path.join(tmp, fs.readdirSync(tmp).find((f) => f.endsWith('.deb')) ?? 'none.deb');
  t.match(path.basename(deb), new RegExp(`^tabby_${version.replace(/\./g, '\\.')}_\\w+\\.deb$`));
  const contents = sh('dpkg-deb', ['-c', deb]).stdout;
  for (const f of [
    './usr/bin/tabby-node',
    './usr/bin/tabbyctl',
    './lib/systemd/system/tabby-node.service',
    './etc/tabby/tabby-node.env',
    './opt/tabby/app/dist/src/agent/main.js',
    './opt/tabby/app/dist/tabby-node.cjs',
    './opt/tabby/app/src/native/build/Release/tabby_native.node',
    './usr/share/bash-completion/completions/tabbyctl',
  ])
    t.match(contents, ` ${f}\n`, `package has ${f}`);
  t.notMatch(contents, /\.\/usr\/local\//, 'nothing under /usr/local (Debian policy)');
  t.notMatch(contents, /installed-files/, 'no make-install manifest (dpkg keeps the list)');
  t.match(sh('dpkg-deb', ['-f', deb, 'Depends']).stdout, /nodejs \(>= 20\.19\)/);
  t.equal(sh('dpkg-deb', ['--ctrl-tarfile', deb]).status, 0);

  const inst = await dpkg('-i', deb);
  t.equal(inst.status, 0, 'dpkg -i', { log: inst.out });
  lap('dpkg -i');
  t.match(inst.stdout, /nothing started\. Edit \/etc\/tabby\/tabby-node\.env/, 'postinst starts nothing and says what to do');
  const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TABBY_STATE_DIR: path.join(tmp, 'state') };
  const ver = sh('tabbyctl', ['version'], { env });
  t.equal(ver.status, 0, 'tabbyctl version (on PATH)', { log: ver.out });
  t.match(ver.stdout, /Client Version:\s+v/);
  const help = sh('tabby-node', ['--help'], { env });
  t.equal(help.status, 0, 'tabby-node --help (on PATH)', { log: help.out });
  const ns = sh('tabbyctl', ['node', 'status'], { env });
  t.match(ns.stdout, /tabby-node process is not running/, 'no agent was started');
  t.equal(fs.statSync('/etc/tabby/tabby-node.env').mode & 0o777, 0o600, 'env file 0600');
  t.match(
    fs.readFileSync('/lib/systemd/system/tabby-node.service', 'utf8'),
    /^ExecStart=\/usr\/bin\/node \/opt\/tabby\/app\/dist\/tabby-node\.cjs$/m,
  );
  const listed = sh('dpkg', ['-L', 'tabby']).stdout.split('\n').filter(Boolean);
  t.ok(listed.length > 1000, `dpkg -L tabby: ${listed.length} paths`);

  // remove: every file but the conffile goes; the operator's changed settings stay until purge.
  fs.appendFileSync('/etc/tabby/tabby-node.env', '# changed by the operator\n');
  const rm = await dpkg('-r', 'tabby');
  t.equal(rm.status, 0, 'dpkg -r tabby', { log: rm.out });
  lap('dpkg -r');
  const stillThere = listed.filter((p) => !fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() && fs.existsSync(p));
  t.same(stillThere, ['/etc/tabby/tabby-node.env'], 'after remove: only the conffile');
  t.equal(sh('tabbyctl', ['version'], { env }).status === 0, false, 'tabbyctl is gone');
  // What the installed agent would have made: its datastore and runtime dir, which the purge removes.
  const purge = await purgeKeepingState(() => {
    fs.mkdirSync('/var/lib/tabby/datastore', { recursive: true });
    fs.writeFileSync('/var/lib/tabby/datastore/tabby.log', 'x');
    fs.mkdirSync('/run/tabby', { recursive: true });
    fs.writeFileSync('/run/tabby/nodename', 'x');
  });
  t.equal(purge.status, 0, 'dpkg --purge tabby', { log: purge.out });
  t.same(purge.left, [], "purge removed the package's datastore and runtime dir");
  for (const d of STATE_DIRS) t.ok(fs.existsSync(marker(d)), `${d} there before the test: kept`);
  t.notOk(fs.existsSync('/etc/tabby'), '/etc/tabby gone');
  t.notOk(fs.existsSync('/opt/tabby'), '/opt/tabby gone');
  t.not(sh('dpkg', ['-s', 'tabby']).status, 0, 'not installed');
  t.same(snapshot(), before, "the host's install paths are as before");
  lap('done');
});
