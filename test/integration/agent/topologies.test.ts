// tabby-node on the other topologies: two route reflectors with the mesh off (no node-to-node session,
// full reachability), and an IPIP pool on a kernel without ipip. The encapsulations (VXLAN, IPIP,
// CrossSubnet over either) are one table of modes in encap-modes.test.ts.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { agentLab, labSkipReason, routeTo, until, blockOf, nodeIp, tabbyctl, statusOf } from './helpers.js';
import { kernelHasIpipSync } from './ipip.js';

const skip = labSkipReason() ?? false;

t.test('two route reflectors, mesh off', { skip }, async (t) => {
  const lab = await agentLab(t, 'r', { nodes: 3, mode: 'routed', routeReflectors: 2 });
  t.ok((await lab.waitForBgp(40_000)).ok, 'every node Established with both RRs, RRs with everyone');
  for (const i of [1, 2, 3]) await lab.addPod(`node-${i}`, `r${i}`);
  t.same(
    (await lab.pingMatrix(15_000)).filter((m) => !m.ok),
    [],
    'every pod pings every other pod',
  );
  const rrIps = ['rr-1', 'rr-2'].map((n) => nodeIp(lab, n));
  for (const n of ['node-1', 'node-2', 'node-3']) {
    const s = await statusOf(lab, n);
    t.same(s?.peers.map((p) => p.address).sort(), [...rrIps].sort(), `${n}: sessions only with the route reflectors`);
    t.ok(s?.peers.every((p) => p.type === 'node specific' && p.state === 'Established'));
  }
  const rr = await statusOf(lab, 'rr-1');
  t.equal(rr?.mode, 'route-reflector');
  t.same(rr?.blocks, [], 'a route reflector holds no block');
  t.equal(rr?.peers.length, 4, 'rr-1 peers with the 3 clients and the other RR');
  const b3 = await blockOf(lab, 'node-3');
  t.match(routeTo(lab.node('node-1').netns, b3), { gateway: nodeIp(lab, 'node-3') }, 'reflected route keeps the original next hop');
  const st = await tabbyctl(lab, 'rr-1', 'node', 'status');
  t.equal(st.stdout.split('\n').filter((l) => /\| node specific \| up /.test(l)).length, 4, 'rr-1 node status: 4 peers up');
});

t.test(
  'IPIP pool on a kernel without ipip: reported clearly, never half-programmed',
  { skip: skip || (kernelHasIpipSync() ? 'this kernel has ipip (the IPIP end-to-end test covers it)' : false) },
  async (t) => {
    const lab = await agentLab(t, 'n', { nodes: 2, mode: 'ipip' });
    t.ok((await lab.waitForBgp(40_000)).ok, 'BGP still comes up');
    const st = await until(async () => {
      const s = await lab.agentStatus('node-1');
      return s?.problems.length ? s : undefined;
    }, 20_000);
    t.match(st?.problems[0], /^kernel has no ipip support: use vxlanMode or ipipMode Never/);
    t.equal(st?.readiness.ready, false, 'not ready');
    t.match(st?.readiness.reasons.join('\n'), /kernel has no ipip support/);
    const out = await tabbyctl(lab, 'node-1', 'node', 'status');
    t.match(out.stdout, /^tabby-node process is running\.\n\nWARNING: kernel has no ipip support: use vxlanMode or ipipMode Never/);
    const links = execFileSync('ip', ['-n', lab.node('node-1').netns, '-o', 'link'], { encoding: 'utf8' });
    t.notMatch(links, /tunl0/, 'no tunl0');
    const b2 = await blockOf(lab, 'node-2');
    t.equal(routeTo(lab.node('node-1').netns, b2), undefined, `no route for ${b2} at all (not via tunl0, not plain)`);
    t.equal(routeTo(lab.node('node-1').netns, await blockOf(lab, 'node-1'))?.type, 'blackhole', 'own block still blackholed');
  },
);
