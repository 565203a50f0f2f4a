// `make install` / `make uninstall` as a host operator runs them, into a temporary root so the machine's own
// /usr/local, /opt, /etc stay as they are (checked: their entries before and after are compared).
//  1. DESTDIR staging (what a packager does): every file under DESTDIR, the paths written into files are
//     the final ones, uninstall DESTDIR=… leaves the staging root empty.
//  2. Every path set to a directory under a temporary root (so the installed commands run): install, the
//     operator edits the env file, install again keeps it; tabby-node started as the unit starts it
//     (ExecStart + EnvironmentFile of the installed unit, its capability bounding set and NoNewPrivileges,
//     by setpriv) in a network namespace with the shipped settings
//     on this kernel; the installed `tabbyctl node status` shows it ready; uninstall leaves exactly the
//     changed env file and the datastore; PURGE=1 removes those too.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseEnvFile } from '../../unit/deploy/fixtures/kustomize.js';
import { hostPathsLock } from '../../helpers/host-lock.js';
import { kernelHasIpip } from '../../../src/dataplane/index.js';
import { runId } from '../../helpers/run-tag.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const run = runId();
const skip =
  process.getuid?.() !== 0
    ? 'needs root (make install writes root-owned files; the agent needs a netns)'
    : !fs.existsSync(path.join(ROOT, 'dist/src/agent/main.js'))
      ? 'not built (make build)'
      : !fs.existsSync(path.join(ROOT, 'node_modules/.package-lock.json'))
        ? 'node_modules missing (npm ci)'
        : false;

/** The machine's own install locations: name, size, mtime of every entry (recursive, bounded). */
const HOST_PATHS: [string, number][] = [
  ['/usr/local/bin', 1],
  ['/usr/local/share', 3],
  ['/opt', 1],
  ['/opt/cni', 3],
  ['/etc/tabby', 2],
  ['/etc/systemd/system', 1],
  ['/etc/cni', 3],
  ['/var/lib/tabby', 1],
  ['/usr/share/bash-completion/completions', 1],
];
function snapshot(dirs: readonly [string, number][]): string[] {
  const out: string[] = [];
  const walk = (p: string, depth: number): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    out.push(`${p} ${st.isDirectory() ? 'd' : st.size} ${Math.floor(st.mtimeMs)}`);
    if (st.isDirectory() && depth > 0) for (const c of fs.readdirSync(p).sort()) walk(path.join(p, c), depth - 1);
  };
  for (const [d, depth] of dirs) walk(d, depth);
  return out;
}

