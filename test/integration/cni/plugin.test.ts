// The tabby CNI plugin driven like containerd drives it, against real network namespaces: 20 pods on one
// node, each pingable from the node; chained with the reference portmap plugin (prevResult passes
// through, a hostPort reaches the pod); idempotent ADD/DEL; CHECK; bad input → CNI error codes with
// nothing allocated.
import { POOLS_PREFIX } from '../../../src/datastore/keys.js';
import t from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { FileDatastore } from '../../../src/datastore/file.js';
import { Ipam } from '../../../src/ipam/index.js';
import { CNI_ERR } from '../../../src/cni/netconf.js';
import { openDatastore } from '../../../src/datastore/index.js';

import { etcdMissing, startEtcd } from '../../helpers/etcd.js';
import {
  PLUGIN,
  PORTMAP,
  bridgeLoopbackPort,
  cniEnv,
  containerIdOf,
  ip,
  isRoot,
  makeNode,
  pingFrom,
  runPlugin,
  type NodeEnv,
  type PluginRun,
} from './harness.js';
import { runTag } from '../../helpers/run-tag.js';

const tag = `${runTag().slice(0, 10)}c`;
const skip = !isRoot()
  ? 'needs root (network namespaces)'
  : !fs.existsSync(PORTMAP)
    ? `${PORTMAP} missing (Debian containernetworking-plugins)`
    : false;
const POD_COUNT = 20;
const quiet = { info() {}, warn() {}, error() {} };

async function withIpam<T>(node: NodeEnv, fn: (ipam: Ipam) => Promise<T>): Promise<T> {
  const ds = new FileDatastore(node.dsDir);
  try {
    return await fn(new Ipam(ds, { logger: quiet }));
  } finally {
    await ds.close();
  }
}
const inUse = (node: NodeEnv) => withIpam(node, async (ipam) => (await ipam.listBlocks()).reduce((s, b) => s + b.inUse, 0));
const caliLinks = (node: NodeEnv) =>
  ip('-n', node.ns, '-o', 'link', 'show')
    .split('\n')
    .filter((l) => / cali[0-9a-f]+[@:]/.test(l));

/** containerd's view of the conflist: tabby, then portmap with prevResult and runtimeConfig. */
function portmapConf(prevResult: unknown, hostPort: number): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'portmap',
    snat: true,
    capabilities: { portMappings: true },
    runtimeConfig: { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }] },
    prevResult,
  });
}

async function addChained(node: NodeEnv, i: number): Promise<{ tabby: PluginRun; portmap: PluginRun; ip: string }> {
  const netns = node.makePod(i);
  const env = cniEnv('ADD', containerIdOf(tag, i), netns, `pod-${i}`);
  const tabby = await runPlugin(node.ns, PLUGIN, env, JSON.stringify(node.conf()));
  if (tabby.code !== 0) return { tabby, portmap: tabby, ip: '' };
  const portmap = await runPlugin(node.ns, PORTMAP, env, portmapConf(tabby.json, 30000 + i), { node: false });
  return { tabby, portmap, ip: tabby.json.ips?.[0]?.address.split('/')[0] ?? '' };
}

async function delChained(node: NodeEnv, i: number | string): Promise<[PluginRun, PluginRun]> {
  const env = cniEnv('DEL', containerIdOf(tag, i), `/var/run/netns/${node.podNs(i)}`, `pod-${i}`);
  const pm = await runPlugin(node.ns, PORTMAP, env, portmapConf(undefined, 30000 + Number(i)), { node: false });
  const tb = await runPlugin(node.ns, PLUGIN, env, JSON.stringify(node.conf()));
  return [pm, tb];
}

/** Ping until answered or 10 s passed (a loaded CI machine can be slow to answer the first ARP). */
async function pingUntil(ns: string, target: string): Promise<boolean> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) if (await pingFrom(ns, target, 1)) return true;
  return false;
}

