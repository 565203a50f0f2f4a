// The resident CNI path as a runtime meets it: the installed `tabby` is the small client executable; a real
// tabby-node runs in the node's namespace and serves the commands on its root-only socket. Pods come up
// pingable, 8 at once with distinct addresses, CHECK and DEL work; every bad input gets the same answer as
// from the in-process plugin; and with the agent hung (SIGSTOP), stopped (SIGTERM) or killed (stale
// socket) ADD still succeeds through the fallback. Which process served a command is read from the
// plugin log (the resident server's lines carry the agent's pid and "resident": true).
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { CNI_ERR } from '../../../src/cni/netconf.js';
import { CLIENT_PATH } from '../../../src/cni/install.js';
import { FileDatastore } from '../../../src/datastore/file.js';
import { Ipam } from '../../../src/ipam/index.js';
import {
  PLUGIN,
  REPO,
  cniEnv,
  containerIdOf,
  installClient,
  ip,
  isRoot,
  makeNode,
  pingFrom,
  runPlugin,
  servedBy,
  startAgent,
  type AgentProc,
  type NodeEnv,
  type PluginRun,
} from './harness.js';
import { runTag } from '../../helpers/run-tag.js';
import { waitFor } from '../../helpers/netns.js';

const tag = `${runTag().slice(0, 10)}r`;
const skip = !isRoot()
  ? 'needs root (network namespaces, the root-only socket)'
  : !fs.existsSync(path.join(REPO, CLIENT_PATH))
    ? `${CLIENT_PATH} not built (npm ci builds it with the native addon)`
    : false;
const quiet = { info() {}, warn() {}, error() {} };

async function inUse(node: NodeEnv): Promise<number> {
  const ds = new FileDatastore(node.dsDir);
  try {
    return (await new Ipam(ds, { logger: quiet }).listBlocks()).reduce((s, b) => s + b.inUse, 0);
  } finally {
    await ds.close();
  }
}

async function pingUntil(ns: string, target: string): Promise<boolean> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) if (await pingFrom(ns, target, 1)) return true;
  return false;
}

interface Setup {
  node: NodeEnv;
  client: string;
  agent: AgentProc;
  stateDir: string;
  env(i: number | string, cmd?: string): Record<string, string>;
}

