// Each link of the chain broken on purpose in a real lab (tabby-node processes in netns, pods through
// the CNI plugin), and the tools name exactly that step: `route explain` (pool disabled, block
// released, kernel route replaced by hand, deleted by hand and restored), `cluster status` (peer
// down, stale status; a disabled pool in use is a note), `node status` exit code. Whole chain = exit 0.
import t from 'tap';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { Ipam } from '../../../src/ipam/index.js';
import { agentLab, labSkipReason, tabbyctl, until, blockOf } from '../agent/helpers.js';
import type { Lab } from '../../../src/lab/lab.js';

const skip = labSkipReason() ?? false;

interface Explained {
  broken?: string;
  steps: { step: string; ok: boolean; detail: string; fix?: string }[];
}
interface Cluster {
  converged: boolean;
  findings: { kind: string; node: string; detail: string }[];
}

async function explain(lab: Lab, node: string, target: string): Promise<{ code: number | null; e: Explained; text: string }> {
  const j = await tabbyctl(lab, node, 'route', 'explain', target, '-o', 'json');
  const x = await tabbyctl(lab, node, 'route', 'explain', target);
  return { code: j.code, e: JSON.parse(j.stdout) as Explained, text: x.stdout + x.stderr };
}
async function cluster(lab: Lab, ...args: string[]): Promise<{ code: number | null; c: Cluster }> {
  const r = await tabbyctl(lab, 'node-1', 'cluster', 'status', '-o', 'json', ...args);
  return { code: r.code, c: JSON.parse(r.stdout) as Cluster };
}
const step = (e: Explained, name: string) => e.steps.find((s) => s.step === name);

