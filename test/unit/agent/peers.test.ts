import t from 'tap';
import { computePeers, type PeerNode, type PeerResource, type SelectorMatch } from '../../../src/agent/peers.js';

// A tiny selector stand-in for the pure core: "all()", "k == 'v'", "has(k)".
const matches: SelectorMatch = (sel, labels) => {
  if (sel.trim() === 'all()') return true;
  const eq = /^\s*([\w./-]+)\s*==\s*'([^']*)'\s*$/.exec(sel);
  if (eq) return labels[eq[1]!] === eq[2];
  const has = /^\s*has\(([\w./-]+)\)\s*$/.exec(sel);
  if (has) return labels[has[1]!] !== undefined;
  throw new Error(`test selector: ${sel}`);
};

const n = (name: string, ipv4: string, labels: Record<string, string> = {}, extra: Partial<PeerNode> = {}): PeerNode => ({
  name,
  ipv4,
  labels,
  ...extra,
});
const cfg = { asNumber: 64512, nodeToNodeMeshEnabled: true };

t.test('full mesh: every other node, lower address passive toward higher (string comparison)', async (t) => {
  const nodes = [n('a', '10.0.0.1'), n('b', '10.0.0.2'), n('c', '10.0.0.10')];
  const pa = computePeers(nodes[0]!, nodes, [], cfg, matches);
  t.same(
    pa.map((p) => [p.address, p.type, p.passive, p.localAddress, p.asn]),
    [
      ['10.0.0.2', 'node-to-node mesh', true, '10.0.0.1', 64512],
      ['10.0.0.10', 'node-to-node mesh', true, '10.0.0.1', 64512],
    ],
  );
  // "10.0.0.10" < "10.0.0.2" as strings: b is active toward c, and c passive toward b.
  const pb = computePeers(nodes[1]!, nodes, [], cfg, matches);
  t.same(
    pb.map((p) => [p.address, p.passive]),
    [
      ['10.0.0.1', false],
      ['10.0.0.10', false],
    ],
  );
  const pc = computePeers(nodes[2]!, nodes, [], cfg, matches);
  t.same(
    pc.map((p) => [p.address, p.passive]),
    [
      ['10.0.0.1', false],
      ['10.0.0.2', true],
    ],
  );
  // Exactly one side of each pair is passive.
  for (const [x, y] of [
    [pa, pb],
    [pa, pc],
    [pb, pc],
  ] as const) {
    for (const p of x) {
      const back = y.find((q) => q.localAddress === p.address && q.address === p.localAddress);
      if (back) t.not(back.passive, p.passive, `${p.localAddress}<->${p.address}`);
    }
  }
});

t.test('mesh off: no node peers; node AS overrides the global AS', async (t) => {
  const nodes = [n('a', '10.0.0.1'), n('b', '10.0.0.2', {}, { asNumber: 65001 })];
  t.same(computePeers(nodes[0]!, nodes, [], { ...cfg, nodeToNodeMeshEnabled: false }, matches), []);
  t.equal(computePeers(nodes[0]!, nodes, [], cfg, matches)[0]!.asn, 65001);
});

t.test('global, node-specific (node:) and nodeSelector BGPPeers', async (t) => {
  const nodes = [n('a', '10.0.0.1', { rack: 'r1' }), n('b', '10.0.0.2', { rack: 'r2' })];
  const peers: PeerResource[] = [
    { name: 'tor-global', peerIP: '10.0.0.254', asNumber: 65000 },
    { name: 'a-only', node: 'a', peerIP: '10.0.0.253', asNumber: 65001, keepOriginalNextHop: true },
    { name: 'rack2', nodeSelector: "rack == 'r2'", peerIP: '10.0.0.252', asNumber: 65002 },
  ];
  const pa = computePeers(nodes[0]!, nodes, peers, { ...cfg, nodeToNodeMeshEnabled: false }, matches);
  t.same(
    pa.map((p) => [p.address, p.type, p.asn, p.keepOriginalNextHop, p.passive]),
    [
      ['10.0.0.253', 'node specific', 65001, true, false],
      ['10.0.0.254', 'global', 65000, false, false],
    ],
  );
  const pb = computePeers(nodes[1]!, nodes, peers, { ...cfg, nodeToNodeMeshEnabled: false }, matches);
  t.same(
    pb.map((p) => [p.address, p.type, p.asn]),
    [
      ['10.0.0.252', 'node specific', 65002],
      ['10.0.0.254', 'global', 65000],
    ],
  );
  t.equal(pb[0]!.localAddress, '10.0.0.2', 'sourced from the node address');
});

