// The CNI plugin under bad input: GC fails closed, element type errors, a CNI_NETNS that is not a
// network namespace, oversized stdin, echoed values, log levels. Both the in-process plugin and the
// resident server run runCommand/executeCni, so these checks hold on both paths.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { Ipam, StaticPoolSource, type PoolInfo } from '../../../src/ipam/index.js';
import { parseCniEnv, CNI_ERR } from '../../../src/cni/netconf.js';
import { runCommand } from '../../../src/cni/plugin.js';
import { isNetworkNamespace } from '../../../src/cni/netns.js';
import { runTag } from '../../helpers/run-tag.js';
import { standInDeps } from '../../helpers/cni-store.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/cni/main.js');
const tag = `${runTag()}cin`;
const base = { cniVersion: '1.1.0', name: 'k8s-pod-network', type: 'tabby', nodename: 'n1', ipam: { type: 'tabby-ipam' } };
const pool: PoolInfo = { name: 'p', cidr: '10.0.0.0/24', family: 4, blockSize: 26, disabled: false, nodeSelector: '' };

function fakeDeps() {
  const ipam = new Ipam(new MemoryDatastore(), { pools: new StaticPoolSource([pool]) });
  const deps = standInDeps(ipam);
  return { ipam, deps };
}
const env = (command: string, id = 'c1') =>
  parseCniEnv({ CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0' });
const answer = (s: string) => JSON.parse(s) as { code: number; msg: string; details?: string };

async function twoPods() {
  const f = fakeDeps();
  for (const id of ['a', 'b']) t.equal((await runCommand('tabby', env('ADD', id), Buffer.from(JSON.stringify(base)), f.deps)).exitCode, 0);
  return f;
}
const held = async (ipam: Ipam) =>
  (await ipam.ipsByHandle('k8s-pod-network.a')).length + (await ipam.ipsByHandle('k8s-pod-network.b')).length;

t.test('GC without a well-formed cni.dev/valid-attachments is refused with code 7 and releases nothing', async (t) => {
  const { ipam, deps } = await twoPods();
  t.equal(await held(ipam), 2);
  const cases: [string, unknown][] = [
    ['missing', undefined],
    ['null', null],
    ['an object', { containerID: 'a' }],
    ['a string', 'a'],
    ['a null element', [null]],
    ['a number element', [1]],
    ['containerID not a string', [{ containerID: 7, ifname: 'eth0' }]],
    ['containerID missing', [{ ifname: 'eth0' }]],
    ['ifname not a string', [{ containerID: 'a', ifname: ['eth0'] }]],
  ];
  for (const [what, valid] of cases) {
    const conf = valid === undefined ? base : { ...base, 'cni.dev/valid-attachments': valid };
    const out = await runCommand('tabby', parseCniEnv({ CNI_COMMAND: 'GC' }), Buffer.from(JSON.stringify(conf)), deps);
    t.equal(out.exitCode, 1, `${what}: refused`);
    t.equal(answer(out.stdout).code, CNI_ERR.INVALID_NETCONF, `${what}: code 7 (${answer(out.stdout).msg})`);
  }
  t.equal(await held(ipam), 2, 'both live pods still hold their addresses');
});

t.test("GC releases only this network's handles absent from the list", async (t) => {
  const { ipam, deps } = await twoPods();
  // Another network whose name starts with this one's followed by a dot.
  const other = { ...base, name: 'k8s-pod-network.v2' };
  t.equal((await runCommand('tabby', env('ADD', 'z'), Buffer.from(JSON.stringify(other)), deps)).exitCode, 0);
  const out = await runCommand(
    'tabby',
    parseCniEnv({ CNI_COMMAND: 'GC' }),
    Buffer.from(JSON.stringify({ ...base, 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] })),
    deps,
  );
  t.equal(out.exitCode, 0, out.stdout);
  t.equal((await ipam.ipsByHandle('k8s-pod-network.a')).length, 1, 'a listed attachment keeps its address');
  t.same(await ipam.ipsByHandle('k8s-pod-network.b'), [], 'an unlisted one is released');
  t.equal((await ipam.ipsByHandle('k8s-pod-network.v2.z')).length, 1, "another network's handle is untouched");
  const empty = await runCommand(
    'tabby',
    parseCniEnv({ CNI_COMMAND: 'GC' }),
    Buffer.from(JSON.stringify({ ...base, 'cni.dev/valid-attachments': [] })),
    deps,
  );
  t.equal(empty.exitCode, 0, 'an empty list is well-formed (no pods left on this network)');
  t.same(await ipam.ipsByHandle('k8s-pod-network.a'), []);
});

t.test('CHECK with element type errors answers code 7, not an internal error', async (t) => {
  const { deps } = await twoPods();
  for (const ips of [[null], [7], [{ address: 7 }], 'x']) {
    const conf = { ...base, prevResult: { cniVersion: '1.1.0', ips, interfaces: [] } };
    const out = await runCommand('tabby', env('CHECK', 'a'), Buffer.from(JSON.stringify(conf)), deps);
    t.equal(answer(out.stdout).code, CNI_ERR.INVALID_NETCONF, `ips ${JSON.stringify(ips)}: ${answer(out.stdout).msg}`);
  }
});

t.test('isNetworkNamespace: a netns yes; a plain file, a directory, a missing path, another namespace type no', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'plain'), 'x');
  t.equal(isNetworkNamespace('/proc/self/ns/net'), true);
  t.equal(isNetworkNamespace(path.join(dir, 'plain')), false);
  t.equal(isNetworkNamespace(dir), false);
  t.equal(isNetworkNamespace(path.join(dir, 'absent')), false);
  t.equal(isNetworkNamespace('/proc/self/ns/mnt'), false);
  t.equal(isNetworkNamespace(''), false);
});

