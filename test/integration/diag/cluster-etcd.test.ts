// cluster status on a real etcd (the issue: "works on both the file store and etcd"): two nodes'
// published records (written by the agent's publisher) checked by the real CLI with etcd flags —
// converged, then a session down named, then a node deleted: its record expires with it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { Ipam } from '../../../src/ipam/index.js';
import { NodeStatusPublisher } from '../../../src/agent/node-status-publisher.js';
import { readStatusRecords } from '../../../src/agent/cluster-input.js';
import type { NodeStatusRecord } from '../../../src/agent/cluster-check.js';
import { log } from '../../../src/common/log.js';
import { repoRoot } from '../../../src/lab/pods.js';
import { startEtcd, etcdMissing } from '../../helpers/etcd.js';

const skip = etcdMissing() ?? false;

t.test('cluster status over etcd', { skip, timeout: 120_000 }, async (t) => {
  const etcd = await startEtcd(t);
  const ds = await openDatastore({ type: 'etcdv3', etcdEndpoints: etcd.endpoints });
  t.teardown(() => ds.close());
  const rs = new ResourceStore(ds);
  await rs.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'p' },
    spec: { cidr: '10.250.0.0/16' },
  } as never);
  for (const [n, ip] of [
    ['a', '10.0.0.1'],
    ['b', '10.0.0.2'],
  ] as const) {
    await rs.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Node',
      metadata: { name: n },
      spec: { bgp: { ipv4Address: `${ip}/24` } },
    } as never);
  }
  const ipam = new Ipam(ds);
  const blkA = await ipam.ensureBlock('a', 4);
  const blkB = await ipam.ensureBlock('b', 4);
  const now = new Date().toISOString();
  const rec = (node: string, peer: string, state: 'Established' | 'Active', routes: string[]): NodeStatusRecord => ({
    node,
    mode: 'node',
    version: 't',
    updatedAt: '',
    startedAt: now,
    ready: true,
    problems: [],
    blocks: [],
    routes,
    kernelInSync: true,
    sessions: [{ peer, type: 'node-to-node mesh', state, since: now, info: state }],
  });
  let bState: 'Established' | 'Active' = 'Established';
  const pa = new NodeStatusPublisher({
    ds,
    node: 'a',
    source: () => rec('a', '10.0.0.2', 'Established', [blkA, blkB]),
    logger: log('test'),
    minIntervalMs: 0,
  });
  const pb = new NodeStatusPublisher({
    ds,
    node: 'b',
    source: () => rec('b', '10.0.0.1', bState, [blkA, blkB]),
    logger: log('test'),
    minIntervalMs: 0,
  });
  await pa.tick();
  await pb.tick();

  const cli = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [
        `${repoRoot()}/dist/src/cli/main.js`,
        'cluster',
        'status',
        '--datastore-type',
        'etcdv3',
        '--etcd-endpoints',
        etcd.endpoints.join(','),
        ...args,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
  const ok = cli();
  t.equal(ok.status, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, /sessions: 2\/2 expected sessions Established; blocks: 2 confirmed, 0 missing route\(s\) in kernels/);

  bState = 'Active';
  await pb.tick();
  const bad = cli('-o', 'json');
  t.equal(bad.status, 1);
  const j = JSON.parse(bad.stdout) as { findings: { kind: string; node: string; detail: string }[] };
  t.same(
    j.findings.map((f) => [f.kind, f.node]),
    [['session-down', 'b']],
  );
  t.match(j.findings[0]!.detail, /session with a \(10\.0\.0\.1\) is Active/);

  await rs.delete('Node', 'b');
  t.same(await pa.gc(), ['b'], "b's record expires with its Node");
  t.same([...(await readStatusRecords(ds)).keys()], ['a']);
  const after = cli();
  t.match(after.stdout, /\| a +\| node/);
  t.notMatch(after.stdout, /\| b +\|/);
});
