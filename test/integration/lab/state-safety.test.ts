// State safety through the lab's real tabby-node processes (BGP, the CNI plugin, the file datastore):
//  - nodes with NO default route (air-gapped nodes peering BGP only; CrossSubnet nodes keep just a
//    route to the other subnet): agents start that way, and a pod reaches its node, a pod on the same
//    node and a pod on the other node — routed, VXLAN and CrossSubnet (VXLAN across the router; this
//    kernel has no ipip);
//  - IPAM garbage collection by the agents: remove a node from the lab (its Node is deleted) → its
//    block affinity and addresses are freed by a surviving agent; kill -9 the agent holding the
//    collector's lease → another agent takes the lease over and collects the next removed node;
//    `tabbyctl ipam check` is clean afterwards.
import t from 'tap';
import { execFileSync, execFile } from 'node:child_process';
import fs from 'node:fs';
import { createLab, destroyLab, type Lab } from '../../../src/lab/lab.js';
import { SUBNETS } from '../../../src/lab/topology.js';
import { repoRoot } from '../../../src/lab/pods.js';
import { FileDatastore } from '../../../src/datastore/file.js';
import { GC_LEASE_KEY } from '../../../src/datastore/keys.js';
import { Ipam } from '../../../src/ipam/index.js';
import type { LabMode } from '../../../src/lab/state.js';
import { runId } from '../../helpers/run-tag.js';

const isRoot = process.getuid?.() === 0;
const run = runId();
const skip = isRoot ? false : 'needs root (network namespaces)';
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return true;
    await sleep(250);
  }
  return what();
}

function fresh(tag: string): { prefix: string; stateDir: string } {
  const prefix = `tb${run}${tag}`;
  return { prefix, stateDir: `/tmp/${prefix}-state` };
}

for (const mode of ['routed', 'vxlan', 'crosssubnet'] as const satisfies readonly LabMode[]) {
  t.test(`no default route on any node (${mode}): pods reach their node, each other, the other node's pods`, { skip }, async (t) => {
    const o = fresh(`nd${mode[0]}`);
    await destroyLab(o);
    t.teardown(() => destroyLab(o));
    const lab = await createLab({ ...o, nodes: 2, mode, crossSubnetEncap: 'vxlan', startAgents: false });
    for (const n of lab.nodes) {
      ip('-n', n.netns, 'route', 'del', 'default');
      if (mode === 'crosssubnet') {
        // Air-gapped across a router: only the other subnet is routed, nothing else.
        const other = n.subnet === 'a' ? SUBNETS.b : SUBNETS.a;
        ip('-n', n.netns, 'route', 'add', other.cidr, 'via', SUBNETS[n.subnet].gateway);
      }
      t.equal(ip('-n', n.netns, '-4', 'route', 'show', 'default').trim(), '', `${n.name}: no default route`);
    }
    if (mode === 'crosssubnet') t.not(lab.nodes[0]!.subnet, lab.nodes[1]!.subnet, 'the two nodes are on different subnets');
    for (const n of lab.nodes) await lab.startAgent(n.name);
    const bgp = await lab.waitForBgp(90_000);
    t.ok(bgp.ok, `BGP established without default routes (${bgp.pending.join(', ')})`);
    const a = await lab.addPod('node-1', 'pa');
    const b = await lab.addPod('node-1', 'pb');
    const c = await lab.addPod('node-2', 'pc');
    t.match(ip('-n', a.netns, '-4', 'route', 'show', 'default'), /default via 169\.254\.1\.1 dev eth0/, "the pod's view is Calico's");
    const node1 = lab.node('node-1').address.split('/')[0]!;
    t.ok(await lab.pingUntil('pa', node1, 20_000), 'pod → its node');
    t.ok(await lab.pingUntil('pa', b.ip, 20_000), 'pod → pod on the same node');
    t.ok(await lab.pingUntil('pa', c.ip, 30_000), 'pod → pod on the other node');
    t.ok(await lab.pingUntil('pc', a.ip, 20_000), 'and back');
    if (mode === 'vxlan' || mode === 'crosssubnet') {
      const routes = ip('-n', lab.node('node-1').netns, '-4', 'route', 'show');
      t.match(routes, /vxlan\.calico/, `node-1 routes the other node's pods through vxlan.calico:\n${routes}`);
    }
  });
}