/** Run the real plugin program. */
function plugin(envExtra: Record<string, string>, stdin: string | Buffer) {
  const r = spawnSync(process.execPath, [MAIN], {
    input: stdin,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env: { PATH: process.env.PATH ?? '', CNI_IFNAME: 'eth0', CNI_CONTAINERID: 'c1', ...envExtra },
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

t.test('the plugin program: a CNI_NETNS that is a plain file is code 3; oversized stdin is refused; no stack traces', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const plain = path.join(dir, 'plain');
  fs.writeFileSync(plain, 'x');
  const conf = JSON.stringify({
    ...base,
    cniVersion: '1.0.0',
    datastore_type: 'file',
    datastore_dir: path.join(dir, 'ds'),
    log_file_path: path.join(dir, 'cni.log'),
  });
  for (const cmd of ['ADD', 'CHECK']) {
    const r = plugin(
      { CNI_COMMAND: cmd, CNI_NETNS: plain },
      cmd === 'CHECK' ? JSON.stringify({ ...JSON.parse(conf), prevResult: { ips: [] } }) : conf,
    );
    t.equal(r.status, 1);
    t.equal(answer(r.out).code, CNI_ERR.UNKNOWN_CONTAINER, `${cmd}: ${r.out.trim()}`);
  }
  const huge = Buffer.alloc(3 << 20, 0x20);
  Buffer.from(conf).copy(huge);
  const big = plugin({ CNI_COMMAND: 'ADD', CNI_NETNS: '/proc/self/ns/net' }, huge);
  t.equal(big.status, 1);
  t.equal(answer(big.out).code, CNI_ERR.INVALID_NETCONF, big.out.trim());
  t.match(answer(big.out).msg, /larger than 1 MiB/);
  t.notOk(fs.existsSync(path.join(dir, 'ds')), 'nothing was done (the datastore was not even opened)');
});

t.test('echoed values are cut and control characters escaped', async (t) => {
  const id = `x${'\u0007\u001b[31m'.repeat(10)}${'a'.repeat(200_000)}`;
  const { deps } = fakeDeps();
  let msg = '';
  try {
    parseCniEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: '/x', CNI_IFNAME: 'eth0' });
  } catch (e) {
    msg = (e as Error).message;
  }
  t.ok(msg.length > 0 && msg.length < 400, `message is ${msg.length} chars`);
  t.notMatch(msg, /[\u0000-\u001f\u007f]/, 'no raw control characters');
  t.match(msg, /\\u0007/, 'they are shown escaped');
  t.match(msg, /200\d{3} (chars|bytes)/, 'and it says how long the value was');
  const out = await runCommand(
    'tabby',
    env('ADD'),
    Buffer.from(JSON.stringify({ ...base, ipam: { type: 'tabby-ipam', ipv4_pools: 'p'.repeat(100_000) } })),
    deps,
  );
  t.ok(out.stdout.length < 1000, `a netconf error stays short (${out.stdout.length} bytes)`);
});

t.test('log levels: an invalid TABBY_LOG_LEVEL (code 4) or log_level (code 7) is named, never a crash', async (t) => {
  const { deps } = fakeDeps();
  let code = 0;
  let msg = '';
  try {
    parseCniEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/x', CNI_IFNAME: 'eth0', TABBY_LOG_LEVEL: 'loud' });
  } catch (e) {
    code = (e as { code: number }).code;
    msg = (e as Error).message;
  }
  t.equal(code, CNI_ERR.INVALID_ENV);
  t.match(msg, /TABBY_LOG_LEVEL/);
  const out = await runCommand('tabby', env('ADD'), Buffer.from(JSON.stringify({ ...base, log_level: 'loud' })), deps);
  t.equal(answer(out.stdout).code, CNI_ERR.INVALID_NETCONF);
  t.match(answer(out.stdout).msg, /log_level/);
  const r = plugin({ CNI_COMMAND: 'ADD', CNI_NETNS: '/proc/self/ns/net', TABBY_LOG_LEVEL: 'loud' }, JSON.stringify(base));
  t.equal(answer(r.out).code, CNI_ERR.INVALID_ENV, r.out);
  t.equal(r.err, '', 'nothing on stderr');
});
