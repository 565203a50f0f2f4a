// The export-filter link with route reflectors (real lab: 2 nodes, 2 reflectors, mesh off): a BGPFilter
// on the reflector BGPPeer keeps node-2's block from both reflectors, so it can reach no node — route
// explain on node-1 names the filter and rule ("any of its peers", the two reflectors), cluster status
// names it on the missing route and notes it on node-2; then the filter with `source: RemotePeers` (node-2
// announces, the reflectors keep it from their clients): both name the reflectors' rule; the filter off
// the peer → whole again.
import t from 'tap';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, tabbyctl, until, blockOf, nodeIp } from '../agent/helpers.js';

const skip = labSkipReason() ?? false;

interface Explained {
  broken?: string;
  steps: { step: string; ok: boolean; detail: string; fix?: string }[];
}
interface Cluster {
  converged: boolean;
  findings: { kind: string; node: string; detail: string }[];
  notes: { kind: string; node: string; detail: string }[];
}

t.test('export filter toward both route reflectors: explain and cluster status name it', { skip, timeout: 300_000 }, async (t) => {
  const lab = await agentLab(t, 'xr', { nodes: 2, mode: 'routed', routeReflectors: 2, agentEnv: { TABBY_STATUS_INTERVAL: '2s' } });
  t.ok((await lab.waitForBgp(60_000)).ok, 'sessions with the reflectors Established');
  const pod2 = await lab.addPod('node-2', 'p2');
  const blk2 = await blockOf(lab, 'node-2');
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const rs = new ResourceStore(ds);
  const explain = async () => {
    const r = await tabbyctl(lab, 'node-1', 'route', 'explain', pod2.ip, '-o', 'json');
    return { code: r.code, e: JSON.parse(r.stdout) as Explained };
  };
  const cluster = async () => {
    const r = await tabbyctl(lab, 'node-1', 'cluster', 'status', '-o', 'json');
    return { code: r.code, c: JSON.parse(r.stdout) as Cluster };
  };
  t.ok(await until(async () => (await explain()).code === 0 || undefined, 60_000, 1000), 'whole chain first');

  await rs.apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPFilter',
    metadata: { name: 'no-node2' },
    spec: { exportV4: [{ action: 'Reject', matchOperator: 'Equal', cidr: blk2 }] },
  } as never);
  const peer = (await rs.get('BGPPeer', 'peer-with-route-reflectors'))!;
  await rs.update({ ...peer, spec: { ...peer.spec, filters: ['no-node2'] } } as never);

  const rr = `${nodeIp(lab, 'rr-1')}, ${nodeIp(lab, 'rr-2')}`.replace(/\./g, '\\.');
  const blkRe = blk2.replace(/[./]/g, '\\$&');
  const r = await until(
    async () => {
      const x = await explain();
      return x.e.broken === 'export' ? x : undefined;
    },
    60_000,
    1000,
  );
  t.ok(r, 'export is the broken step');
  t.equal(r?.code, 1);
  t.match(
    r?.e.steps.find((s) => s.step === 'export')?.detail,
    new RegExp(
      `^node-2 does not export ${blkRe} to any of its peers \\((${rr}|${rr.split(', ').reverse().join(', ')})\\): BGPFilter no-node2 exportV4\\[0\\] Reject$`,
    ),
  );
  const c = await until(
    async () => {
      const x = await cluster();
      return x.c.findings.some((f) => f.kind === 'block-not-routed' && f.node === 'node-1') &&
        x.c.notes.some((n) => n.kind === 'export-filtered' && n.node === 'node-2')
        ? x
        : undefined;
    },
    30_000,
    1000,
  );
  t.ok(c, 'cluster status: block-not-routed on node-1 and the filter noted on node-2');
  t.equal(c?.code, 1);
  t.match(
    c?.c.findings.find((f) => f.kind === 'block-not-routed')?.detail,
    /node-2's export filter rejects it: BGPFilter no-node2 exportV4\[0\] Reject/,
  );
  t.match(
    c?.c.notes.find((n) => n.kind === 'export-filtered')?.detail,
    /to rr-\d \(.*\), rr-\d \(.*\): BGPFilter no-node2 exportV4\[0\] Reject$/,
  );

  // The same filter with `source: RemotePeers`: node-2 announces its own block, the reflectors keep it
  // from their clients (a learned route) — explain and cluster status name the reflectors' rule.
  await rs.apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPFilter',
    metadata: { name: 'no-node2' },
    spec: { exportV4: [{ action: 'Reject', matchOperator: 'Equal', cidr: blk2, source: 'RemotePeers' }] },
  } as never);
  const n1 = nodeIp(lab, 'node-1').replace(/\./g, '\\.');
  const byRrs = await until(
    async () => {
      const x = await explain();
      const d = x.e.steps.find((s) => s.step === 'export');
      return d && !d.ok && /no route reflector reflects it/.test(d.detail) ? x : undefined;
    },
    60_000,
    1000,
  );
  t.ok(byRrs, 'export step: the reflectors do not reflect it');
  t.equal(byRrs?.code, 1);
  t.match(
    byRrs?.e.steps.find((s) => s.step === 'export')?.detail,
    new RegExp(
      `^node-2 announces ${blkRe}, but no route reflector reflects it to this node \\(${n1}\\): rr-\\d: BGPFilter no-node2 exportV4\\[0\\] Reject; rr-\\d: BGPFilter no-node2 exportV4\\[0\\] Reject$`,
    ),
  );
  const c2 = await until(
    async () => {
      const x = await cluster();
      const f = x.c.findings.find((f) => f.kind === 'block-not-routed' && f.node === 'node-1');
      return f && /kept from it by rr-/.test(f.detail) ? f : undefined;
    },
    30_000,
    1000,
  );
  t.match(c2?.detail, /kept from it by rr-\d's export filter \(BGPFilter no-node2 exportV4\[0\] Reject\), rr-\d's export filter/);

  await rs.update({ ...(await rs.get('BGPPeer', 'peer-with-route-reflectors'))!, spec: peer.spec } as never);
  t.ok(await until(async () => (await explain()).code === 0 || undefined, 60_000, 1000), 'filter off: whole again');
  t.ok(await until(async () => (await cluster()).c.converged || undefined, 60_000, 1000), 'cluster converged again');
});