t.test(
  'IPAM garbage collection by the agents: a removed node is collected; kill -9 the lease holder → another takes over',
  { skip },
  async (t) => {
    const o = fresh('gc');
    await destroyLab(o);
    t.teardown(() => destroyLab(o));
    const GRACE = 2;
    const LEASE = 3;
    const lab: Lab = await createLab({
      ...o,
      nodes: 4,
      agentEnv: { TABBY_IPAM_GC_GRACE: String(GRACE), TABBY_IPAM_GC_LEASE: String(LEASE), TABBY_LOG_LEVEL: 'info' },
    });
    const ds = new FileDatastore(lab.state.datastoreDir);
    t.teardown(() => ds.close());
    const ipam = new Ipam(ds);
    const holder = async () => (await ds.get<{ holder: string }>(GC_LEASE_KEY))?.value.holder;
    const freed = async (ips: string[], node: string) =>
      (await Promise.all(ips.map((x) => ipam.ipInfo(x)))).every((i) => !i.allocated) &&
      (await ipam.store.listAffinities(node)).length === 0 &&
      (await ipam.listBlocks()).every((blk) => blk.node !== node);
    /** The collectors' log lines (tabby-node logs at info here). */
    const gcLog = () =>
      lab.nodes
        .filter((n) => n.agent)
        .flatMap((n) => fs.readFileSync(n.agent!.logFile, 'utf8').split('\n'))
        .filter((l) => l.includes('"component":"ipam-gc"'))
        .join('\n');
    const ipamCheck = () =>
      new Promise<{ code: number; out: string }>((resolve) => {
        execFile(
          process.execPath,
          [`${repoRoot()}/dist/src/cli/main.js`, 'ipam', 'check'],
          {
            env: { PATH: process.env.PATH, DATASTORE_TYPE: 'file', TABBY_DATASTORE_DIR: lab.state.datastoreDir, TABBY_CONFIG: '/dev/null' },
            timeout: 60_000,
          },
          (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }),
        );
      });

    const p4 = [await lab.addPod('node-4', 'q1'), await lab.addPod('node-4', 'q2')].map((p) => p.ip);
    const p3 = [(await lab.addPod('node-3', 'q3')).ip];
    await lab.addPod('node-1', 'q4');
    await lab.addPod('node-2', 'q5');
    t.ok(await until(async () => (await holder()) !== undefined, 30_000), `an agent holds the collector's lease: ${await holder()}`);
    // Let the collector see every node alive first (a node that lives less than one collection interval
    // could be taken for one gone since before it registered).
    t.ok((await lab.waitForBgp(90_000)).ok, 'BGP established');
    await sleep(LEASE * 1000);
    t.ok((await ipam.store.listAffinities('node-4')).length > 0, 'node-4 has a block before');

    // 1. Remove node-4 (agent stopped, namespace gone, Node deleted): its addresses come back.
    const t0 = Date.now();
    await lab.removeNode('node-4');
    t.ok(await until(() => freed(p4, 'node-4'), 60_000), `node-4's block affinity and 2 addresses are freed (${p4.join(', ')})`);
    const took = Date.now() - t0;
    // The log line comes when the whole collection (addresses, handles, affinity, block) is done: after
    // the addresses read as freed, so poll for it (CI once read the log between the two).
    const logged = (re: RegExp) => until(async () => re.test(gcLog()), 30_000);
    t.ok(await logged(/"nodes":\["node-4"\],"ips":2/), 'an agent logged releasing node-4 and its 2 addresses');
    t.ok(took >= GRACE * 1000, `not before the grace period (${took} ms >= ${GRACE} s)`);
    t.comment(`removed node collected by the agents after ${took} ms (grace ${GRACE} s)`);
    t.ok((await ipam.ipInfo(p3[0]!)).allocated, "a live node's pod keeps its address");

    // 2. kill -9 the holder; remove a second node; the one agent left takes over and collects it.
    const first = (await holder())!;
    const live = ['node-1', 'node-2', 'node-3'].filter((n) => n !== first);
    // The victim has a pod (node-3) unless node-3 holds the lease; then node-2's pod.
    const victim = first === 'node-3' ? 'node-2' : 'node-3';
    const survivor = live.find((n) => n !== victim)!;
    const victimIps = victim === 'node-3' ? p3 : [lab.pod('q5').ip];
    await lab.stopAgent(first, { signal: 'SIGKILL' });
    t.notOk(lab.agentRunning(first), `${first} (the holder) was killed -9`);
    const t1 = Date.now();
    await lab.removeNode(victim);
    t.ok(
      await until(async () => (await holder()) === survivor, 60_000),
      `${survivor} took the lease over from ${first}: ${await holder()}`,
    );
    t.ok(await until(() => freed(victimIps, victim), 60_000), `${victim}'s addresses are freed by ${survivor} (${victimIps.join(', ')})`);
    t.ok(await logged(new RegExp(`"nodes":\\["${victim}"\\]`)), `an agent logged releasing ${victim}`);
    t.comment(`holder ${first} killed; ${survivor} took over and collected ${victim} in ${Date.now() - t1} ms (lease ${LEASE} s)`);
    // The collection is several CAS steps (addresses, handles, affinity, block): poll until it finished.
    let check = await ipamCheck();
    for (let i = 0; i < 20 && check.code !== 0; i++) {
      await sleep(1000);
      check = await ipamCheck();
    }
    t.equal(check.code, 0, `tabbyctl ipam check is clean:\n${check.out}`);
  },
);
