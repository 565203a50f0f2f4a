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