/** Run `fn` over items with at most `n` in flight. */
async function pool<T, R>(items: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const k = next++;
        out[k] = await fn(items[k]!);
      }
    }),
  );
  return out;
}

/** A TCP server inside the pod netns answering "pong" on :80; resolves once listening. */
function podServer(podNs: string): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const c = spawn(
      'ip',
      [
        'netns',
        'exec',
        podNs,
        process.execPath,
        '-e',
        'require("net").createServer((s)=>s.end("pong")).listen(80,"0.0.0.0",()=>console.log("ready"))',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const timer = setTimeout(() => {
      c.kill();
      reject(new Error('pod server did not start'));
    }, 15_000);
    c.stdout.once('data', () => {
      clearTimeout(timer);
      resolve(() => c.kill());
    });
    c.on('error', reject);
  });
}

function tcpFromNode(nodeNs: string, host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(
      'ip',
      [
        'netns',
        'exec',
        nodeNs,
        process.execPath,
        '-e',
        `const s=require("net").connect(${port},"${host}");let d="";s.on("data",(b)=>d+=b);s.on("end",()=>{console.log(d);process.exit(0)});s.on("error",(e)=>{console.log("error "+e.code);process.exit(0)});setTimeout(()=>{console.log("timeout");process.exit(0)},5000)`,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let out = '';
    c.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    c.on('close', () => resolve(out.trim()));
  });
}

