// The lab's mechanics on the real kernel: namespaces and underlay built over netlink, node-to-node
// reachability (one subnet, and two subnets through the router), add/remove node, state readable
// from another process, `destroyLab` leaving nothing behind (namespaces, marked processes, state dir),
// and pods through the real CNI plugin. End-to-end BGP assertions live with the agent's tests.
import t from 'tap';
import fs from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { createLab, destroyLab, findLabProcesses, Lab, agentMainPath } from '../../../src/lab/lab.js';
import { listNetns, spawnIn, processAlive, processStartTime } from '../../../src/lab/netns.js';
import { repoRoot } from '../../../src/lab/pods.js';
import { runId } from '../../helpers/run-tag.js';

const isRoot = process.getuid?.() === 0;
const run = runId();
const skipRoot = isRoot ? false : 'needs root (network namespaces)';
const cniBuilt = fs.existsSync(`${repoRoot()}/dist/src/cni/main.js`);
/** `npm ci` builds the CNI client with the native addon (a tree built before it existed lacks it). */
const clientBuilt = fs.existsSync(`${repoRoot()}/src/native/build/Release/tabby-cni`);

const ipJson = <T>(...args: string[]): T => JSON.parse(execFileSync('ip', ['-j', ...args], { encoding: 'utf8' })) as T;
const addrsOf = (ns: string, dev: string): string[] =>
  ipJson<{ addr_info: { local: string; prefixlen: number; family: string }[] }[]>('-n', ns, 'addr', 'show', 'dev', dev)[0]!
    .addr_info.filter((a) => a.family === 'inet')
    .map((a) => `${a.local}/${a.prefixlen}`);