async function setup(t: Test, suffix: string, cidr: string): Promise<Setup> {
  const node = await makeNode(`${tag.slice(0, -1)}${suffix}`, [{ name: 'main', cidr }]);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}${suffix}-`));
  const client = await installClient(path.join(tmp, 'bin'));
  const stateDir = path.join(tmp, 'state');
  const env = (i: number | string, cmd = 'ADD') =>
    cniEnv(cmd, containerIdOf(tag, i), `/var/run/netns/${node.podNs(i)}`, `pod-${i}`, { TABBY_STATE_DIR: stateDir });
  const s: Partial<Setup> = { node, client, stateDir, env };
  // The agent a test ends with (it may have restarted it) is the one to stop.
  t.teardown(async () => {
    await s.agent?.signal('SIGCONT');
    await s.agent?.signal('SIGKILL');
    node.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  s.agent = await startAgent(node, stateDir);
  return s as Setup;
}

const run = (s: Setup, env: Record<string, string>, conf = s.node.conf()): Promise<PluginRun> =>
  runPlugin(s.node.ns, s.client, env, JSON.stringify(conf), { node: false });

t.test('resident path: 8 pods at once through the client, pingable, distinct; CHECK and DEL', { skip }, async (t) => {
  const s = await setup(t, 'a', '10.248.0.0/24');
  const st = fs.statSync(s.agent.socket);
  t.equal(st.mode & 0o777, 0o600, 'the socket is 0600');
  t.equal(st.uid, 0, 'owned by root');

  const ids = Array.from({ length: 8 }, (_, i) => i);
  for (const i of ids) s.node.makePod(i);
  // What is checked here is the resident path: on a loaded machine the agent may accept later than the
  // client's default 1 s (then the client rightly runs the plugin itself — the fallback has its own test).
  const adds = await Promise.all(ids.map((i) => run(s, { ...s.env(i), TABBY_CNI_AGENT_TIMEOUT_MS: '15000' })));
  const addrs = adds.map((r) => r.json.ips?.[0]?.address ?? '');
  for (const [i, r] of adds.entries()) t.equal(r.code, 0, `ADD ${i}: ${r.stdout}${r.stderr}`);
  t.equal(new Set(addrs).size, 8, `8 distinct addresses: ${addrs.join(' ')}`);
  for (const a of addrs) t.ok(await pingUntil(s.node.ns, a.split('/')[0]!), `${a} answers a ping from the node`);
  for (const i of ids) {
    const by = servedBy(s.node.logFile, 'pod wired', `k8s-pod-network.${containerIdOf(tag, i)}`);
    t.same(by, [{ pid: s.agent.pid, resident: true }], `pod ${i} was wired by tabby-node (pid ${s.agent.pid})`);
  }

  const chk = await run(s, s.env(0, 'CHECK'), s.node.conf({ prevResult: adds[0]!.json }));
  t.equal(chk.code, 0, `CHECK: ${chk.stdout}`);
  ip('-n', s.node.podNs(0), 'link', 'set', 'eth0', 'down');
  const bad = await run(s, s.env(0, 'CHECK'), s.node.conf({ prevResult: adds[0]!.json }));
  t.equal(bad.json.code, CNI_ERR.INTERNAL, `CHECK sees eth0 down: ${bad.json.msg}`);

  // A netconf that names its file store outright needs no other setting: the resident path answers as the
  // in-process plugin does even when the runtime's TABBY_CONFIG names a file that is not there.
  s.node.makePod(8);
  const named = await run(s, { ...s.env(8), TABBY_CNI_AGENT_TIMEOUT_MS: '15000', TABBY_CONFIG: path.join(s.stateDir, 'missing.yaml') });
  t.equal(named.code, 0, `ADD with TABBY_CONFIG naming a missing file: ${named.stdout}`);
  t.same(servedBy(s.node.logFile, 'pod wired', `k8s-pod-network.${containerIdOf(tag, 8)}`), [{ pid: s.agent.pid, resident: true }]);

  const dels = await Promise.all([...ids, 8].map((i) => run(s, s.env(i, 'DEL'))));
  for (const [i, r] of dels.entries()) t.equal(r.code, 0, `DEL ${i}: ${r.stdout}`);
  t.equal(await inUse(s.node), 0, 'every address released');
  const routes = ip('-n', s.node.ns, 'route', 'show');
  t.notOk(
    addrs.some((a) => routes.includes(`${a.split('/')[0]!} `)),
    'no route to a deleted pod once DEL answered',
  );
  // The veths are deleted in a batch (one group deletion) shortly after the DELs answered.
  const caliLinks = () =>
    ip('-n', s.node.ns, '-o', 'link', 'show')
      .split('\n')
      .filter((l) => / cali[0-9a-f]+@/.test(l)).length;
  await waitFor(() => caliLinks() === 0, 20_000, 25);
  t.equal(caliLinks(), 0, 'every cali link gone');
  const again = await run(s, s.env(0, 'DEL'));
  t.equal(again.code, 0, 'a repeated DEL succeeds');

  // Not root: the socket refuses the connection, so the client takes the fallback (here a stand-in that says so).
  const stub = path.join(s.stateDir, 'stub-fallback');
  fs.writeFileSync(stub, '#!/bin/sh\necho fallback\n', { mode: 0o755 });
  fs.chmodSync(path.dirname(s.stateDir), 0o755);
  fs.chmodSync(s.stateDir, 0o755);
  const nobody = spawnSync(s.client, [], {
    uid: 65534,
    gid: 65534,
    input: '{}',
    encoding: 'utf8',
    env: { CNI_COMMAND: 'VERSION', TABBY_STATE_DIR: s.stateDir, TABBY_CNI_FALLBACK: stub },
  });
  t.equal(nobody.stdout.trim(), 'fallback', `a non-root caller cannot reach the agent (${nobody.stderr})`);
});

t.test("resident path: every bad input gets the in-process plugin's answer, nothing allocated", { skip }, async (t) => {
  const s = await setup(t, 'b', '10.248.1.0/24');
  const netns = s.node.makePod('x');
  const env = s.env('x');
  const conf = JSON.stringify(s.node.conf());
  const { CNI_NETNS: _n, ...noNetns } = env;
  const { CNI_COMMAND: _c, ...noCmd } = env;
  void _n;
  void _c;
  const cases: [string, Record<string, string>, string, number][] = [
    ['missing CNI_NETNS', noNetns, conf, CNI_ERR.INVALID_ENV],
    ['missing CNI_COMMAND', noCmd, conf, CNI_ERR.INVALID_ENV],
    ['bad CNI_CONTAINERID', { ...env, CNI_CONTAINERID: '../etc' }, conf, CNI_ERR.INVALID_ENV],
    ['bad CNI_IFNAME', { ...env, CNI_IFNAME: 'eth0/../x' }, conf, CNI_ERR.INVALID_ENV],
    ['malformed netconf', env, '{"cniVersion": "1.0.0", "name": ', CNI_ERR.DECODE_FAILURE],
    ['unsupported version', env, JSON.stringify(s.node.conf({ cniVersion: '0.1.0' })), CNI_ERR.INCOMPATIBLE_VERSION],
    ['foreign ipam type', env, JSON.stringify(s.node.conf({ ipam: { type: 'host-local' } })), CNI_ERR.UNSUPPORTED_FIELD],
    [
      'unknown pool',
      env,
      JSON.stringify(s.node.conf({ ipam: { type: 'tabby-ipam', ipv4_pools: ['no-such-pool'] } })),
      CNI_ERR.INVALID_NETCONF,
    ],
    ['bad mtu', env, JSON.stringify(s.node.conf({ mtu: 70000 })), CNI_ERR.INVALID_NETCONF],
    ['netns gone', { ...env, CNI_NETNS: '/var/run/netns/tb-does-not-exist' }, conf, CNI_ERR.UNKNOWN_CONTAINER],
  ];
  for (const [what, e, stdin, code] of cases) {
    const viaAgent = await runPlugin(s.node.ns, s.client, e, stdin, { node: false });
    const inProcess = await runPlugin(s.node.ns, PLUGIN, e, stdin);
    t.equal(viaAgent.code, 1, `${what}: exit 1`);
    t.equal(viaAgent.json.code, code, `${what}: code ${code} (${viaAgent.json.msg})`);
    t.same(viaAgent.json, inProcess.json, `${what}: the same error object as the in-process plugin`);
  }
  t.equal(await inUse(s.node), 0, 'nothing allocated');
  void netns;
});

t.test('fallback: agent hung, stopped or killed — ADD still succeeds through the in-process plugin', { skip }, async (t) => {
  const s = await setup(t, 'c', '10.248.2.0/24');
  const addAndPing = async (
    i: string,
    extra: Record<string, string> = {},
  ): Promise<{ r: PluginRun; by: { pid: number; resident: boolean }[] }> => {
    s.node.makePod(i);
    const r = await run(s, { ...s.env(i), ...extra });
    t.equal(r.code, 0, `ADD ${i}: ${r.stdout}${r.stderr}`);
    const a = r.json.ips?.[0]?.address.split('/')[0] ?? '';
    t.ok(await pingUntil(s.node.ns, a), `${a} (${i}) answers a ping`);
    return { r, by: servedBy(s.node.logFile, 'pod wired', `k8s-pod-network.${containerIdOf(tag, i)}`) };
  };

  const warm = await addAndPing('warm', { TABBY_CNI_AGENT_TIMEOUT_MS: '15000' }); // the agent up: served by it, however loaded the machine
  t.same(warm.by, [{ pid: s.agent.pid, resident: true }], 'agent up: served by the agent');

  await s.agent.signal('SIGSTOP');
  const hung = await addAndPing('hung');
  await s.agent.signal('SIGCONT');
  t.equal(hung.by.length, 1);
  t.not(hung.by[0]?.pid, s.agent.pid, 'agent hung: served by the fallback plugin');
  t.notOk(hung.by[0]?.resident);
  t.ok(hung.r.ms < 15_000, `agent hung: answered after the client's 1 s bound (${hung.r.ms.toFixed(0)} ms in all)`);

  await s.agent.signal('SIGTERM');
  t.notOk(fs.existsSync(s.agent.socket), 'a stopped agent removes its socket');
  const stopped = await addAndPing('stopped');
  t.equal(stopped.by.length, 1);
  t.not(stopped.by[0]?.pid, s.agent.pid, 'agent stopped: served by the fallback plugin');

  s.agent = await startAgent(s.node, s.stateDir);
  const back = await addAndPing('back');
  t.same(back.by, [{ pid: s.agent.pid, resident: true }], 'agent back: served by the agent again');
  await s.agent.signal('SIGKILL');
  t.ok(fs.existsSync(s.agent.socket), 'a killed agent leaves its socket file behind');
  const killed = await addAndPing('killed');
  t.equal(killed.by.length, 1);
  t.notOk(killed.by[0]?.resident, 'agent killed (connection refused): served by the fallback plugin');

  // A netns named by /proc/<pid>/ns/net (the runtime's pid namespace, maybe not the agent's): the fallback does it.
  s.agent = await startAgent(s.node, s.stateDir);
  s.node.makePod('proc');
  const holder = spawn('ip', ['netns', 'exec', s.node.podNs('proc'), 'sleep', '600'], { stdio: 'ignore' });
  t.teardown(() => holder.kill());
  await new Promise((r) => setTimeout(r, 300));
  const viaProc = await run(s, { ...s.env('proc'), CNI_NETNS: `/proc/${holder.pid}/ns/net` });
  t.equal(viaProc.code, 0, `ADD with /proc/<pid>/ns/net: ${viaProc.stdout}`);
  const procBy = servedBy(s.node.logFile, 'pod wired', `k8s-pod-network.${containerIdOf(tag, 'proc')}`);
  t.equal(procBy.length, 1);
  t.notOk(procBy[0]?.resident, '/proc/<pid>/ns/net: served by the fallback plugin');
  t.equal((await run(s, s.env('proc', 'DEL'))).code, 0);

  const ips = [warm, hung, stopped, back, killed].map((x) => x.r.json.ips?.[0]?.address);
  t.equal(new Set(ips).size, 5, `no address handed out twice: ${ips.join(' ')}`);
  for (const i of ['warm', 'hung', 'stopped', 'back', 'killed'])
    t.equal((await run(s, s.env(i, 'DEL'))).code, 0, `DEL ${i} through the fallback`);
  t.equal(await inUse(s.node), 0, 'every address released');
});