t.test('selector peers both ways; route reflectors treat others as RR clients', async (t) => {
  const nodes = [
    n('a', '10.0.0.1'),
    n('b', '10.0.0.2'),
    n('rr1', '10.0.0.101', { 'route-reflector': 'true' }, { rrClusterId: '244.0.0.1' }),
    n('rr2', '10.0.0.102', { 'route-reflector': 'true' }, { rrClusterId: '244.0.0.1' }),
  ];
  const peers: PeerResource[] = [{ name: 'peer-with-rrs', nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" }];
  const off = { ...cfg, nodeToNodeMeshEnabled: false };
  const pa = computePeers(nodes[0]!, nodes, peers, off, matches);
  t.same(
    pa.map((p) => [p.address, p.type, p.routeReflectorClient, p.peerNode]),
    [
      ['10.0.0.101', 'node specific', false, 'rr1'],
      ['10.0.0.102', 'node specific', false, 'rr2'],
    ],
    'a client peers with both RRs and no other node',
  );
  const prr = computePeers(nodes[2]!, nodes, peers, off, matches);
  t.same(
    prr.map((p) => [p.address, p.routeReflectorClient]).sort(),
    [
      ['10.0.0.1', true],
      ['10.0.0.102', false],
      ['10.0.0.2', true],
    ].sort(),
    'RR peers with every client (reverse direction) and with the other RR, same cluster = non-client',
  );
  // Passive consistent on both ends of the client/RR pair.
  const a2rr = pa.find((p) => p.address === '10.0.0.101')!;
  const rr2a = prr.find((p) => p.address === '10.0.0.1')!;
  t.not(a2rr.passive, rr2a.passive);
});

t.test('no session to ourselves, none of a family we have no address in; dedupe keeps mesh', async (t) => {
  const nodes = [n('a', '10.0.0.1'), n('b', '10.0.0.2'), { name: 'v6', labels: {}, ipv6: 'fd00::2' }];
  const self = { ...nodes[0]!, ipv6: undefined } as PeerNode;
  const peers: PeerResource[] = [
    { name: 'self', peerIP: '10.0.0.1', asNumber: 64512 },
    { name: 'dup', peerIP: '10.0.0.2', asNumber: 64512 },
    { name: 'v6peer', peerIP: 'fd00::99', asNumber: 65000 },
  ];
  const p = computePeers(self, nodes, peers, cfg, matches);
  t.same(
    p.map((x) => [x.address, x.type]),
    [['10.0.0.2', 'node-to-node mesh']],
  );
});

t.test('IPv6 sessions are separate, over IPv6 addresses', async (t) => {
  const nodes = [
    { name: 'a', labels: {}, ipv4: '10.0.0.1', ipv6: 'fd00::1' },
    { name: 'b', labels: {}, ipv4: '10.0.0.2', ipv6: 'fd00::2' },
  ];
  const p = computePeers(nodes[0]!, nodes, [], cfg, matches);
  t.same(
    p.map((x) => [x.address, x.family, x.localAddress]),
    [
      ['10.0.0.2', 4, '10.0.0.1'],
      ['fd00::2', 6, 'fd00::1'],
    ],
  );
});

t.test('an RR treats an iBGP peerIP peer as a client, an eBGP one not', async (t) => {
  const rr = n('rr', '10.0.0.100', {}, { rrClusterId: '1.1.1.1' });
  const p = computePeers(
    rr,
    [rr],
    [
      { name: 'ibgp', peerIP: '10.0.0.50', asNumber: 64512 },
      { name: 'ebgp', peerIP: '10.0.0.51', asNumber: 65000 },
    ],
    cfg,
    matches,
  );
  t.same(
    p.map((x) => [x.address, x.routeReflectorClient]),
    [
      ['10.0.0.51', false],
      ['10.0.0.50', true],
    ]
      .sort((a, b) => (a[0]! < b[0]! ? -1 : 1))
      .reverse(),
  );
});

t.test('BGPPeer ttlSecurity and numAllowedLocalASNumbers reach the peer', async (t) => {
  const nodes = [n('a', '10.0.0.1')];
  const p = computePeers(
    nodes[0]!,
    nodes,
    [{ name: 'tor', peerIP: '10.0.0.254', asNumber: 65000, ttlSecurity: 1, numAllowedLocalASNumbers: 2 }],
    cfg,
    matches,
  );
  t.equal(p[0]?.ttlSecurity, 1);
  t.equal(p[0]?.allowOwnAs, 2);
});

t.test('listenPort: node peers are dialled at the port every node listens on; explicit peers keep theirs', async (t) => {
  const nodes = [n('a', '10.0.0.1'), n('b', '10.0.0.2', { rr: 'y' })];
  const peers: PeerResource[] = [
    { name: 'tor', peerIP: '192.0.2.1', asNumber: 65000 },
    { name: 'tor2', peerIP: '192.0.2.2:1179', asNumber: 65000 },
    { name: 'to-rr', peerSelector: "rr == 'y'" },
  ];
  const mesh = computePeers(nodes[0]!, nodes, peers, { ...cfg, listenPort: 1790 }, matches);
  t.same(
    mesh.map((p) => [p.address, p.port]),
    [
      ['10.0.0.2', 1790],
      ['192.0.2.1', undefined],
      ['192.0.2.2', 1179],
    ],
  );
  const noMesh = computePeers(nodes[0]!, nodes, peers, { ...cfg, nodeToNodeMeshEnabled: false, listenPort: 1790 }, matches);
  t.equal(noMesh.find((p) => p.address === '10.0.0.2')?.port, 1790, 'a peerSelector peer is a node: its listen port');
  t.equal(computePeers(nodes[0]!, nodes, [], { ...cfg, listenPort: 179 }, matches)[0]?.port, undefined, '179 is the default: no port');
});

t.test('reachableBy is carried to the desired peer (the agent routes the peer via it)', async (t) => {
  const nodes = [n('a', '10.0.0.1')];
  const ps = computePeers(
    nodes[0]!,
    nodes,
    [{ name: 'tor', peerIP: '192.0.2.1', asNumber: 65000, reachableBy: '10.0.0.254' }],
    cfg,
    matches,
  );
  t.equal(ps[0]?.reachableBy, '10.0.0.254');
});

t.test('reversePeering Manual: the selected nodes do not peer back by themselves', async (t) => {
  const nodes = [n('a', '10.0.0.1'), n('rr1', '10.0.0.101', { 'route-reflector': 'true' })];
  const off = { ...cfg, nodeToNodeMeshEnabled: false };
  const fwd: PeerResource = { name: 'to-rr', nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" };
  t.same(
    computePeers(nodes[1]!, nodes, [fwd], off, matches).map((p) => p.address),
    ['10.0.0.1'],
    'Auto: rr1 peers back with a',
  );
  const manual = { ...fwd, reversePeering: 'Manual' as const };
  t.same(
    computePeers(nodes[0]!, nodes, [manual], off, matches).map((p) => p.address),
    ['10.0.0.101'],
    'Manual: a still peers with rr1',
  );
  t.same(computePeers(nodes[1]!, nodes, [manual], off, matches), [], 'Manual: rr1 makes no session back');
  const back: PeerResource = { name: 'rr-to-a', node: 'rr1', peerIP: '10.0.0.1', asNumber: 64512 };
  t.same(
    computePeers(nodes[1]!, nodes, [manual, back], off, matches).map((p) => p.address),
    ['10.0.0.1'],
    'the reverse session comes from a BGPPeer of its own',
  );
});
