// route explain's export step against the owner's published export rejections: broken (naming the
// BGPFilter and rule) when the filter keeps the block from this node or from every peer the owner has
// (route reflectors), ok with the other peers named when this node still gets it.
import t from 'tap';
import { explainChain, type ExplainInput } from '../../../src/agent/route-explain.js';
import type { NodeStatusRecord } from '../../../src/agent/cluster-check.js';

const at = '2026-01-01T12:00:00Z';
const BLOCK = '10.244.2.0/26';
function owner(peers: string[], rejectedTo: string[]): NodeStatusRecord {
  return {
    node: 'node-2',
    mode: 'node',
    version: 't',
    updatedAt: at,
    startedAt: at,
    sessions: peers.map((peer) => ({ peer, type: 'node-to-node mesh', state: 'Established', since: at, info: '' })),
    blocks: [{ cidr: BLOCK, state: 'confirmed' }],
    exports: [BLOCK],
    exportRejected: rejectedTo.map((peer) => ({ prefix: BLOCK, peer, filter: 'no-b2', rule: 1, decidedBy: 'no-b2 exportV4[1] Reject' })),
    routes: [],
    kernelInSync: true,
    ready: true,
    problems: [],
  };
}
const input = (rec: NodeStatusRecord): ExplainInput => ({
  query: '10.244.2.5',
  here: 'node-1',
  hereAddress: '172.31.1.11/24',
  pools: [{ name: 'p', cidr: '10.244.0.0/16', ipipMode: 'Never', vxlanMode: 'Never' }],
  block: { cidr: BLOCK, node: 'node-2', affinityState: 'confirmed' },
  allocation: { allocated: true, handle: 'h', attrs: {} },
  ownerRecord: rec,
  ownerExists: true,
  agentRunning: false,
  kernelRoutes: [],
  tabbyProtocol: 81,
});
const exportStep = (rec: NodeStatusRecord) => explainChain(input(rec)).steps.find((s) => s.step === 'export')!;

t.test('an export filter toward this node breaks the export step, naming filter and rule', async (t) => {
  const s = exportStep(owner(['172.31.1.11', '172.31.1.13'], ['172.31.1.11']));
  t.equal(s.ok, false);
  t.equal(s.detail, `node-2 does not export ${BLOCK} to this node (172.31.1.11): BGPFilter no-b2 exportV4[1] Reject`);
  t.match(s.fix, /change rule exportV4\[1\] of BGPFilter no-b2/);
  t.equal(explainChain(input(owner(['172.31.1.11'], ['172.31.1.11']))).broken, 'export');
});

t.test('toward another peer only: ok, that peer named', async (t) => {
  const s = exportStep(owner(['172.31.1.11', '172.31.1.13'], ['172.31.1.13']));
  t.equal(s.ok, true);
  t.equal(s.detail, `node-2 announces ${BLOCK} over BGP, but not to 172.31.1.13 (BGPFilter no-b2 exportV4[1] Reject)`);
});

t.test('route reflectors: broken only when every reflector is filtered', async (t) => {
  const rrs = ['172.31.1.42', '172.31.1.41']; // session order; named in address order
  const all = exportStep(owner(rrs, rrs));
  t.equal(all.ok, false);
  t.match(all.detail, /does not export 10\.244\.2\.0\/26 to any of its peers \(172\.31\.1\.41, 172\.31\.1\.42\): BGPFilter no-b2/);
  t.equal(exportStep(owner(rrs, ['172.31.1.41'])).ok, true, 'the other reflector still carries it');
});

t.test('no rejection: the export step as before', async (t) => {
  t.same(exportStep(owner(['172.31.1.11'], [])), { step: 'export', ok: true, detail: `node-2 announces ${BLOCK} over BGP` });
});

t.test('received: the Loc-RIB decision step in words, and the metric from setPriority', async (t) => {
  const i = input(owner(['172.31.1.11'], []));
  i.agentRunning = true;
  i.agent = { origin: 'bgp', prefix: BLOCK, nextHops: ['172.31.1.12'], source: '172.31.1.12', decision: 'local-pref', metric: 512 };
  i.agent.route = { dst: BLOCK, gateway: '172.31.1.12', dev: 'eth0' };
  const s = explainChain(i).steps.find((x) => x.step === 'received')!;
  t.equal(
    s.detail,
    `learned ${BLOCK} from peer 172.31.1.12, best next hop(s) 172.31.1.12; best path by: highest LOCAL_PREF; kernel metric 512 (BGPFilter setPriority)`,
  );
  i.agent = { ...i.agent, decision: 'only-path' };
  delete i.agent.metric;
  t.match(explainChain(i).steps.find((x) => x.step === 'received')!.detail, /; best path by: the only path \(no other peer sent it\)$/);
});

t.test('route reflectors whose export filters keep the block from this node', async (t) => {
  const rr = (name: string, peer: string, reject: boolean): NodeStatusRecord => ({
    ...owner([peer, '172.31.1.12'], []),
    node: name,
    mode: 'route-reflector',
    blocks: [],
    exports: [],
    exportRejected: reject ? [{ prefix: BLOCK, peer, filter: 'rr-out', rule: 2, decidedBy: 'rr-out exportV4[2] Reject' }] : [],
  });
  const withRrs = (rrs: NodeStatusRecord[]) => {
    const i = input(owner(['172.31.1.41', '172.31.1.42'], []));
    i.reflectorRecords = rrs;
    return explainChain(i).steps.find((s) => s.step === 'export')!;
  };
  const both = withRrs([rr('rr-1', '172.31.1.11', true), rr('rr-2', '172.31.1.11', true)]);
  t.equal(both.ok, false);
  t.equal(
    both.detail,
    `node-2 announces ${BLOCK}, but no route reflector reflects it to this node (172.31.1.11): rr-1: BGPFilter rr-out exportV4[2] Reject; rr-2: BGPFilter rr-out exportV4[2] Reject`,
  );
  t.match(both.fix, /change rule exportV4\[2\] of BGPFilter rr-out/);
  const one = withRrs([rr('rr-1', '172.31.1.11', true), rr('rr-2', '172.31.1.11', false)]);
  t.equal(one.ok, true, 'rr-2 still reflects it');
  t.match(one.detail, /not reflected here by rr-1: BGPFilter rr-out exportV4\[2\] Reject/);
  t.same(withRrs([rr('rr-1', '172.31.1.99', true)]).ok, true, 'a reflector without a session to this node does not count');
});
