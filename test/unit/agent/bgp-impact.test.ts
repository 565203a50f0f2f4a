// apply --dry-run's BGP impact: sessions added/removed per node, and the partition warning.
import t from 'tap';
import { bgpImpact } from '../../../src/agent/bgp-impact.js';
import type { Node, BGPPeer, BGPConfiguration } from '../../../src/datastore/resources.js';

const node = (name: string, ip: string, rr = false): Node => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'Node',
  metadata: { name, ...(rr ? { labels: { 'route-reflector': 'true' } } : {}) },
  spec: { bgp: { ipv4Address: `${ip}/24`, ...(rr ? { routeReflectorClusterID: '244.0.0.1' } : {}) } },
});
const cfg = (mesh: boolean): BGPConfiguration => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'BGPConfiguration',
  metadata: { name: 'default' },
  spec: { nodeToNodeMeshEnabled: mesh },
});
const toRr: BGPPeer = {
  apiVersion: 'projectcalico.org/v3',
  kind: 'BGPPeer',
  metadata: { name: 'rr' },
  spec: { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" },
};
const base = { nodes: [node('a', '10.0.0.1'), node('b', '10.0.0.2')], peers: [], pools: [], blocks: [] };

t.test('mesh off with no route reflector: every node partitioned', async (t) => {
  const r = bgpImpact({ ...base, bgpConfig: cfg(true) }, [{ kind: 'BGPConfiguration', name: 'default', res: cfg(false) }]);
  t.same(
    r.nodes.map((n) => [n.node, n.before, n.after, n.removed]),
    [
      ['a', 1, 0, ['b (10.0.0.2) [node-to-node mesh]']],
      ['b', 1, 0, ['a (10.0.0.1) [node-to-node mesh]']],
    ],
  );
  t.equal(r.warnings.length, 3);
  t.match(r.warnings[0], /a would have no BGP session at all/);
});

t.test('mesh off with a route reflector and the BGPPeer to it: no partition', async (t) => {
  const cur = { ...base, nodes: [...base.nodes, node('rr', '10.0.0.9', true)], peers: [toRr], bgpConfig: cfg(true) };
  const r = bgpImpact(cur, [{ kind: 'BGPConfiguration', name: 'default', res: cfg(false) }]);
  t.same(r.warnings, []);
  t.same(r.nodes.find((n) => n.node === 'a')?.removed, ['b (10.0.0.2) [node-to-node mesh]']);
  t.same(r.nodes.find((n) => n.node === 'a')?.after, 1, 'a keeps its session with the reflector');
});

t.test('deleting the only BGPPeer once the mesh is off partitions', async (t) => {
  const cur = { ...base, nodes: [...base.nodes, node('rr', '10.0.0.9', true)], peers: [toRr], bgpConfig: cfg(false) };
  const r = bgpImpact(cur, [{ kind: 'BGPPeer', name: 'rr' }]);
  t.ok(r.warnings.some((w) => /^a would have no BGP session/.test(w)));
});

t.test('a BGPFilter that would keep blocks from peers: one warning per node, block and rule; none when nothing new', async (t) => {
  const filter = (exportV4: object[]) =>
    ({ apiVersion: 'projectcalico.org/v3', kind: 'BGPFilter', metadata: { name: 'out' }, spec: { exportV4 } }) as never;
  const fullMesh = (filters: string[]): BGPPeer => ({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'full-mesh' },
    spec: { nodeSelector: 'all()', peerSelector: 'all()', filters },
  });
  const blocks = [
    { cidr: '10.244.1.0/26', node: 'a', affinityState: 'confirmed', pool: 'p', inUse: 1 },
    { cidr: '10.244.2.0/26', node: 'b', affinityState: 'confirmed', pool: 'p', inUse: 1 },
    { cidr: '10.244.3.0/26', node: 'b', affinityState: 'pending', pool: 'p', inUse: 0 },
  ];
  const cur = { ...base, blocks, peers: [fullMesh(['out'])], bgpConfig: cfg(false), filters: [filter([])] };
  // The filter appears: rule 1 rejects b's block (rule 0 matches something else).
  const one = bgpImpact(cur, [
    {
      kind: 'BGPFilter',
      name: 'out',
      res: filter([
        { action: 'Accept', matchOperator: 'Equal', cidr: '10.99.0.0/24' },
        { action: 'Reject', matchOperator: 'Equal', cidr: '10.244.2.0/26' },
      ]),
    },
  ]);
  t.same(one.warnings, [
    'b would stop exporting its block 10.244.2.0/26 to a (10.0.0.1): BGPFilter out exportV4[1] Reject',
    'b would export none of its blocks to any BGP peer: its pods become unreachable from other nodes',
  ]);
  // Every block: both nodes named.
  const all = bgpImpact(cur, [{ kind: 'BGPFilter', name: 'out', res: filter([{ action: 'Reject' }]) }]);
  t.equal(all.warnings.filter((w) => /would export none of its blocks/.test(w)).length, 2);
  t.ok(all.warnings.includes('a would stop exporting its block 10.244.1.0/26 to b (10.0.0.2): BGPFilter out exportV4[0] Reject'));
  // Already in place: applying it again (unchanged) warns about nothing.
  const again = bgpImpact({ ...cur, filters: [filter([{ action: 'Reject' }])] }, [
    { kind: 'BGPFilter', name: 'out', res: filter([{ action: 'Reject' }]) },
  ]);
  t.same(again.warnings, []);
  // Attaching an existing filter through a BGPPeer counts too; a filter accepting the blocks does not warn.
  const attach = bgpImpact(
    { ...cur, peers: [fullMesh([])], filters: [filter([{ action: 'Reject', matchOperator: 'In', cidr: '10.244.1.0/24' }])] },
    [{ kind: 'BGPPeer', name: 'full-mesh', res: fullMesh(['out']) }],
  );
  t.same(attach.warnings, [
    'a would stop exporting its block 10.244.1.0/26 to b (10.0.0.2): BGPFilter out exportV4[0] Reject',
    'a would export none of its blocks to any BGP peer: its pods become unreachable from other nodes',
  ]);
  // A BGPPeer naming a filter that does not exist: the agent rejects everything (fail closed) — said so.
  const missing = bgpImpact({ ...cur, peers: [fullMesh([])], filters: [] }, [
    { kind: 'BGPPeer', name: 'full-mesh', res: fullMesh(['nope']) },
  ]);
  t.match(
    missing.warnings[0],
    /^a would stop exporting its block 10\.244\.1\.0\/26 to b \(10\.0\.0\.2\): BGPFilter nope \(no such BGPFilter: the agent fails closed/,
  );
  const harmless = bgpImpact(cur, [
    { kind: 'BGPFilter', name: 'out', res: filter([{ action: 'Accept', matchOperator: 'In', cidr: '10.244.0.0/16' }]) },
  ]);
  t.same(harmless.warnings, []);
});
