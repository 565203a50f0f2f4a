// The cluster check's pure core: expected sessions (mesh, route reflectors) against the records, every
// confirmed block routed by every other node, stale and missing records, disabled pools.
import t from 'tap';
import { checkCluster, STALE_AUTO, type ClusterInput, type NodeStatusRecord } from '../../../src/agent/cluster-check.js';
import { calicoSelectorMatch } from '../../../src/agent/wiring-store.js';

const now = new Date('2026-01-01T12:00:00Z');
const node = (name: string, ipv4: string, rr = false): ClusterInput['nodes'][number] => ({
  name,
  ipv4,
  labels: rr ? { 'route-reflector': 'true' } : {},
  routeReflector: rr,
  ...(rr ? { rrClusterId: '244.0.0.1' } : {}),
});
const block = (cidr: string, n: string, state = 'confirmed', pool = 'p'): ClusterInput['blocks'][number] => ({
  cidr,
  node: n,
  affinityState: state,
  pool,
  inUse: 1,
});

function rec(name: string, peers: [string, string][], routes: string[], over: Partial<NodeStatusRecord> = {}): NodeStatusRecord {
  return {
    node: name,
    mode: 'node',
    version: 't',
    updatedAt: now.toISOString(),
    startedAt: now.toISOString(),
    sessions: peers.map(([peer, state]) => ({
      peer,
      type: 'node-to-node mesh',
      state: state as 'Established',
      since: now.toISOString(),
      info: state,
    })),
    blocks: [],
    routes,
    kernelInSync: true,
    ready: true,
    problems: [],
    ...over,
  };
}

function meshInput(records: NodeStatusRecord[], over: Partial<ClusterInput> = {}): ClusterInput {
  return {
    nodes: [node('a', '10.0.0.1'), node('b', '10.0.0.2'), node('c', '10.0.0.3')],
    peers: [],
    bgp: { asNumber: 64512, nodeToNodeMeshEnabled: true },
    blocks: [block('10.244.1.0/26', 'a'), block('10.244.2.0/26', 'b'), block('10.244.3.0/26', 'c')],
    disabledPools: new Set(),
    records: new Map(records.map((r) => [r.node, r])),
    selector: calicoSelectorMatch,
    now,
    staleAfterMs: 90_000,
    ...over,
  };
}

const healthy = (): NodeStatusRecord[] => [
  rec(
    'a',
    [
      ['10.0.0.2', 'Established'],
      ['10.0.0.3', 'Established'],
    ],
    ['10.244.1.0/26', '10.244.2.0/26', '10.244.3.0/26'],
  ),
  rec(
    'b',
    [
      ['10.0.0.1', 'Established'],
      ['10.0.0.3', 'Established'],
    ],
    ['10.244.1.0/26', '10.244.2.0/26', '10.244.3.0/26'],
  ),
  rec(
    'c',
    [
      ['10.0.0.1', 'Established'],
      ['10.0.0.2', 'Established'],
    ],
    ['10.244.1.0/26', '10.244.2.0/26', '10.244.3.0/26'],
  ),
];

t.test('a healthy mesh converges', async (t) => {
  const r = checkCluster(meshInput(healthy()));
  t.same(r.findings, []);
  t.ok(r.converged);
  t.same(r.sessions, { expected: 6, established: 6 });
  t.same(r.blocks, { confirmed: 3, missingRoutes: 0 });
  t.same(
    r.nodes.map((n) => [n.node, n.status, n.blocksExpected, n.blocksRouted]),
    [
      ['a', 'ok', 2, 2],
      ['b', 'ok', 2, 2],
      ['c', 'ok', 2, 2],
    ],
  );
});

t.test('each break is named on the node where it is', async (t) => {
  const recs = healthy();
  recs[1]!.sessions[1]!.state = 'Active';
  recs[1]!.sessions[1]!.info = 'Active Socket: Connection refused';
  recs[2]!.routes = ['10.244.1.0/26', '10.244.3.0/26'];
  const r = checkCluster(meshInput(recs));
  t.notOk(r.converged);
  t.same(
    r.findings.map((f) => [f.kind, f.node]),
    [
      ['session-down', 'b'],
      ['block-not-routed', 'c'],
    ],
  );
  t.match(r.findings[0]!.detail, /node-to-node mesh session with c \(10\.0\.0\.3\) is Active: Active Socket: Connection refused/);
  t.match(r.findings[1]!.detail, /no route to block 10\.244\.2\.0\/26 of b/);
});

t.test('missing, stale and unregistered nodes; pending blocks are not expected anywhere', async (t) => {
  const recs = healthy();
  recs[0]!.updatedAt = new Date(now.getTime() - 120_000).toISOString();
  const r = checkCluster(
    meshInput([recs[0]!, recs[1]!], {
      expectNodes: ['a', 'b', 'c', 'd'],
      blocks: [...meshInput([]).blocks, block('10.244.9.0/26', 'a', 'pending')],
    }),
  );
  t.same(
    r.findings.map((f) => [f.kind, f.node]),
    [
      ['not-registered', 'd'],
      ['stale-status', 'a'],
      ['no-status', 'c'],
    ],
  );
  t.match(r.findings[1]!.detail, /published 120 s ago/);
});

t.test('kernel out of sync and a disabled pool holding addresses', async (t) => {
  const recs = healthy();
  recs[0]!.kernelInSync = false;
  const r = checkCluster(meshInput(recs, { disabledPools: new Set(['p']) }));
  t.same(
    r.findings.map((f) => f.kind),
    ['kernel-out-of-sync'],
  );
  t.same(
    r.notes.map((f) => f.kind),
    ['disabled-pool-in-use', 'disabled-pool-in-use', 'disabled-pool-in-use'],
    'a disabled pool in use is a note, not a mismatch',
  );
  t.same(r.blocks.confirmed, 3, 'blocks of a disabled pool stay routed, so they are still expected in kernels');
});