t.test('20 pods via the CNI plugin chained with portmap', { skip }, async (t) => {
  const node = await makeNode(tag, [{ name: 'default-ipv4-ippool', cidr: '10.244.0.0/16' }]);
  t.teardown(() => node.destroy());
  const idx = Array.from({ length: POD_COUNT }, (_, i) => i);

  // The first ADD alone: portmap creates its shared iptables chains check-then-create, so two first ADDs
  // racing in one netns can fail with "CHAIN_USER_ADD failed (File exists)" (the reference plugin's race,
  // not tabby's); the runtime's first pod on a node is in the same position. The rest run 4 at a time.
  const adds = [await addChained(node, 0), ...(await pool(idx.slice(1), 4, (i) => addChained(node, i)))];
  for (const [i, a] of adds.entries()) {
    t.equal(a.tabby.code, 0, `pod ${i}: tabby ADD ${a.tabby.stdout}${a.tabby.stderr}`);
    t.equal(a.portmap.code, 0, `pod ${i}: portmap ADD ${a.portmap.stdout}${a.portmap.stderr}`);
  }
  const first = adds[0]!;
  t.match(first.tabby.json, {
    cniVersion: '1.0.0',
    interfaces: [{ name: /^cali[0-9a-f]{11}$/ }, { name: 'eth0', sandbox: `/var/run/netns/${node.podNs(0)}` }],
    ips: [{ address: /^10\.244\.\d+\.\d+\/32$/, interface: 1 }],
  });
  t.same(first.portmap.json.ips, first.tabby.json.ips, 'portmap passes prevResult through');
  t.same(first.portmap.json.interfaces, first.tabby.json.interfaces);
  const ips = adds.map((a) => a.ip);
  t.equal(new Set(ips).size, POD_COUNT, '20 distinct addresses');
  t.same(
    ip('-n', node.podNs(3), '-4', '-o', 'addr', 'show', 'dev', 'eth0').match(/inet (\S+)/)?.[1],
    `${ips[3]}/32`,
    'the pod has its address on eth0',
  );
  t.match(ip('-n', node.podNs(3), 'route'), /default via 169\.254\.1\.1 dev eth0/);

  const pings = await Promise.all(ips.map((a) => pingUntil(node.ns, a)));
  t.same(pings.filter((p) => !p).length, 0, 'every pod answers ping from the node');

  // The hostPort portmap set up for pod 0 reaches it (DNAT rules built from our result).
  const stop = await podServer(node.podNs(0));
  t.teardown(stop);
  t.equal(await tcpFromNode(node.ns, node.nodeIp, 30000), 'pong', 'node:30000 → pod 0:80 through portmap');

  // Idempotent ADD: same container id, same address.
  const again = await runPlugin(
    node.ns,
    PLUGIN,
    cniEnv('ADD', containerIdOf(tag, 5), `/var/run/netns/${node.podNs(5)}`, 'pod-5'),
    JSON.stringify(node.conf()),
  );
  t.equal(again.code, 0, again.stdout);
  t.equal(again.json.ips?.[0]?.address, `${ips[5]}/32`, 'second ADD returns the same address');
  t.ok(await pingUntil(node.ns, ips[5]!), 'still pingable after the repeated ADD');
  t.equal(await inUse(node), POD_COUNT, 'no extra address taken');

  // CHECK with the result as prevResult.
  const chk = await runPlugin(
    node.ns,
    PLUGIN,
    cniEnv('CHECK', containerIdOf(tag, 7), `/var/run/netns/${node.podNs(7)}`, 'pod-7'),
    JSON.stringify(node.conf({ prevResult: adds[7]!.tabby.json })),
  );
  t.equal(chk.code, 0, `CHECK ${chk.stdout}`);
  ip('-n', node.podNs(7), 'route', 'del', 'default');
  const chkBad = await runPlugin(
    node.ns,
    PLUGIN,
    cniEnv('CHECK', containerIdOf(tag, 7), `/var/run/netns/${node.podNs(7)}`, 'pod-7'),
    JSON.stringify(node.conf({ prevResult: adds[7]!.tabby.json })),
  );
  t.equal(chkBad.code, 1, 'CHECK notices a missing default route');
  t.match(chkBad.json.msg, /route|default/i);

  // DEL of all (portmap then tabby, as containerd does), one pod's netns already gone.
  node.deletePod(9);
  const dels = await pool(idx, 4, (i) => delChained(node, i));
  for (const [i, [pm, tb]] of dels.entries()) {
    t.equal(pm.code, 0, `pod ${i}: portmap DEL ${pm.stdout}`);
    t.equal(tb.code, 0, `pod ${i}: tabby DEL ${tb.stdout}${tb.stderr}`);
    t.equal(tb.stdout.trim(), '', 'DEL prints nothing on success');
  }
  t.equal(await inUse(node), 0, 'no address allocated after DEL of all');
  t.same(await withIpam(node, async (ipam) => (await ipam.store.listHandles()).length), 0, 'no handle left');
  t.same(caliLinks(node), [], 'no cali* link left on the node');
  t.notMatch(ip('-n', node.ns, 'route'), /cali/, 'no route to a pod left');
  const del2 = await delChained(node, 3);
  t.equal(del2[1].code, 0, 'DEL again succeeds');
});

