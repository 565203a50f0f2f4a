// tabby-install-cni (src/cni/install.ts): configuration errors name the variable; a new release replaces
// the old one but keeps the one before (a plugin call may still run from it); in-place installs use the
// TLS files where they are; the conflist never contains settings that were not given.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseInstallConfig, installCni, buildConflist, wrapperScript, InstallError, INSTALL_ENV } from '../../../src/cni/install.js';
import { runTag } from '../../helpers/run-tag.js';

function tmpdir(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}cni-`));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function fakeApp(dir: string, version: string): string {
  const app = path.join(dir, `app-${version}`);
  fs.mkdirSync(path.join(app, 'dist/src/cni'), { recursive: true });
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ version }));
  fs.writeFileSync(path.join(app, 'dist/src/cni/main.js'), `// ${version}\n`);
  fs.mkdirSync(path.join(app, 'src/native/build/Release'), { recursive: true });
  fs.writeFileSync(path.join(app, 'src/native/build/Release/tabby-cni'), `client ${version}\n`);
  return app;
}

t.test('bad settings are refused with the variable named', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ DATASTORE_TYPE: 'etcd2' }, /^DATASTORE_TYPE: "etcd2": expected file or etcdv3$/],
    [{ DATASTORE_TYPE: 'etcdv3' }, /^ETCD_ENDPOINTS: required with DATASTORE_TYPE=etcdv3$/],
    [{ CNI_MTU: '9x' }, /^CNI_MTU: "9x"/],
    [{ CNI_MTU: '100' }, /^CNI_MTU: "100": expected a number 576..65535$/],
    [{ CNI_CONF_NAME: '10-tabby.conf' }, /^CNI_CONF_NAME: .*\.conflist$/],
    [{ CNI_BIN_DIR: 'opt/cni/bin' }, /^CNI_BIN_DIR: "opt\/cni\/bin" is not an absolute path$/],
    [{ TABBY_CNI_RUNTIME: 'symlink' }, /^TABBY_CNI_RUNTIME: "symlink": expected copy or in-place$/],
    [{ TABBY_CNI_RESIDENT: 'yes' }, /^TABBY_CNI_RESIDENT: "yes": expected true or false$/],
  ];
  for (const [env, re] of cases) {
    const err = (() => {
      try {
        parseInstallConfig(env);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    t.ok(err instanceof InstallError, JSON.stringify(env));
    t.match((err as Error).message, re);
  }
  t.equal(new Set(INSTALL_ENV.map((e) => e.name)).size, INSTALL_ENV.length, 'no variable listed twice');
});

t.test("the conflist carries only what was given; defaults are the plugin's", async (t) => {
  const plain = buildConflist(parseInstallConfig({})) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
  t.same(plain, {
    name: 'k8s-pod-network',
    cniVersion: '1.0.0',
    plugins: [
      { type: 'tabby', datastore_type: 'file', datastore_dir: '/var/lib/tabby/datastore', ipam: { type: 'tabby-ipam' } },
      { type: 'portmap', snat: true, capabilities: { portMappings: true } },
    ],
  });
  // In-place (host root /): TLS files are referenced where they are, not copied.
  const tls = buildConflist(
    parseInstallConfig({
      DATASTORE_TYPE: 'etcdv3',
      ETCD_ENDPOINTS: 'https://a:2379, https://b:2379',
      ETCD_CA_CERT_FILE: '/etc/tabby/etcd/ca.crt',
    }),
  ) as { plugins: Record<string, unknown>[] };
  t.match(tls.plugins[0], { etcd_endpoints: 'https://a:2379,https://b:2379', etcd_ca_cert_file: '/etc/tabby/etcd/ca.crt' });
  t.notOk('datastore_dir' in tls.plugins[0]!);
});

t.test('wrapper quoting survives odd paths', async (t) => {
  const s = wrapperScript('tabby', "/opt/it's here/node", '/opt/app dir');
  t.match(s, /^exec '\/opt\/it'\\''s here\/node' '\/opt\/app dir\/dist\/src\/cni\/main.js' "\$@"$/m);
});

t.test('a new release replaces the old one and keeps the one before', async (t) => {
  const dir = tmpdir(t);
  const host = path.join(dir, 'host');
  const node = path.join(dir, 'node');
  fs.writeFileSync(node, '#!/bin/sh\n');
  const releases = (): string[] => fs.readdirSync(path.join(host, 'opt/tabby/cni')).sort();
  const install = (version: string): ReturnType<typeof installCni> => {
    const cfg = { ...parseInstallConfig({ TABBY_HOST_ROOT: host, TABBY_APP_DIR: fakeApp(dir, version) }), nodeBinary: node };
    return installCni(cfg);
  };
  const r1 = install('1.0.0');
  t.ok(r1.copied);
  t.equal(releases().length, 1);
  await new Promise((r) => setTimeout(r, 20)); // distinct mtimes for the prune order
  const r2 = install('1.1.0');
  t.ok(r2.copied);
  t.same(
    releases().map((r) => r.split('-')[0]),
    ['1.0.0', '1.1.0'],
  );
  await new Promise((r) => setTimeout(r, 20));
  install('1.2.0');
  t.same(
    releases().map((r) => r.split('-')[0]),
    ['1.1.0', '1.2.0'],
    'the oldest release is pruned',
  );
  const wrapper = fs.readFileSync(path.join(host, 'opt/cni/bin/tabby-fallback'), 'utf8');
  t.match(wrapper, /\/opt\/tabby\/cni\/1\.2\.0-/, 'the fallback wrapper points at the newest');
  for (const name of ['tabby', 'tabby-ipam'])
    t.equal(fs.readFileSync(path.join(host, 'opt/cni/bin', name), 'utf8'), 'client 1.2.0\n', `${name} is the newest client`);
  t.equal(
    fs.readFileSync(path.join(host, wrapper.match(/'(\/opt\/tabby\/cni\/[^/]+)\/app/)![1]!, 'app/dist/src/cni/main.js'), 'utf8'),
    '// 1.2.0\n',
  );
  t.same(fs.readdirSync(path.join(host, 'opt/cni/bin')).sort(), ['tabby', 'tabby-fallback', 'tabby-ipam'], 'no temporary files left');
});

t.test("TABBY_CNI_RESIDENT=false: the in-process plugin's wrapper is `tabby` itself; a missing client is refused", async (t) => {
  const dir = tmpdir(t);
  const host = path.join(dir, 'host');
  const app = fakeApp(dir, '1.0.0');
  installCni(parseInstallConfig({ TABBY_HOST_ROOT: host, TABBY_APP_DIR: app, TABBY_CNI_RUNTIME: 'in-place' }));
  t.same(fs.readdirSync(path.join(host, 'opt/cni/bin')).sort(), ['tabby', 'tabby-fallback', 'tabby-ipam']);
  installCni(parseInstallConfig({ TABBY_HOST_ROOT: host, TABBY_APP_DIR: app, TABBY_CNI_RUNTIME: 'in-place', TABBY_CNI_RESIDENT: 'false' }));
  t.same(fs.readdirSync(path.join(host, 'opt/cni/bin')).sort(), ['tabby', 'tabby-ipam'], 'the fallback wrapper is removed');
  t.match(
    fs.readFileSync(path.join(host, 'opt/cni/bin/tabby-ipam'), 'utf8'),
    /TABBY_CNI_PLUGIN_NAME=\$\{TABBY_CNI_PLUGIN_NAME:-tabby-ipam\}/,
  );
  fs.rmSync(path.join(app, 'src/native/build/Release/tabby-cni'));
  t.throws(
    () => installCni(parseInstallConfig({ TABBY_HOST_ROOT: host, TABBY_APP_DIR: app, TABBY_CNI_RUNTIME: 'in-place' })),
    /TABBY_CNI_RESIDENT: the CNI client .* was not built/,
  );
});

t.test('an app that was not built is refused before anything is written', async (t) => {
  const dir = tmpdir(t);
  const host = path.join(dir, 'host');
  const cfg = parseInstallConfig({ TABBY_HOST_ROOT: host, TABBY_APP_DIR: path.join(dir, 'nothing') });
  t.throws(() => installCni(cfg), /TABBY_APP_DIR: .*not found: build tabby first/);
  t.notOk(fs.existsSync(host));
});