t.test('route reflectors: nodes expect only the reflectors, reflectors expect every client, no kernel check on a reflector', async (t) => {
  const input = meshInput([], {
    nodes: [node('a', '10.0.0.1'), node('b', '10.0.0.2'), node('rr', '10.0.0.9', true)],
    peers: [{ name: 'to-rr', nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" }],
    bgp: { asNumber: 64512, nodeToNodeMeshEnabled: false },
    blocks: [block('10.244.1.0/26', 'a'), block('10.244.2.0/26', 'b')],
  });
  input.records = new Map([
    ['a', rec('a', [['10.0.0.9', 'Established']], ['10.244.2.0/26'])],
    [
      'b',
      rec(
        'b',
        [
          ['10.0.0.9', 'Established'],
          ['10.0.0.1', 'Established'],
        ],
        ['10.244.1.0/26'],
      ),
    ],
    [
      'rr',
      rec(
        'rr',
        [
          ['10.0.0.1', 'Established'],
          ['10.0.0.2', 'OpenSent'],
        ],
        [],
        { mode: 'route-reflector', kernelInSync: false },
      ),
    ],
  ]);
  const r = checkCluster(input);
  t.same(
    r.findings.map((f) => [f.kind, f.node]),
    [
      ['session-unexpected', 'b'],
      ['session-down', 'rr'],
    ],
  );
  t.same(r.sessions, { expected: 4, established: 3 });
});

t.test("stale by the record's own interval (3x) unless the reader says otherwise", async (t) => {
  const recs = healthy();
  recs[0]!.intervalMs = 1000;
  recs[0]!.updatedAt = new Date(now.getTime() - 5000).toISOString();
  recs[1]!.updatedAt = new Date(now.getTime() - 60_000).toISOString(); // default interval 30 s: fresh
  const r = checkCluster(meshInput(recs, { staleAfterMs: STALE_AUTO }));
  t.same(
    r.findings.map((f) => [f.kind, f.node]),
    [['stale-status', 'a']],
  );
  t.match(r.findings[0]!.detail, /stale after 3 s/);
});

t.test("an export filter: the missing block names the owner's rule; a rejection with no effect is a note", async (t) => {
  const recs = healthy();
  const b = recs[1]!;
  // Reported in session order (c's session came up first): the note lists the peers by name all the same.
  b.exportRejected = [
    { prefix: '10.244.2.0/26', peer: '10.0.0.3', filter: 'no-b', rule: 0, decidedBy: 'no-b exportV4[0] Reject' },
    { prefix: '10.244.2.0/26', peer: '10.0.0.1', filter: 'no-b', rule: 0, decidedBy: 'no-b exportV4[0] Reject' },
  ];
  for (const r of [recs[0]!, recs[2]!]) r.routes = r.routes.filter((x) => x !== '10.244.2.0/26');
  const r = checkCluster(meshInput(recs));
  t.equal(r.converged, false);
  t.same(
    r.findings.map((f) => `${f.node} ${f.kind} ${f.detail}`),
    [
      "a block-not-routed no route to block 10.244.2.0/26 of b (b's export filter rejects it: BGPFilter no-b exportV4[0] Reject)",
      "c block-not-routed no route to block 10.244.2.0/26 of b (b's export filter rejects it: BGPFilter no-b exportV4[0] Reject)",
    ],
  );
  t.same(
    r.notes.map((f) => `${f.node} ${f.kind} ${f.detail}`),
    ['b export-filtered does not export 10.244.2.0/26 to a (10.0.0.1), c (10.0.0.3): BGPFilter no-b exportV4[0] Reject'],
  );
  // A filter toward a router outside the cluster only: every node still routes the block.
  const ok = healthy();
  ok[1]!.exportRejected = [{ prefix: '10.244.2.0/26', peer: '192.0.2.1', filter: 'tor', rule: 2, decidedBy: 'tor exportV4[2] Reject' }];
  const r2 = checkCluster(meshInput(ok));
  t.equal(r2.converged, true, 'not a mismatch');
  t.same(
    r2.notes.map((f) => f.detail),
    ['does not export 10.244.2.0/26 to 192.0.2.1: BGPFilter tor exportV4[2] Reject'],
  );
});

t.test('nodes in natural order: node-2 before node-10', async (t) => {
  const names = ['node-10', 'node-1', 'node-2'];
  const r = checkCluster(meshInput([], { nodes: names.map((n, i) => node(n, `10.0.0.${i + 1}`)), blocks: [] }));
  t.same(
    r.nodes.map((n) => n.node),
    ['node-1', 'node-2', 'node-10'],
  );
});

t.test("a missing block names another node's export filter that keeps it from this node (a route reflector's)", async (t) => {
  const recs = healthy();
  recs[0]!.routes = recs[0]!.routes.filter((x) => x !== '10.244.2.0/26');
  recs[2]!.exportRejected = [
    { prefix: '10.244.2.0/26', peer: '10.0.0.1', filter: 'rr-out', rule: 2, decidedBy: 'rr-out exportV4[2] Reject' },
  ];
  const r = checkCluster(meshInput(recs));
  t.same(
    r.findings.map((f) => `${f.node} ${f.detail}`),
    ["a no route to block 10.244.2.0/26 of b (kept from it by c's export filter (BGPFilter rr-out exportV4[2] Reject))"],
  );
});