t.test('bad input: the right CNI error code and nothing allocated', { skip }, async (t) => {
  const node = await makeNode(`${tag.slice(0, -1)}b`, [
    { name: 'main', cidr: '10.245.0.0/24' },
    { name: 'tiny', cidr: '10.246.0.0/30', blockSize: 30 },
  ]);
  t.teardown(() => node.destroy());
  const netns = node.makePod('x');
  const conf = JSON.stringify(node.conf());
  const env = cniEnv('ADD', 'badinput0001', netns, 'pod-x');
  const check = async (what: string, r: PluginRun, code: number) => {
    t.equal(r.code, 1, `${what}: non-zero exit`);
    t.equal(r.json.code, code, `${what}: code ${code} (${r.json.msg})`);
    t.type(r.json.msg, 'string');
    t.equal(r.json.cniVersion, '1.0.0');
    t.equal(await inUse(node), 0, `${what}: nothing allocated`);
    t.same(caliLinks(node), [], `${what}: no link created`);
  };

  const { CNI_NETNS: _n, ...noNetns } = env;
  void _n;
  await check('missing CNI_NETNS', await runPlugin(node.ns, PLUGIN, noNetns, conf), CNI_ERR.INVALID_ENV);
  const { CNI_COMMAND: _c, ...noCmd } = env;
  void _c;
  await check('missing CNI_COMMAND', await runPlugin(node.ns, PLUGIN, noCmd, conf), CNI_ERR.INVALID_ENV);
  await check('malformed netconf', await runPlugin(node.ns, PLUGIN, env, '{"cniVersion": "1.0.0", "name": '), CNI_ERR.DECODE_FAILURE);
  await check(
    'unsupported version',
    await runPlugin(node.ns, PLUGIN, env, JSON.stringify(node.conf({ cniVersion: '0.1.0' }))),
    CNI_ERR.INCOMPATIBLE_VERSION,
  );
  await check(
    'unknown pool',
    await runPlugin(node.ns, PLUGIN, env, JSON.stringify(node.conf({ ipam: { type: 'tabby-ipam', ipv4_pools: ['no-such-pool'] } }))),
    CNI_ERR.INVALID_NETCONF,
  );
  await check(
    'netns gone',
    await runPlugin(node.ns, PLUGIN, { ...env, CNI_NETNS: '/var/run/netns/tb-does-not-exist' }, conf),
    CNI_ERR.UNKNOWN_CONTAINER,
  );

  // Exhaust the tiny pool (4 addresses) from elsewhere, then ask for it.
  await withIpam(node, async (ipam) => {
    await ipam.autoAssign({ handle: 'filler', node: 'other-node', num4: 4, pools: ['tiny'] });
  });
  const before = await inUse(node);
  const ex = await runPlugin(node.ns, PLUGIN, env, JSON.stringify(node.conf({ ipam: { type: 'tabby-ipam', ipv4_pools: ['tiny'] } })));
  t.equal(ex.code, 1);
  t.equal(ex.json.code, CNI_ERR.POOL_EXHAUSTED, `exhausted: ${ex.json.msg}`);
  t.match(ex.json.msg, /tiny.*exhausted/);
  t.equal(await inUse(node), before, 'exhausted: nothing more allocated');
  t.same(await withIpam(node, (ipam) => ipam.ipsByHandle('k8s-pod-network.badinput0001')), []);
  t.same(caliLinks(node), []);
  t.ok(fs.readFileSync(node.logFile, 'utf8').includes('"code":100'), 'the error is logged to log_file_path');

  // VERSION works with no config at all.
  const v = await runPlugin(node.ns, PLUGIN, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
  t.equal(v.code, 0);
  t.ok((v.json as { supportedVersions?: string[] }).supportedVersions?.includes('1.0.0'));
});

t.test('dual stack: one IPv4 and one IPv6 (/122 block) address, both pingable', { skip }, async (t) => {
  const node = await makeNode(`${tag.slice(0, -1)}6`, [
    { name: 'v4', cidr: '10.247.0.0/16' },
    { name: 'v6', cidr: 'fd00:247::/64', blockSize: 122 },
  ]);
  t.teardown(() => node.destroy());
  ip('-n', node.ns, 'addr', 'add', '2001:db8::2/64', 'dev', 'up0', 'nodad');
  ip('-n', node.ns, 'route', 'add', 'default', 'via', '2001:db8::fe', 'dev', 'up0');
  const netns = node.makePod(0);
  const r = await runPlugin(
    node.ns,
    PLUGIN,
    cniEnv('ADD', containerIdOf(tag, 'ds'), netns, 'pod-ds'),
    JSON.stringify(node.conf({ ipam: { type: 'tabby-ipam', assign_ipv6: 'true' } })),
  );
  t.equal(r.code, 0, r.stdout);
  const addrs = (r.json.ips ?? []).map((i) => i.address);
  const v4 = addrs.find((a) => !a.includes(':'));
  const v6 = addrs.find((a) => a.includes(':'));
  t.match(v4, /^10\.247\.\d+\.\d+\/32$/);
  t.match(v6, /^fd00:247::[0-9a-f:]+\/128$/);
  t.match(r.json, {
    routes: [
      { dst: '0.0.0.0/0', gw: '169.254.1.1' },
      { dst: '::/0', gw: 'fe80::ecee:eeff:feee:eeee' },
    ],
  });
  const blocks = await withIpam(node, (ipam) => ipam.listBlocks());
  t.ok(
    blocks.some((b) => b.family === 6 && b.cidr.endsWith('/122') && b.node === 'node-1'),
    'an affine /122 block',
  );
  t.ok(await pingUntil(node.ns, v4!.split('/')[0]!), 'IPv4 pingable');
  t.ok(await pingUntil(node.ns, v6!.split('/')[0]!), 'IPv6 pingable (after neighbour discovery)');
  const d = await runPlugin(node.ns, PLUGIN, cniEnv('DEL', containerIdOf(tag, 'ds'), netns, 'pod-ds'), JSON.stringify(node.conf()));
  t.equal(d.code, 0);
  t.equal(await inUse(node), 0);
});

t.test('etcd datastore from the netconf (datastore_type, etcd_endpoints)', { skip: skip || etcdMissing() || false }, async (t) => {
  const etcd = await startEtcd(t);
  const ds = await openDatastore({ type: 'etcdv3', etcdEndpoints: etcd.endpoints });
  t.teardown(() => ds.close());
  await ds.create(`${POOLS_PREFIX}etcd-pool`, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'etcd-pool' },
    spec: { cidr: '10.248.0.0/16', blockSize: 26 },
  });
  const node = await makeNode(`${tag.slice(0, -1)}e`, []);
  t.teardown(() => node.destroy());
  // The plugin runs in the node's netns; etcd listens on the host's loopback: relay its port in.
  const port = Number(new URL(etcd.clientUrl).port);
  const stopRelay = await bridgeLoopbackPort(node.ns, port, `${node.dsDir}/etcd.sock`);
  t.teardown(stopRelay);
  const conf = JSON.stringify(node.conf({ datastore_type: 'etcdv3', etcd_endpoints: etcd.endpoints.join(','), datastore_dir: undefined }));
  const netns = node.makePod(0);
  const add = await runPlugin(node.ns, PLUGIN, cniEnv('ADD', containerIdOf(tag, 'et'), netns, 'pod-et'), conf);
  t.equal(add.code, 0, add.stdout);
  const addr = add.json.ips?.[0]?.address ?? '';
  t.match(addr, /^10\.248\./, 'address from the pool stored in etcd');
  t.ok(await pingUntil(node.ns, addr.split('/')[0]!), 'pingable');
  const ipam = new Ipam(ds, { logger: quiet });
  t.same(await ipam.ipsByHandle(`k8s-pod-network.${containerIdOf(tag, 'et')}`), [addr], 'the allocation is in etcd');
  const del = await runPlugin(node.ns, PLUGIN, cniEnv('DEL', containerIdOf(tag, 'et'), netns, 'pod-et'), conf);
  t.equal(del.code, 0, del.stdout);
  t.same(await ipam.ipsByHandle(`k8s-pod-network.${containerIdOf(tag, 'et')}`), []);
  await etcd.stop();
  const down = await runPlugin(node.ns, PLUGIN, cniEnv('ADD', containerIdOf(tag, 'e2'), netns, 'pod-e2'), conf);
  t.equal(down.code, 1, 'etcd down: ADD fails');
  t.ok(
    ([CNI_ERR.TRY_AGAIN_LATER, CNI_ERR.DATASTORE_ERROR, CNI_ERR.INTERNAL] as number[]).includes(down.json.code ?? 0),
    `etcd down: code ${down.json.code} (${down.json.msg})`,
  );
  t.same(caliLinks(node), [], 'nothing wired');
});
