import t from 'tap';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { Ipam, StaticPoolSource, type PoolInfo } from '../../../src/ipam/index.js';
import { parseNetConf, parseCniEnv, parseCniArgs, CNI_ERR, type CniError } from '../../../src/cni/netconf.js';
import { runCommand, hostIfNameFor, type PluginDeps, type Wiring, type WireRequest } from '../../../src/cni/plugin.js';
import { nullLogger } from '../../../src/cni/logger.js';
import { desiredEndpoint } from '../../../src/cni/endpoint.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { buildConflist, parseInstallConfig } from '../../../src/cni/install.js';
import { runTag } from '../../helpers/run-tag.js';

const base = { cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tabby', nodename: 'n1', ipam: { type: 'tabby-ipam' } };
const env = (command: string, id = 'c1', extra: Record<string, string> = {}) =>
  parseCniEnv({
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: '/var/run/netns/x',
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/opt/cni/bin',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${id}`,
    ...extra,
  });

function fakeDeps(pools: PoolInfo[]) {
  const ds = new MemoryDatastore();
  const ipam = new Ipam(ds, { pools: new StaticPoolSource(pools) });
  const wired = new Map<string, WireRequest>();
  const wiring: Wiring & { failNext?: Error } = {
    async wire(req) {
      if (wiring.failNext) {
        const e = wiring.failNext;
        delete wiring.failNext;
        throw e;
      }
      wired.set(req.hostIfName, req);
      return { hostIfName: req.hostIfName, hostMac: 'ee:ee:ee:ee:ee:ee', containerMac: '02:00:00:00:00:01', containerIfIndex: 2 };
    },
    async unwire(req) {
      wired.delete(req.hostIfName);
    },
    async check(req) {
      return wired.has(req.hostIfName) ? [] : [`host interface ${req.hostIfName} is missing`];
    },
  };
  const deps: PluginDeps = {
    logger: nullLogger,
    nodename: (c) => c.nodename ?? 'n1',
    netnsExists: (p) => p !== '' && !p.includes('gone'),
    openIpam: async () => ({ ipam, close: async () => undefined }),
    wiring: async () => wiring,
  };
  return { ds, ipam, wired, wiring, deps };
}
const pool = (name: string, cidr: string, extra: Partial<PoolInfo> = {}): PoolInfo => ({
  name,
  cidr,
  family: cidr.includes(':') ? 6 : 4,
  blockSize: cidr.includes(':') ? 122 : 26,
  disabled: false,
  nodeSelector: '',
  ...extra,
});
const run = (
  d: PluginDeps,
  command: string,
  conf: object,
  id = 'c1',
  name: 'tabby' | 'tabby-ipam' = 'tabby',
  extra: Record<string, string> = {},
) => runCommand(name, env(command, id, extra), Buffer.from(JSON.stringify(conf)), d);
const parse = (s: string) =>
  JSON.parse(s) as Record<string, unknown> & {
    ips: { address: string; interface?: number; version?: string }[];
    code: number;
    msg: string;
    interfaces: { name: string; sandbox?: string }[];
  };

t.test('parseNetConf: versions, defaults, errors', async (t) => {
  const c = parseNetConf(
    JSON.stringify({ ...base, mtu: 1440, datastore_type: 'etcdv3', ipam: { type: 'tabby-ipam', ipv4_pools: ['p1'], assign_ipv6: 'true' } }),
  );
  t.equal(c.cniVersion, '1.0.0');
  t.same(c.ipam.ipv4Pools, ['p1']);
  t.equal(c.ipam.assignIpv4, true);
  t.equal(c.ipam.assignIpv6, true);
  t.equal(c.mtu, 1440);
  t.equal(c.logFilePath, '/var/log/tabby/cni.log');
  t.equal(c.raw.datastore_type, 'etcdv3');
  for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.1.0']) t.equal(parseNetConf({ ...base, cniVersion: v }).cniVersion, v);
  const code = (f: () => unknown) => {
    try {
      f();
      return 0;
    } catch (e) {
      return (e as CniError).code;
    }
  };
  t.equal(
    code(() => parseNetConf('{not json')),
    CNI_ERR.DECODE_FAILURE,
  );
  t.equal(
    code(() => parseNetConf('')),
    CNI_ERR.DECODE_FAILURE,
  );
  t.equal(
    code(() => parseNetConf({ ...base, cniVersion: '0.2.0' })),
    CNI_ERR.INCOMPATIBLE_VERSION,
  );
  t.equal(
    code(() => parseNetConf({ ...base, cniVersion: undefined })),
    CNI_ERR.INVALID_NETCONF,
  );
  t.equal(
    code(() => parseNetConf({ ...base, name: '' })),
    CNI_ERR.INVALID_NETCONF,
  );
  t.equal(
    code(() => parseNetConf({ ...base, ipam: { type: 'host-local' } })),
    CNI_ERR.UNSUPPORTED_FIELD,
  );
  t.equal(
    code(() => parseNetConf({ ...base, mtu: 'big' })),
    CNI_ERR.INVALID_NETCONF,
  );
  t.equal(
    code(() => parseNetConf({ ...base, ipam: { type: 'tabby-ipam', ipv4_pools: 'p1' } })),
    CNI_ERR.INVALID_NETCONF,
  );
  const req = parseNetConf({ ...base, args: { cni: { ips: ['10.0.0.9'] } }, runtimeConfig: { ips: ['10.0.0.10/24'] } });
  t.same(req.requestedIps, ['10.0.0.9', '10.0.0.10']);
});

t.test('parseNetConf accepts the conflist tabby-install-cni writes', async (t) => {
  const cfg = parseInstallConfig({
    DATASTORE_TYPE: 'etcdv3',
    ETCD_ENDPOINTS: 'http://10.0.0.1:2379',
    NODENAME: 'node-a',
    CNI_MTU: '1440',
    TABBY_APP_DIR: '/opt/tabby',
  });
  const list = buildConflist(cfg);
  const c = parseNetConf(JSON.stringify(list));
  t.equal(c.type, 'tabby');
  t.equal(c.name, 'k8s-pod-network');
  t.equal(c.nodename, 'node-a');
  t.equal(c.raw.datastore_type, 'etcdv3');
  t.equal(c.ipam.type, 'tabby-ipam');
  // As the runtime passes one plugin of the list:
  const plugins = list.plugins as Record<string, unknown>[];
  const one = parseNetConf({ ...plugins[0], name: list.name, cniVersion: list.cniVersion });
  t.equal(one.raw.etcd_endpoints, 'http://10.0.0.1:2379');
});

t.test('parseCniEnv: missing variables are error 4', async (t) => {
  const code = (e: NodeJS.ProcessEnv) => {
    try {
      parseCniEnv(e);
      return 0;
    } catch (x) {
      return (x as CniError).code;
    }
  };
  t.equal(code({}), CNI_ERR.INVALID_ENV);
  t.equal(code({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0' }), CNI_ERR.INVALID_ENV, 'ADD without CNI_NETNS');
  t.equal(code({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c', CNI_IFNAME: 'eth0' }), 0, 'DEL without CNI_NETNS is fine');
  t.equal(code({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c/..', CNI_IFNAME: 'eth0', CNI_NETNS: '/x' }), CNI_ERR.INVALID_ENV);
  t.equal(code({ CNI_COMMAND: 'FROB' }), CNI_ERR.INVALID_ENV);
  t.equal(code({ CNI_COMMAND: 'VERSION' }), 0);
  t.same(parseCniArgs('A=1;B=x=y;'), { A: '1', B: 'x=y' });
});

t.test('ADD/CHECK/DEL with fake wiring; idempotent ADD and DEL', async (t) => {
  const { deps, ipam, wired } = fakeDeps([pool('p', '10.0.0.0/24')]);
  const a = await run(deps, 'ADD', base);
  t.equal(a.exitCode, 0, a.stdout);
  const r = parse(a.stdout);
  t.equal(r.cniVersion, '1.0.0');
  t.match(r.ips[0]!.address, /^10\.0\.0\.\d+\/32$/);
  t.equal(r.ips[0]!.interface, 1);
  t.equal(r.ips[0]!.version, undefined, '1.0.0 has no ip version field');
  t.equal(r.interfaces[1]!.sandbox, '/var/run/netns/x');
  t.equal(r.interfaces[0]!.name, hostIfNameFor(env('ADD')));
  t.equal(wired.size, 1);
  const again = parse((await run(deps, 'ADD', base)).stdout);
  t.equal(again.ips[0]!.address, r.ips[0]!.address, 'second ADD of the same container: same address');
  t.same(await ipam.ipsByHandle('k8s-pod-network.c1'), [r.ips[0]!.address]);
  t.equal((await run(deps, 'CHECK', { ...base, prevResult: r })).exitCode, 0);
  const d = await run(deps, 'DEL', base);
  t.equal(d.exitCode, 0);
  t.equal(d.stdout, '');
  t.equal(wired.size, 0);
  t.same(await ipam.ipsByHandle('k8s-pod-network.c1'), []);
  t.equal((await run(deps, 'DEL', base)).exitCode, 0, 'DEL again succeeds');
  const chk = await run(deps, 'CHECK', { ...base, prevResult: r });
  t.equal(chk.exitCode, 1, 'CHECK after DEL fails');
  t.equal(parse(chk.stdout).code, CNI_ERR.INTERNAL);
});

t.test('legacy result format for 0.3.1/0.4.0 and tabby-ipam', async (t) => {
  const { deps } = fakeDeps([pool('p', '10.0.0.0/24'), pool('v6', 'fd00::/120')]);
  const r = parse((await run(deps, 'ADD', { ...base, cniVersion: '0.3.1', ipam: { type: 'tabby-ipam', assign_ipv6: 'true' } })).stdout);
  t.equal(r.cniVersion, '0.3.1');
  t.same(r.ips.map((i) => i.version).sort(), ['4', '6']);
  const i = parse((await run(deps, 'ADD', { ...base, type: 'tabby-ipam', cniVersion: '0.4.0' }, 'c2', 'tabby-ipam')).stdout);
  t.equal(i.interfaces, undefined, 'IPAM plugin returns no interfaces');
  t.equal(i.ips[0]!.version, '4');
  t.equal(i.ips[0]!.interface, undefined);
});

t.test('requested IPs via args / capabilities / CNI_ARGS IP=', async (t) => {
  const { deps, ipam } = fakeDeps([pool('p', '10.0.0.0/24')]);
  const r = parse((await run(deps, 'ADD', { ...base, runtimeConfig: { ips: ['10.0.0.200/24'] } })).stdout);
  t.equal(r.ips[0]!.address, '10.0.0.200/32');
  const r2 = parse((await run(deps, 'ADD', base, 'c2', 'tabby', { CNI_ARGS: 'IP=10.0.0.201;K8S_POD_NAMESPACE=a;K8S_POD_NAME=b' })).stdout);
  t.equal(r2.ips[0]!.address, '10.0.0.201/32');
  const busy = await run(deps, 'ADD', { ...base, args: { cni: { ips: ['10.0.0.200'] } } }, 'c3');
  t.equal(busy.exitCode, 1);
  t.equal(parse(busy.stdout).code, CNI_ERR.ADDRESS_IN_USE);
  t.same(await ipam.ipsByHandle('k8s-pod-network.c3'), []);
});

t.test('bad input: unknown pool, exhausted pool, missing netns, wiring failure → error, nothing allocated', async (t) => {
  const { deps, ipam, wiring } = fakeDeps([pool('tiny', '10.0.0.0/30', { blockSize: 30 })]);
  const unknown = await run(deps, 'ADD', { ...base, ipam: { type: 'tabby-ipam', ipv4_pools: ['nope'] } });
  t.equal(unknown.exitCode, 1);
  t.equal(parse(unknown.stdout).code, CNI_ERR.INVALID_NETCONF);
  t.match(parse(unknown.stdout).msg, /nope/);
  for (let i = 0; i < 4; i++) t.equal((await run(deps, 'ADD', base, `ok${i}`)).exitCode, 0);
  const ex = await run(deps, 'ADD', base, 'full');
  t.equal(ex.exitCode, 1);
  t.equal(parse(ex.stdout).code, CNI_ERR.POOL_EXHAUSTED);
  t.match(parse(ex.stdout).msg, /exhausted/);
  t.same(await ipam.ipsByHandle('k8s-pod-network.full'), []);
  const nons = await run(deps, 'ADD', base, 'x1', 'tabby', { CNI_NETNS: '/var/run/netns/gone' });
  t.equal(parse(nons.stdout).code, CNI_ERR.UNKNOWN_CONTAINER);
  await run(deps, 'DEL', base, 'ok0');
  wiring.failNext = new Error('veth: EEXIST');
  const wf = await run(deps, 'ADD', base, 'x2');
  t.equal(wf.exitCode, 1);
  t.same(await ipam.ipsByHandle('k8s-pod-network.x2'), [], 'a failed wiring releases the address');
  const bad = await runCommand('tabby', env('ADD', 'x3'), Buffer.from('{"cniVersion":'), deps);
  t.equal(parse(bad.stdout).code, CNI_ERR.DECODE_FAILURE);
  t.equal(parse(bad.stdout).cniVersion, '1.0.0');
});

t.test('ADD: a failing wiring or endpoint write undoes the rest and releases the address', async (t) => {
  const { deps, ds, ipam, wired, wiring } = fakeDeps([pool('p', '10.0.0.0/24')]);
  const rs = new ResourceStore(ds);
  const weps = async () => (await rs.list('WorkloadEndpoint')).items.map((w) => w.spec.containerID);
  const commit = ds.commit.bind(ds);
  let failWep: Error | undefined;
  ds.commit = async (ops) => {
    if (failWep && ops.some((o) => o.key.includes('/workloadendpoints/'))) throw failWep;
    return commit(ops);
  };
  t.equal((await run(deps, 'ADD', base, 'ok1')).exitCode, 0);
  t.same(await weps(), ['ok1']);

  wiring.failNext = new Error('veth: EEXIST');
  const wf = await run(deps, 'ADD', base, 'wf');
  t.equal(wf.exitCode, 1);
  t.match(parse(wf.stdout).msg, /EEXIST/, 'the wiring error is the one reported');
  t.same(await weps(), ['ok1'], 'failed wiring: no endpoint for it (written with the address, deleted with its release)');
  t.same(await ipam.ipsByHandle('k8s-pod-network.wf'), [], 'failed wiring: the address is released');

  // The endpoint goes in the address's commit: when that fails, nothing was written and nothing wired.
  failWep = new Error('datastore down');
  const ef = await run(deps, 'ADD', base, 'ef');
  t.equal(ef.exitCode, 1);
  t.match(parse(ef.stdout).msg, /datastore down/);
  t.notOk(wired.has(hostIfNameFor(env('ADD', 'ef'))), 'failed endpoint write: the pod is not wired');
  t.same(await ipam.ipsByHandle('k8s-pod-network.ef'), [], 'failed endpoint write: no address held');
  t.equal(await ipam.store.getHandle('k8s-pod-network.ef'), undefined, 'nor a handle');
  t.same(await weps(), ['ok1'], 'nor an endpoint');
  failWep = undefined;

  t.equal((await run(deps, 'DEL', base, 'ok1')).exitCode, 0);
  t.same(await weps(), [], 'DEL removes the endpoint');
  t.same((await ipam.check()).leaked, [], 'nothing leaked');
});

t.test('ADD: the endpoint names every address of a dual-stack pod; a retried ADD and a DEL without a handle keep it right', async (t) => {
  const { deps, ds, ipam } = fakeDeps([pool('p4', '10.0.0.0/24'), pool('p6', 'fd00:9::/120')]);
  const rs = new ResourceStore(ds);
  const conf = { ...base, ipam: { type: 'tabby-ipam', assign_ipv6: 'true' } };
  const add = parse((await run(deps, 'ADD', conf, 'ds1')).stdout);
  const addrs = add.ips.map((i) => i.address);
  t.equal(addrs.length, 2, `two addresses: ${addrs.join(' ')}`);
  const wep = async () => (await rs.list('WorkloadEndpoint')).items.find((w) => w.spec.containerID === 'ds1');
  t.same((await wep())?.spec.ipNetworks, addrs, 'the endpoint names both');
  const rv = (await wep())?.metadata.resourceVersion;
  t.equal((await run(deps, 'ADD', conf, 'ds1')).exitCode, 0, 'retried ADD');
  t.same((await wep())?.spec.ipNetworks, addrs, 'the same addresses');
  t.not((await wep())?.metadata.resourceVersion, rv, 'the endpoint rewritten (a retried ADD is not fresh)');
  // An endpoint whose handle is gone (released by GC) still goes with the DEL.
  await ipam.releaseByHandle('k8s-pod-network.ds1');
  t.ok(await wep(), 'endpoint still there');
  t.equal((await run(deps, 'DEL', conf, 'ds1')).exitCode, 0);
  t.equal(await wep(), undefined, 'DEL deleted it without a handle');
});

t.test('ADD keeps the labels of an endpoint already there, and one set while the ADD is in flight is not lost', async (t) => {
  const { deps, ds } = fakeDeps([pool('p', '10.0.0.0/24')]);
  const rs = new ResourceStore(ds);
  const name = (id: string) =>
    `default/${desiredEndpoint({ node: 'n1', namespace: 'default', pod: id, containerId: id, endpoint: 'eth0' }, 'x', []).metadata.name}`;
  // Labels set before the pod's ADD (the agent's Kubernetes watch, or `tabbyctl label`).
  const pre = desiredEndpoint({ node: 'n1', namespace: 'default', pod: 'l1', containerId: 'old', endpoint: 'eth0' }, 'caliold', [
    '10.9.9.9/32',
  ]);
  pre.metadata.labels = { ...pre.metadata.labels, app: 'web' };
  const created = await rs.create(pre);
  t.equal((await run(deps, 'ADD', base, 'l1')).exitCode, 0);
  const got = await rs.get('WorkloadEndpoint', name('l1'));
  t.equal(got?.metadata.labels?.app, 'web', 'label kept');
  t.equal(got?.spec.containerID, 'l1', 'the endpoint is the new container’s');
  t.equal(got?.metadata.uid, created.metadata.uid, 'same uid (updated, not recreated)');

  // A writer changes the endpoint between the ADD's read and its commit: the commit's compare-and-swap
  // fails, the assignment re-reads and commits again with the new label.
  const commit = ds.commit.bind(ds);
  let raced = 0;
  ds.commit = async (ops) => {
    const wep = ops.find((o) => o.key.includes('/workloadendpoints/'));
    if (wep && raced++ === 0) {
      const cur = (await rs.get('WorkloadEndpoint', name('l2')))!;
      await rs.update({ ...cur, metadata: { ...cur.metadata, labels: { ...cur.metadata.labels, tier: 'db' } } });
    }
    return commit(ops);
  };
  await rs.create(desiredEndpoint({ node: 'n1', namespace: 'default', pod: 'l2', containerId: 'old', endpoint: 'eth0' }, 'caliold', []));
  t.equal((await run(deps, 'ADD', base, 'l2')).exitCode, 0);
  const l2 = await rs.get('WorkloadEndpoint', name('l2'));
  t.equal(raced, 2, 'the first commit conflicted, the second went in');
  t.equal(l2?.metadata.labels?.tier, 'db', 'the label set meanwhile is kept');
  t.equal(l2?.spec.containerID, 'l2');
});

t.test('a late DEL of a pod’s old sandbox leaves the new sandbox’s endpoint and wiring alone', async (t) => {
  const { deps, ds, ipam, wired } = fakeDeps([pool('p', '10.0.0.0/24')]);
  const rs = new ResourceStore(ds);
  // Two sandboxes (containers) of one pod: same endpoint name, same host veth name.
  const pod = { CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web' };
  const old = parse((await run(deps, 'ADD', base, 'sandbox1', 'tabby', pod)).stdout);
  const cur = parse((await run(deps, 'ADD', base, 'sandbox2', 'tabby', pod)).stdout);
  const weps = async () => (await rs.list('WorkloadEndpoint')).items.map((w) => [w.spec.containerID, w.spec.ipNetworks]);
  t.same(await weps(), [['sandbox2', [cur.ips[0]!.address]]], 'the endpoint is the new sandbox’s');
  const hostIf = hostIfNameFor(env('ADD', 'sandbox2', pod));
  t.ok(wired.has(hostIf));

  t.equal((await run(deps, 'DEL', base, 'sandbox1', 'tabby', pod)).exitCode, 0, 'the old sandbox’s DEL');
  t.same(await ipam.ipsByHandle('k8s-pod-network.sandbox1'), [], `its address ${old.ips[0]!.address} released`);
  t.same(await weps(), [['sandbox2', [cur.ips[0]!.address]]], 'the new sandbox’s endpoint stays');
  t.ok(wired.has(hostIf), 'and its wiring');
  t.same(await ipam.ipsByHandle('k8s-pod-network.sandbox2'), [cur.ips[0]!.address], 'and its address');

  t.equal((await run(deps, 'DEL', base, 'sandbox2', 'tabby', pod)).exitCode, 0);
  t.same(await weps(), [], 'its own DEL removes it');
  t.notOk(wired.has(hostIf), 'and unwires');
});

t.test('VERSION, STATUS, GC', async (t) => {
  const { deps, ipam } = fakeDeps([pool('p', '10.0.0.0/24')]);
  const v = parse((await runCommand('tabby', parseCniEnv({ CNI_COMMAND: 'VERSION' }), Buffer.from('{"cniVersion":"0.4.0"}'), deps)).stdout);
  t.equal(v.cniVersion, '0.4.0');
  t.ok((v.supportedVersions as string[]).includes('1.0.0'));
  const s = await runCommand(
    'tabby',
    parseCniEnv({ CNI_COMMAND: 'STATUS' }),
    Buffer.from(JSON.stringify({ ...base, cniVersion: '1.1.0' })),
    deps,
  );
  t.equal(s.exitCode, 0);
  await run(deps, 'ADD', base, 'keep');
  await run(deps, 'ADD', base, 'drop');
  const g = await runCommand(
    'tabby',
    parseCniEnv({ CNI_COMMAND: 'GC' }),
    Buffer.from(JSON.stringify({ ...base, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] })),
    deps,
  );
  t.equal(g.exitCode, 0, g.stdout);
  t.equal((await ipam.ipsByHandle('k8s-pod-network.keep')).length, 1);
  t.same(await ipam.ipsByHandle('k8s-pod-network.drop'), []);
  const { deps: d2 } = fakeDeps([]);
  const s2 = await runCommand(
    'tabby',
    parseCniEnv({ CNI_COMMAND: 'STATUS' }),
    Buffer.from(JSON.stringify({ ...base, cniVersion: '1.1.0' })),
    d2,
  );
  t.equal(parse(s2.stdout).code, CNI_ERR.PLUGIN_NOT_AVAILABLE);
});

t.test('nodename: netconf, then $TABBY_STATE_DIR/nodename, then the hostname', async (t) => {
  const { resolveNodename } = await import('../../../src/cni/main.js');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}cni-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const noName = parseNetConf({ ...base, nodename: undefined });
  t.equal(resolveNodename(parseNetConf(base), { TABBY_STATE_DIR: dir }), 'n1');
  t.equal(resolveNodename(noName, { TABBY_STATE_DIR: dir }), os.hostname().trim().toLowerCase(), 'no file: the hostname, lower-cased');
  fs.writeFileSync(path.join(dir, 'nodename'), 'node-from-agent\n');
  t.equal(resolveNodename(noName, { TABBY_STATE_DIR: dir }), 'node-from-agent');
});