/** How each pod was wired, from the lab's CNI log: by the node's tabby-node (resident) or the fallback plugin. */
const wiredBy = (stateDir: string): boolean[] =>
  fs
    .readFileSync(`${stateDir}/cni.log`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"pod wired"'))
    .map((l) => (JSON.parse(l) as { resident?: boolean }).resident === true);

function fresh(tag: string): { prefix: string; stateDir: string } {
  const prefix = `tb${run}${tag}`;
  const stateDir = `/tmp/${prefix}-state`;
  return { prefix, stateDir };
}

t.test('one subnet: three nodes on the underlay bridge, then nothing left after destroy', { skip: skipRoot }, async (t) => {
  const o = fresh('la');
  await destroyLab(o);
  t.teardown(() => destroyLab(o));
  const lab = await createLab({ ...o, nodes: 3, startAgents: false });
  t.same(
    lab.nodes.map((n) => n.name),
    ['node-1', 'node-2', 'node-3'],
  );
  t.same(listNetns(`${o.prefix}-`), [
    `${o.prefix}-node-1`,
    `${o.prefix}-node-2`,
    `${o.prefix}-node-3`,
    `${o.prefix}-router`,
    `${o.prefix}-underlay`,
  ]);
  t.same(addrsOf(`${o.prefix}-node-2`, 'eth0'), ['172.31.1.12/24'], 'eth0 addressed in the node netns');
  const ports = ipJson<{ ifname: string; master?: string }[]>('-n', `${o.prefix}-underlay`, 'link', 'show', 'master', 'br-a')
    .map((l) => l.ifname)
    .sort();
  t.same(ports, ['n1', 'n2', 'n3', 'ra'], 'every node port and the router leg are on the bridge');
  t.equal(lab.mode, 'routed', 'auto on one subnet is routed: the pod routes come from BGP');
  t.match(lab.state.modeReason, /every node is on one subnet, 172\.31\.1\.0\/24/);
  for (const a of lab.nodes)
    for (const b of lab.nodes) {
      if (a !== b) t.ok(await lab.ping(a.name, b.address.split('/')[0]!), `${a.name} reaches ${b.name} over the underlay`);
    }

  // State is on disk: another handle (as `tabbyctl lab status` in another process) sees the same lab.
  const again = Lab.open(o.stateDir)!;
  t.same(
    again.nodes.map((n) => n.netns),
    lab.nodes.map((n) => n.netns),
  );

  // add and remove a node at run time
  const n4 = await lab.addNode('node-4');
  t.equal(n4.address, '172.31.1.14/24');
  t.ok(await lab.ping('node-1', '172.31.1.14'), 'the new node is reachable');
  await lab.removeNode('node-4');
  t.notOk(listNetns(`${o.prefix}-`).includes(`${o.prefix}-node-4`), 'its namespace is gone');
  t.notOk(await lab.ping('node-1', '172.31.1.14'), 'and it no longer answers');
  t.equal(Lab.open(o.stateDir)!.nodes.length, 3);

  // A process marked as this lab's (as the agents are) is found and stopped by destroy, from another process.
  const marked = spawnIn(lab.nodes[0]!.netns, 'sleep', ['300'], {
    env: { ...process.env, TABBY_LAB_PREFIX: o.prefix },
    stdio: 'ignore',
    detached: true,
  });
  marked.unref();
  const st = processStartTime(marked.pid!)!;
  t.ok(
    findLabProcesses(o.prefix).some((p) => p.pid === marked.pid),
    'the marked process is found',
  );
  const down = spawnSync(
    process.execPath,
    [
      '-e',
      `import('${repoRoot()}/dist/src/lab/lab.js').then(m => m.destroyLab({prefix: '${o.prefix}', stateDir: '${o.stateDir}'})).then(r => console.log(JSON.stringify(r)))`,
    ],
    { encoding: 'utf8' },
  );
  t.equal(down.status, 0, `destroyLab from another process: ${down.stderr}`);
  t.same(listNetns(`${o.prefix}-`), [], 'no namespace left');
  t.notOk(fs.existsSync(o.stateDir), 'state dir removed');
  t.notOk(processAlive(marked.pid!, st), 'marked process stopped');
});

t.test('two subnets joined by the router namespace (CrossSubnet topology)', { skip: skipRoot }, async (t) => {
  const o = fresh('lc');
  await destroyLab(o);
  t.teardown(() => destroyLab(o));
  const lab = await createLab({ ...o, nodes: 3, mode: 'crosssubnet', startAgents: false });
  t.same(
    lab.nodes.map((n) => `${n.name} ${n.address}`),
    ['node-1 172.31.1.11/24', 'node-2 172.31.2.12/24', 'node-3 172.31.1.13/24'],
  );
  t.same(addrsOf(`${o.prefix}-router`, 'r-a'), ['172.31.1.1/24']);
  t.same(addrsOf(`${o.prefix}-router`, 'r-b'), ['172.31.2.1/24']);
  const route = ipJson<{ gateway?: string; dev: string }[]>('-n', `${o.prefix}-node-2`, 'route', 'get', '172.31.1.11')[0]!;
  t.same([route.gateway, route.dev], ['172.31.2.1', 'eth0'], 'across subnets the next hop is the router');
  const direct = ipJson<{ gateway?: string }[]>('-n', `${o.prefix}-node-1`, 'route', 'get', '172.31.1.13')[0]!;
  t.equal(direct.gateway, undefined, 'inside a subnet: direct');
  const r = await lab.exec('node-2', 'ping', ['-n', '-c', '1', '-W', '2', '172.31.1.11']);
  t.equal(r.code, 0, 'node-2 reaches node-1 through the router');
  t.match(r.stdout, /ttl=63/, 'one routed hop (TTL 64 - 1)');
  t.match(lab.state.modeReason, /CrossSubnet/);
});

t.test(
  'pods through the real CNI plugin on one node reach each other',
  { skip: !isRoot ? skipRoot : !cniBuilt ? 'needs the tabby CNI plugin (dist/src/cni/main.js)' : false },
  async (t) => {
    const o = fresh('lp');
    await destroyLab(o);
    t.teardown(() => destroyLab(o));
    const lab = await createLab({ ...o, nodes: 1, startAgents: false, mode: 'routed' });
    const a = await lab.addPod('node-1', 'pa');
    const b = await lab.addPod('node-1', 'pb');
    t.match(a.ip, /^10\.244\./, `pod address from the pool: ${a.ip}`);
    t.not(a.ip, b.ip);
    t.same(addrsOf(a.netns, 'eth0'), [`${a.ip}/32`], 'pod eth0 has its /32');
    t.ok(await lab.pingUntil('pa', b.ip, 5000), 'pa pings pb through the node');
    await lab.removePod('pb');
    t.notOk(listNetns(`${o.prefix}-`).includes(b.netns), 'pod namespace removed');
    t.same(wiredBy(o.stateDir), [false, false], 'no agent: the CNI client ran the fallback plugin');
  },
);

t.test(
  'pods on different nodes reach each other through tabby-node routes',
  {
    timeout: 180_000,
    skip: !isRoot
      ? skipRoot
      : !cniBuilt
        ? 'needs the tabby CNI plugin (dist/src/cni/main.js)'
        : !agentMainPath()
          ? 'needs tabby-node (dist/src/agent/main.js)'
          : false,
  },
  async (t) => {
    const o = fresh('lr');
    await destroyLab(o);
    t.teardown(() => destroyLab(o));
    const lab = await createLab({ ...o, nodes: 2, mode: 'vxlan' });
    const bgp = await lab.waitForBgp(60_000);
    t.ok(bgp.ok, `BGP sessions up (${bgp.pending.join(', ')})`);
    const a = await lab.addPod('node-1', 'pod-1');
    const b = await lab.addPod('node-2', 'pod-2');
    t.ok(await lab.pingUntil('pod-1', b.ip, 20_000), `pod-1 → pod-2 (${b.ip})`);
    t.ok(await lab.pingUntil('pod-2', a.ip, 20_000), `pod-2 → pod-1 (${a.ip})`);
    if (clientBuilt) t.same(wiredBy(o.stateDir), [true, true], "the pods were wired by their node's tabby-node (resident CNI)");

    // A node added to the running lab becomes reachable without restarting anything…
    await lab.addNode('node-3');
    const bgp3 = await lab.waitForBgp(60_000);
    t.ok(bgp3.ok, `node-3 peers with both (${bgp3.pending.join(', ')})`);
    const c = await lab.addPod('node-3', 'pod-3');
    t.ok(await lab.pingUntil('pod-1', c.ip, 20_000), `pod-1 → pod-3 on the new node (${c.ip})`);
    t.ok(await lab.pingUntil('pod-3', b.ip, 20_000), 'pod-3 → pod-2');
    // …and a removed node's block disappears from the others' kernels.
    const block = (ns: string): string[] =>
      ipJson<{ dst: string; gateway?: string }[]>('-n', ns, 'route', 'show')
        .filter((r) => r.gateway !== undefined && r.dst.startsWith('10.244.'))
        .map((r) => r.dst);
    const c26 = block(lab.node('node-1').netns).find((d) => d.split('.').slice(0, 3).join('.') === c.ip.split('.').slice(0, 3).join('.'));
    t.ok(c26, `node-1 has a route to node-3's block (${c26})`);
    await lab.removeNode('node-3');
    const until = Date.now() + 20_000;
    while (Date.now() < until && block(lab.node('node-1').netns).includes(c26!)) await new Promise((r) => setTimeout(r, 100));
    t.notOk(block(lab.node('node-1').netns).includes(c26!), "node-3's block is withdrawn from node-1");
    t.ok(await lab.ping('pod-1', b.ip), 'the remaining pods still reach each other');
  },
);