t.test('the tools name the broken link', { skip, timeout: 400_000 }, async (t) => {
  const lab = await agentLab(t, 'ch', { nodes: 3, mode: 'routed', agentEnv: { TABBY_STATUS_INTERVAL: '2s' } });
  t.ok((await lab.waitForBgp(60_000)).ok, 'mesh Established');
  const pod2 = await lab.addPod('node-2', 'p2');
  const pod1 = await lab.addPod('node-1', 'p1');
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const rs = new ResourceStore(ds);
  const blk2 = await blockOf(lab, 'node-2');
  const ns1 = lab.node('node-1').netns;

  await t.test('whole chain: exit 0, every step named', async (t) => {
    const c = await until(
      async () => {
        const r = await cluster(lab);
        return r.c.converged ? r : undefined;
      },
      30_000,
      500,
    );
    t.ok(c, 'cluster status converged once every agent published');
    t.equal(c?.code, 0);
    const r = await explain(lab, 'node-1', pod2.ip);
    t.equal(r.code, 0, r.text);
    t.same(
      r.e.steps.map((s) => [s.step, s.ok]),
      [
        ['pool', true],
        ['block', true],
        ['owner', true],
        ['export', true],
        ['received', true],
        ['kernel', true],
      ],
    );
    t.match(step(r.e, 'received')?.detail, /learned .* from peer 172\.31\.1\.12, best next hop\(s\) 172\.31\.1\.12/);
    t.match(step(r.e, 'kernel')?.detail, /via 172\.31\.1\.12 dev eth0 proto 81 .*in this node's subnet 172\.31\.1\.0\/24/);
    const own = await explain(lab, 'node-1', pod1.ip);
    t.equal(own.code, 0, own.text);
    t.match(step(own.e, 'workload')?.detail, /pod interface cali[0-9a-f]{11}/);
  });

  await t.test('node diags: one tar.gz with kernel state, agent status and sessions, log, datastore revision', async (t) => {
    const out = `/tmp/${lab.state.prefix}-diags.tar.gz`;
    t.teardown(() => fs.rmSync(out, { force: true }));
    const r = await tabbyctl(lab, 'node-1', 'node', 'diags', '--output', out);
    t.equal(r.code, 0, r.stdout + r.stderr);
    const names = execFileSync('tar', ['tzf', out], { encoding: 'utf8' }).trim().split('\n');
    for (const f of [
      'agent/status.json',
      'agent/sessions.json',
      'kernel/routes.json',
      'kernel/links.json',
      'kernel/neighbours.json',
      'kernel/nft-ruleset.txt',
      'agent/agent.log',
      'datastore/revision.txt',
      'errors.txt',
    ]) {
      t.ok(names.includes(`tabby-diags-node-1/${f}`), f);
    }
    const routes = JSON.parse(execFileSync('tar', ['xzOf', out, 'tabby-diags-node-1/kernel/routes.json'], { encoding: 'utf8' })) as {
      dst: string;
    }[];
    t.ok(
      routes.some((x) => x.dst === blk2),
      "the routes dump has node-2's block",
    );
  });

  await t.test('route replaced by hand: kernel step, with the foreign route named', async (t) => {
    execFileSync('ip', ['-n', ns1, 'route', 'replace', blk2, 'via', '172.31.1.1', 'proto', 'static']);
    const r = await explain(lab, 'node-1', pod2.ip);
    t.equal(r.e.broken, 'kernel', r.text);
    t.equal(r.code, 1);
    t.match(step(r.e, 'kernel')?.detail, /a route not made by tabby \(proto 4\) took its place/);
    execFileSync('ip', ['-n', ns1, 'route', 'del', blk2, 'proto', 'static']);
    const back = await until(
      async () => {
        const x = await explain(lab, 'node-1', pod2.ip);
        return x.code === 0 ? x : undefined;
      },
      10_000,
      300,
    );
    t.ok(back, 'once the foreign route is gone tabby-node puts its own back: whole again');
  });

  await t.test('route deleted by hand: restored at once, the chain stays whole', async (t) => {
    execFileSync('ip', ['-n', ns1, 'route', 'del', blk2]);
    const r = await until(
      async () => {
        const x = await explain(lab, 'node-1', pod2.ip);
        return x.code === 0 ? x : undefined;
      },
      5_000,
      200,
    );
    t.ok(r, 'kernel step ok again');
  });

  await t.test('peer down: cluster status names the sessions, node status exits 1', async (t) => {
    await lab.stopAgent('node-3', { signal: 'SIGTERM' });
    // node-1's own record says so once it has seen the session drop and published (at most every 2 s)
    const node1Down = (x: Awaited<ReturnType<typeof cluster>>) =>
      x.c.findings.some((f) => f.kind === 'session-down' && f.node === 'node-1' && /session with node-3 \(172\.31\.1\.13\)/.test(f.detail));
    const r = await until(
      async () => {
        const x = await cluster(lab);
        return node1Down(x) ? x : undefined;
      },
      20_000,
      500,
    );
    t.equal(r?.code, 1);
    t.ok(r && node1Down(r), 'node-1: session with node-3 down');
    const ns = await tabbyctl(lab, 'node-1', 'node', 'status');
    t.equal(ns.code, 1, 'node status exits 1 when a configured peer is not up');
    t.match(ns.stderr, /1 of 2 BGP peer\(s\) not Established: 172\.31\.1\.13/);
    const stale = await until(
      async () => {
        const x = await cluster(lab);
        return x.c.findings.some((f) => f.kind === 'stale-status' && f.node === 'node-3') ? x : undefined;
      },
      20_000,
      1000,
    );
    t.ok(stale, "node-3's status goes stale (3 x TABBY_STATUS_INTERVAL)");
    await lab.startAgent('node-3', { TABBY_STATUS_INTERVAL: '2s' });
    t.ok(await until(async () => (await cluster(lab)).c.converged || undefined, 60_000, 1000), 'converged again after node-3 restarts');
  });

  await t.test('pool disabled: explain names the pool, cluster status the addresses left unrouted', async (t) => {
    const pool = (await rs.get('IPPool', 'default-ipv4-ippool'))!;
    await rs.update({ ...pool, spec: { ...pool.spec, disabled: true } });
    const r = await until(
      async () => {
        const x = await explain(lab, 'node-1', pod2.ip);
        return x.e.broken === 'pool' ? x : undefined;
      },
      20_000,
      500,
    );
    t.ok(r, 'pool is the broken step');
    t.equal(r?.code, 1);
    t.match(r ? step(r.e, 'pool')?.detail : '', /IPPool default-ipv4-ippool .* is disabled: no new address comes from it/);
    const c = await until(
      async () => {
        const x = await tabbyctl(lab, 'node-1', 'cluster', 'status');
        return /note: node-2: block .* is in disabled IPPool default-ipv4-ippool/.test(x.stdout) ? x : undefined;
      },
      20_000,
      500,
    );
    t.ok(c, 'cluster status notes the block in the disabled pool');
    const again = (await rs.get('IPPool', 'default-ipv4-ippool'))!;
    await rs.update({ ...again, spec: { ...again.spec, disabled: false } });
    t.ok(await until(async () => (await explain(lab, 'node-1', pod2.ip)).code === 0 || undefined, 20_000, 500), 'whole again');
  });

  await t.test('autodetect picking a /32: --explain shows the candidates and warns', async (t) => {
    execFileSync('ip', ['-n', ns1, 'link', 'add', 'tbx0', 'type', 'veth', 'peer', 'name', 'tbx1']);
    t.teardown(() => {
      try {
        execFileSync('ip', ['-n', ns1, 'link', 'del', 'tbx0']);
      } catch {
        /* gone with the lab */
      }
    });
    execFileSync('ip', ['-n', ns1, 'addr', 'add', '10.98.0.7/32', 'dev', 'tbx0']);
    const cli = `${process.cwd()}/dist/src/cli/main.js`;
    const r = await lab.exec('node-1', 'env', [
      'IP_AUTODETECTION_METHOD=first-found',
      process.execPath,
      cli,
      'node',
      'autodetect',
      '--explain',
    ]);
    t.equal(r.code, 1, r.stdout + r.stderr);
    t.match(r.stdout, /\| tbx0 +\| \d+ +\| 10\.98\.0\.7\/32 +\| chosen +\|/);
    t.match(r.stdout, /\| eth0 +\| 2 +\| 172\.31\.1\.11\/24 +\| not reached +\|/);
    t.match(r.stdout, /WARNING: 10\.98\.0\.7\/32 is a \/32: .*CrossSubnet/);
    const pinned = await lab.exec('node-1', process.execPath, [cli, 'node', 'autodetect']);
    t.equal(pinned.code, 0, "the lab's own method (interface=^eth0$) picks eth0");
    t.match(pinned.stdout, /result: 172\.31\.1\.11\/24 on eth0/);
  });

  await t.test('block released: explain names the block', async (t) => {
    await new Ipam(ds).releaseAffinity('node-2', { cidr: blk2 });
    const r = await until(
      async () => {
        const x = await explain(lab, 'node-1', pod2.ip);
        return x.e.broken === 'block' ? x : undefined;
      },
      20_000,
      500,
    );
    t.ok(r, r?.text ?? 'block is the broken step');
    t.match(r ? step(r.e, 'block')?.detail : '', new RegExp(`block ${blk2.replace(/[./]/g, '\\$&')} has no affinity`));
  });
});