/** Every path under root (relative), directories marked with a trailing /. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const c of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = path.join(rel, c);
      if (fs.lstatSync(path.join(root, r)).isDirectory()) {
        out.push(`${r}/`);
        walk(r);
      } else out.push(r);
    }
  };
  walk('');
  return out;
}

let staged = false;
function make(target: string, vars: Record<string, string>): { status: number | null; out: string } {
  // -o build: dist/ is what this test runs from (built by make test); the first install stages that build
  // (into the test's own STAGE), later ones reuse it (-o stage).
  const reuse = target === 'install' && staged ? ['-o', 'stage'] : [];
  const r = spawnSync('make', ['-s', '-o', 'build', ...reuse, '-C', ROOT, target, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (target === 'install' && r.status === 0) staged = true;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const sha = (f: string): string => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

async function until<T>(fn: () => T | undefined | false, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) return undefined;
    await new Promise((r) => setTimeout(r, 250));
  }
}

// The timeout covers the wait for the host-paths lock: deb.test.ts holds it while it builds and installs
// a package (~140 s at load 20, after which this test's own ~160 s went past a 300 s bound).
t.test('make install / uninstall', { skip, timeout: 560_000 }, async (t) => {
  t.teardown(await hostPathsLock());
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `tb${run}inst-`));
  const ns = `tb${run}in`.slice(0, 15);
  const procs: ChildProcess[] = [];
  t.teardown(() => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const hostBefore = snapshot(HOST_PATHS);
  // The stage next to node_modules (same filesystem: staging hard-links it instead of copying 200 MB).
  const stage = path.join(ROOT, `.stage/test-install-${run}`);
  t.teardown(() => fs.rmSync(stage, { recursive: true, force: true }));

  t.test('DESTDIR staging: final paths inside the files, uninstall leaves the staging root empty', async (t) => {
    const dest = path.join(tmp, 'destdir');
    fs.mkdirSync(dest);
    const t0 = Date.now();
    const r = make('install', { DESTDIR: dest, CNI: '1', STAGE: stage });
    t.comment(`make install (stage + install): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    t.equal(r.status, 0, 'make install DESTDIR=… CNI=1', { log: r.out });
    const files = tree(dest);
    for (const f of [
      'opt/tabby/app/dist/src/agent/main.js',
      'opt/tabby/app/dist/tabby-node.cjs',
      'opt/tabby/app/src/native/build/Release/tabby_native.node',
      'opt/tabby/app/node_modules/yargs/package.json',
      'opt/tabby/app/proto/bgp/registry.json',
      'opt/tabby/app/README.md',
      'usr/local/bin/tabby-node',
      'usr/local/bin/tabbyctl',
      'etc/systemd/system/tabby-node.service',
      'etc/tabby/tabby-node.env',
      'usr/local/share/bash-completion/completions/tabbyctl',
      'usr/local/share/zsh/site-functions/_tabbyctl',
      'opt/cni/bin/tabby',
      'opt/cni/bin/tabby-ipam',
      'opt/cni/bin/tabby-fallback',
      'etc/cni/net.d/10-tabby.conflist',
      'opt/tabby/installed-files',
    ])
      t.ok(files.includes(f), f);
    t.notOk(
      files.some((f) => f.startsWith('opt/tabby/app/node_modules/typescript/') || f.startsWith('opt/tabby/app/node_modules/tap/')),
      'no dev dependencies (typescript, tap)',
    );
    t.notOk(
      files.some((f) => f.startsWith('opt/tabby/app/dist/test/')),
      'no tests',
    );
    const launcher = fs.readFileSync(path.join(dest, 'usr/local/bin/tabbyctl'), 'utf8');
    t.match(launcher, `exec '${process.execPath}' '/opt/tabby/app/dist/src/cli/main.js' "$@"`, 'launcher: final paths, no DESTDIR');
    t.equal(fs.statSync(path.join(dest, 'usr/local/bin/tabbyctl')).mode & 0o777, 0o755);
    t.equal(fs.statSync(path.join(dest, 'etc/tabby/tabby-node.env')).mode & 0o777, 0o600, 'env file 0600 (may hold etcd settings)');
    const unit = fs.readFileSync(path.join(dest, 'etc/systemd/system/tabby-node.service'), 'utf8');
    t.match(unit, /^ExecStart=\S+ \/opt\/tabby\/app\/dist\/tabby-node\.cjs$/m);
    t.match(unit, /^EnvironmentFile=\/etc\/tabby\/tabby-node\.env$/m);
    t.match(
      fs.readFileSync(path.join(dest, 'opt/cni/bin/tabby-fallback'), 'utf8'),
      `'/opt/tabby/app/dist/src/cni/main.js'`,
      'CNI fallback wrapper: final path',
    );
    t.ok(
      fs.readFileSync(path.join(dest, 'opt/cni/bin/tabby')).subarray(0, 4).equals(Buffer.from('\x7fELF', 'latin1')),
      'tabby: the resident-path client (an executable)',
    );
    t.notOk(fs.readFileSync(path.join(dest, 'etc/cni/net.d/10-tabby.conflist'), 'utf8').includes(dest), 'conflist: no DESTDIR inside');
    // The manifest lists exactly what is there.
    const manifest = fs
      .readFileSync(path.join(dest, 'opt/tabby/installed-files'), 'utf8')
      .split('\n')
      .filter((l) => /^[dfc] /.test(l))
      .map((l) => l.replace(/^c \S+ /, 'c ').slice(2));
    const listed = new Set(manifest.map((p) => p.slice(1)));
    const unlisted = files.filter((f) => f !== 'opt/tabby/installed-files' && !listed.has(f.replace(/\/$/, '')));
    t.same(unlisted, [], 'every file and directory written is in the manifest');
    const u = make('uninstall', { DESTDIR: dest });
    t.equal(u.status, 0, 'make uninstall DESTDIR=…', { log: u.out });
    t.same(tree(dest), [], 'nothing left');
  });

  t.test('installed and run under a temporary root', async (t) => {
    const R = path.join(tmp, 'root');
    const vars = {
      PREFIX: `${R}/usr/local`,
      TABBY_HOME: `${R}/opt/tabby`,
      SYSCONFDIR: `${R}/etc`,
      UNITDIR: `${R}/etc/systemd/system`,
      STATEDIR: `${R}/var/lib/tabby`,
      CNI: '1',
      CNI_BIN_DIR: `${R}/opt/cni/bin`,
      CNI_NET_DIR: `${R}/etc/cni/net.d`,
      STAGE: stage,
    };
    fs.mkdirSync(`${R}/opt/cni/bin`, { recursive: true });
    fs.writeFileSync(`${R}/opt/cni/bin/portmap`, '#!/bin/sh\n', { mode: 0o755 }); // the operator's plugin: install must leave it
    const before = tree(R);
    const t0 = Date.now();
    const lap = (what: string): void => {
      t.comment(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    };
    const r = make('install', vars);
    lap('make install');
    t.equal(r.status, 0, 'make install', { log: r.out });
    t.match(r.out, /nothing started: edit .*tabby-node\.env/);
    t.notMatch(r.out, /no portmap/, 'portmap present: no warning');
    const bin = `${R}/usr/local/bin`;
    for (const [cmd, args, want] of [
      ['tabbyctl', ['version'], /Client Version:\s+v0\.1\.0/],
      ['tabby-node', ['--help'], /tabby-node \[flags\]/],
    ] as const) {
      const c = spawnSync(path.join(bin, cmd), [...args], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` } });
      t.equal(c.status, 0, `${cmd} ${args.join(' ')}`, { log: c.stderr });
      t.match(c.stdout, want);
    }
    const comp = spawnSync('bash', ['-c', `. ${R}/usr/local/share/bash-completion/completions/tabbyctl && complete -p tabbyctl`], {
      encoding: 'utf8',
    });
    t.match(comp.stdout, /-F _tabbyctl_yargs_completions tabbyctl/, 'bash completion loads');

    // The operator's settings: datastore and state under the temporary root (as StateDirectory/RuntimeDirectory
    // would give them), everything else as shipped — including no pool encapsulation chosen.
    const envFile = `${R}/etc/tabby/tabby-node.env`;
    const shipped = fs.readFileSync(envFile, 'utf8');
    t.equal(shipped, fs.readFileSync(path.join(ROOT, 'deploy/systemd/tabby-node.env'), 'utf8'), 'the shipped env file');
    const edited = shipped
      .replace(/^TABBY_DATASTORE_DIR=.*$/m, `TABBY_DATASTORE_DIR=${R}/var/lib/tabby/datastore`)
      .replace(/^TABBY_STATE_DIR=.*$/m, `TABBY_STATE_DIR=${R}/run/tabby`)
      .replace(/^#NODENAME=.*$/m, 'NODENAME=host-1');
    fs.writeFileSync(envFile, edited);
    const again = make('install', vars);
    t.equal(again.status, 0, 'make install again (an upgrade)', { log: again.out });
    t.match(again.out, /kept .*tabby-node\.env/);
    t.equal(fs.readFileSync(envFile, 'utf8'), edited, 'an existing env file is never overwritten');

    // tabby-node as the unit starts it: its ExecStart with its EnvironmentFile, in a netns (one uplink).
    const unit = fs.readFileSync(`${R}/etc/systemd/system/tabby-node.service`, 'utf8');
    const exec = /^ExecStart=(.+)$/m.exec(unit)![1]!.split(/\s+/);
    const envPath = /^EnvironmentFile=(.+)$/m.exec(unit)![1]!;
    t.equal(envPath, envFile, 'the unit reads the installed env file');
    t.equal(exec[1], `${R}/opt/tabby/app/dist/tabby-node.cjs`, 'the unit runs the installed app (its one-file tabby-node)');
    spawnSync('ip', ['netns', 'del', ns]);
    for (const args of [
      ['netns', 'add', ns],
      ['-n', ns, 'link', 'set', 'lo', 'up'],
      ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1'],
      ['-n', ns, 'addr', 'add', '10.198.0.1/24', 'dev', 'eth0'],
      ['-n', ns, 'link', 'set', 'eth0', 'up'],
      ['-n', ns, 'link', 'set', 'eth1', 'up'],
    ]) {
      const c = spawnSync('ip', args, { encoding: 'utf8' });
      t.equal(c.status, 0, `ip ${args.join(' ')}`, { log: c.stderr });
    }
    fs.mkdirSync(`${R}/run/tabby`, { recursive: true });
    let log = '';
    // The unit's privileges too: root with only its CapabilityBoundingSet, and NoNewPrivileges.
    const caps = /^CapabilityBoundingSet=(.+)$/m
      .exec(unit)![1]!
      .trim()
      .split(/\s+/)
      .map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`);
    t.same(caps, ['+net_admin', '+net_raw', '+net_bind_service'], "the unit's capabilities");
    t.match(unit, /^NoNewPrivileges=yes$/m);
    const setpriv = ['setpriv', '--bounding-set', ['-all', ...caps].join(','), '--no-new-privs', '--'];
    const agent = spawn('ip', ['netns', 'exec', ns, ...setpriv, ...exec], {
      env: { PATH: '/usr/bin:/bin', ...parseEnvFile(envPath) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(agent);
    for (const s of [agent.stdout!, agent.stderr!])
      s.on('data', (d: Buffer) => {
        log = (log + d.toString()).slice(-20_000);
      });

    const tabbyctl = (...args: string[]) =>
      spawnSync(path.join(bin, 'tabbyctl'), args, { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin`, ...parseEnvFile(envPath) } });
    lap('installed again, agent starting');
    const ready = await until(() => {
      const s = tabbyctl('node', 'status', '-o', 'json');
      if (s.status !== 0) return false;
      return (JSON.parse(s.stdout) as { readiness?: { ready?: boolean } }).readiness?.ready === true;
    }, 90_000);
    t.ok(ready, 'tabbyctl node status: the agent is ready with the shipped settings', {
      log: `${tabbyctl('node', 'status', '-o', 'json').stdout.slice(0, 1500)}\n${log.slice(-3000)}`,
    });
    const text = tabbyctl('node', 'status');
    t.equal(text.status, 0);
    t.match(text.stdout, /tabby-node process is running/);
    t.notMatch(text.stdout, /WARNING/, 'no problem reported');
    const pool = tabbyctl('get', 'ippool', 'default-ipv4-ippool', '-o', 'json');
    t.equal(pool.status, 0, 'tabbyctl get ippool', { log: pool.stderr });
    const spec = (JSON.parse(pool.stdout) as { spec: { ipipMode: string; vxlanMode: string } }).spec;
    const ipip = kernelHasIpip();
    t.same(
      [spec.ipipMode, spec.vxlanMode],
      ipip ? ['Always', 'Never'] : ['Never', 'Always'],
      `default pool fits the kernel (${ipip ? 'ipip' : 'no ipip: VXLAN'})`,
    );
    const link = spawnSync('ip', ['-n', ns, 'link', 'show', ipip ? 'tunl0' : 'vxlan.calico'], { encoding: 'utf8' });
    t.equal(link.status, 0, `${ipip ? 'tunl0' : 'vxlan.calico'} in the kernel`);

    const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
    agent.kill('SIGTERM');
    t.equal(await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 30_000).unref())]), 0, 'SIGTERM: exit 0');
    // (after exit: the log is flushed)
    if (!ipip)
      t.equal(
        log.match(/no ipip support and neither CALICO_IPV4POOL_IPIP nor CALICO_IPV4POOL_VXLAN is set/g)?.length,
        1,
        'the agent says so once',
        { log },
      );
    spawnSync('ip', ['netns', 'del', ns]);
    fs.rmSync(`${R}/run`, { recursive: true, force: true }); // the unit's RuntimeDirectory, not install's

    lap('agent ready, stopped');
    const u = make('uninstall', vars);
    t.equal(u.status, 0, 'make uninstall', { log: u.out });
    t.match(u.out, /kept the datastore/);
    t.match(u.out, /kept .*tabby-node\.env \(changed since install/);
    const left = tree(R).filter((f) => !before.includes(f));
    t.same(
      left.filter((f) => !f.startsWith('var/')),
      ['etc/', 'etc/tabby/', 'etc/tabby/tabby-node.env'],
      'left: the changed settings…',
    );
    t.ok(left.includes('var/lib/tabby/datastore/'), '… and the datastore');
    t.ok(fs.existsSync(`${R}/opt/cni/bin/portmap`), "the operator's portmap is untouched");
    t.equal(sha(envFile), crypto.createHash('sha256').update(edited).digest('hex'));

    const p = make('uninstall', { ...vars, PURGE: '1' });
    t.equal(p.status, 0, 'make uninstall PURGE=1 (after the uninstall): what it kept', { log: p.out });
    // (etc/ and var/lib/: the uninstall above kept etc/ for the settings; the agent made var/lib/)
    t.same(
      tree(R).filter((f) => !before.includes(f)),
      ['etc/', 'var/', 'var/lib/'],
      'PURGE=1: settings and datastore gone too',
    );
    const again2 = make('uninstall', vars);
    t.not(again2.status, 0, 'uninstall with nothing installed fails…');
    t.match(again2.out, /no manifest at .*installed-files: nothing installed by make install here/, '… and says why');
  });

  t.test("the machine's own install paths did not change", async (t) => {
    t.same(snapshot(HOST_PATHS), hostBefore);
  });
});
