// Each link of the chain broken on purpose in a real lab (tabby-node processes in netns, pods through
// the CNI plugin), and the tools name exactly that step: `route explain` (pool disabled, block
// released, kernel route replaced by hand, deleted by hand and restored, an export filter), `cluster
// status` (peer down, stale status, the export filter's rule; a disabled pool in use is a note),
// `node status` exit code. Whole chain = exit 0.
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
  notes?: { kind: string; node: string; detail: string }[];
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
    t.match(
      step(r.e, 'received')?.detail,
      /learned .* from peer 172\.31\.1\.12, best next hop\(s\) 172\.31\.1\.12; best path by: the only path \(no other peer sent it\)$/,
    );
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

  await t.test('export filter on the mesh peers: explain and cluster status name the BGPFilter and rule', async (t) => {
    const api = 'projectcalico.org/v3';
    const apply = (doc: object) => rs.apply(doc as never);
    const setMesh = async (on: boolean) => {
      const cur = await rs.get('BGPConfiguration', 'default');
      if (cur) await rs.update({ ...cur, spec: { ...cur.spec, nodeToNodeMeshEnabled: on } } as never);
      else
        await rs.create({
          apiVersion: api,
          kind: 'BGPConfiguration',
          metadata: { name: 'default' },
          spec: { nodeToNodeMeshEnabled: on },
        } as never);
    };
    // Rule 1 rejects node-2's block (rule 0 matches something else): the index named must be 1.
    await apply({
      apiVersion: api,
      kind: 'BGPFilter',
      metadata: { name: 'no-node2-block' },
      spec: {
        exportV4: [
          { action: 'Accept', matchOperator: 'Equal', cidr: '10.255.0.0/24' },
          { action: 'Reject', matchOperator: 'Equal', cidr: blk2 },
        ],
      },
    });
    // Calico's way to put a filter on the full mesh: mesh off, one BGPPeer selecting every node on both ends.
    const peer = (filters: string[]) => ({
      apiVersion: api,
      kind: 'BGPPeer',
      metadata: { name: 'full-mesh' },
      spec: { nodeSelector: 'all()', peerSelector: 'all()', ...(filters.length ? { filters } : {}) },
    });
    // apply --dry-run of the change warns first (exit 1), naming the block, the peers and the rule.
    const yaml = `/tmp/${lab.state.prefix}-full-mesh.yaml`;
    t.teardown(() => fs.rmSync(yaml, { force: true }));
    fs.writeFileSync(
      yaml,
      [
        JSON.stringify(peer(['no-node2-block'])),
        JSON.stringify({
          apiVersion: api,
          kind: 'BGPConfiguration',
          metadata: { name: 'default' },
          spec: { nodeToNodeMeshEnabled: false },
        }),
      ].join('\n---\n'),
    );
    const dry = await tabbyctl(lab, 'node-1', 'apply', '--dry-run', '-f', yaml);
    t.equal(dry.code, 1, dry.stdout + dry.stderr);
    t.match(
      dry.stdout,
      `WARNING: node-2 would stop exporting its block ${blk2} to node-1 (172.31.1.11), node-3 (172.31.1.13): BGPFilter no-node2-block exportV4[1] Reject`,
    );
    t.match(dry.stdout, 'WARNING: node-2 would export none of its blocks to any BGP peer');
    t.notMatch(dry.stdout, /node-1 would stop exporting/, "node-1's block passes the filter");
    t.equal(await rs.get('BGPPeer', 'full-mesh'), undefined, 'dry run: nothing written');
    await apply(peer(['no-node2-block']));
    await setMesh(false);
    const rule = `BGPFilter no-node2-block exportV4\\[1\\] Reject`;
    const blkRe = blk2.replace(/[./]/g, '\\$&');
    const r = await until(
      async () => {
        const x = await explain(lab, 'node-1', pod2.ip);
        return x.e.broken === 'export' ? x : undefined;
      },
      60_000,
      500,
    );
    t.ok(r, r?.text ?? 'export is the broken step');
    t.equal(r?.code, 1);
    t.match(
      r ? step(r.e, 'export')?.detail : '',
      new RegExp(`^node-2 does not export ${blkRe} to this node \\(172\\.31\\.1\\.11\\): ${rule}$`),
    );
    t.match(r ? step(r.e, 'export')?.fix : '', /change rule exportV4\[1\] of BGPFilter no-node2-block/);
    t.ok(
      await until(
        () => execFileSync('ip', ['-n', ns1, 'route', 'show', blk2], { encoding: 'utf8' }).trim() === '' || undefined,
        20_000,
        300,
      ),
      "node-1's kernel has no route to node-2's block (withdrawn)",
    );
    const c = await until(
      async () => {
        const x = await cluster(lab);
        const f = x.c.findings.find((f) => f.kind === 'block-not-routed' && f.node === 'node-1');
        return f && x.c.notes?.some((n) => n.kind === 'export-filtered' && n.node === 'node-2') ? { x, f } : undefined;
      },
      30_000,
      500,
    );
    t.ok(c, 'cluster status: the missing block and the filter');
    t.equal(c?.x.code, 1);
    t.match(c?.f.detail, new RegExp(`^no route to block ${blkRe} of node-2 \\(node-2's export filter rejects it: ${rule}\\)$`));
    t.match(
      c?.x.c.notes?.find((n) => n.kind === 'export-filtered')?.detail,
      new RegExp(`^does not export ${blkRe} to node-1 \\(172\\.31\\.1\\.11\\), node-3 \\(172\\.31\\.1\\.13\\): ${rule}$`),
    );
    const text = await tabbyctl(lab, 'node-1', 'cluster', 'status');
    t.match(text.stdout, /note: node-2: does not export .* BGPFilter no-node2-block exportV4\[1\] Reject/);

    // The filter off the peer: whole again (the sessions stay, the block is announced).
    await apply(peer([]));
    const whole = await until(
      async () => {
        const x = await explain(lab, 'node-1', pod2.ip);
        return x.code === 0 ? x : undefined;
      },
      30_000,
      500,
    );
    t.ok(whole, 'explain: whole again');
    t.ok(await until(async () => (await cluster(lab)).c.converged || undefined, 30_000, 500), 'cluster status: converged again');
    await setMesh(true);
    await rs.delete('BGPPeer', 'full-mesh');
    await rs.delete('BGPFilter', 'no-node2-block');
    t.ok(await until(async () => (await cluster(lab)).c.converged || undefined, 60_000, 1000), 'mesh back: converged');
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
