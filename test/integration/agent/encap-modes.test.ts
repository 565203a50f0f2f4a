// tabby-node end to end in every encapsulation, as one table of modes: the same lab (3 nodes, pods
// through the real CNI plugin) and the same checks for each row — every pod pings every other pod, each
// kernel has every remote block through the row's tunnel (or, CrossSubnet inside a subnet, plainly via
// the node), with the tunnel's own state (VXLAN: permanent neighbour + FDB toward the node; IPIP: onlink
// via the node's address) and BGP exporting the blocks only where the pool is not VXLAN. Rows that need
// the ipip module skip on a kernel without it, with that reason, and run unchanged where it exists.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { agentLab, labSkipReason, routeTo, until, blockOf, nodeIp, statusOf } from './helpers.js';
import { kernelHasIpipSync } from './ipip.js';
import type { LabOptions } from '../../../src/lab/lab.js';

const skip = labSkipReason() ?? false;
const NO_IPIP = 'no ipip in this kernel (ip link add … type ipip fails)';

interface Mode {
  name: string;
  tag: string;
  lab: LabOptions;
  tunnel: 'vxlan.calico' | 'tunl0';
  crossSubnet: boolean;
}
const MODES: Mode[] = [
  { name: 'VXLAN', tag: 'ev', lab: { mode: 'vxlan' }, tunnel: 'vxlan.calico', crossSubnet: false },
  { name: 'IPIP', tag: 'ei', lab: { mode: 'ipip' }, tunnel: 'tunl0', crossSubnet: false },
  {
    name: 'CrossSubnet over VXLAN',
    tag: 'exv',
    lab: { mode: 'crosssubnet', crossSubnetEncap: 'vxlan' },
    tunnel: 'vxlan.calico',
    crossSubnet: true,
  },
  { name: 'CrossSubnet over IPIP', tag: 'exi', lab: { mode: 'crosssubnet', crossSubnetEncap: 'ipip' }, tunnel: 'tunl0', crossSubnet: true },
];
const NODES = ['node-1', 'node-2', 'node-3'];

for (const m of MODES) {
  const reason = skip || (m.tunnel === 'tunl0' && !kernelHasIpipSync() ? NO_IPIP : false);
  t.test(`${m.name}, 3 nodes`, { skip: reason }, async (t) => {
    const lab = await agentLab(t, m.tag, { nodes: 3, ...m.lab });
    t.ok((await lab.waitForBgp(40_000)).ok, 'mesh sessions Established');
    for (const [i, n] of NODES.entries()) await lab.addPod(n, `${m.tag}${i + 1}`);
    t.same(
      (await lab.pingMatrix(15_000)).filter((x) => !x.ok),
      [],
      'every pod pings every other pod',
    );
    if (m.crossSubnet) {
      t.equal(lab.node('node-1').subnet, lab.node('node-3').subnet, 'node-1 and node-3 share a subnet');
      t.not(lab.node('node-1').subnet, lab.node('node-2').subnet, 'node-2 is across the router');
    }
    for (const a of NODES) {
      const s = await statusOf(lab, a);
      if (m.tunnel === 'vxlan.calico') t.same(s?.exports, [], `${a}: a VXLAN pool's blocks are not announced over BGP`);
      else t.ok((s?.exports.length ?? 0) > 0, `${a}: its blocks are announced over BGP`);
      for (const b of NODES) {
        if (a === b) continue;
        const blk = await blockOf(lab, b);
        const r = await until(() => routeTo(lab.node(a).netns, blk), 10_000);
        if (m.crossSubnet && lab.node(a).subnet === lab.node(b).subnet) {
          t.match(
            r,
            { gateway: nodeIp(lab, b), dev: 'eth0', protocol: '81' },
            `${a}: ${blk} via ${nodeIp(lab, b)} dev eth0 (same subnet: no tunnel)`,
          );
          continue;
        }
        t.match(r, { dev: m.tunnel, protocol: '81' }, `${a}: ${blk} via ${r?.gateway} dev ${m.tunnel}`);
        t.ok(r?.flags?.includes('onlink'), 'onlink');
        if (m.tunnel === 'tunl0') {
          t.equal(r?.gateway, nodeIp(lab, b), `${a}: the IPIP next hop is ${b}'s underlay address`);
        } else {
          const neigh = execFileSync('ip', ['-n', lab.node(a).netns, 'neigh', 'show', 'dev', 'vxlan.calico'], { encoding: 'utf8' });
          t.match(
            neigh,
            new RegExp(`^${r!.gateway!.replace(/\./g, '\\.')} lladdr 66:[0-9a-f:]+ PERMANENT`, 'm'),
            'permanent neighbour for the remote VTEP',
          );
          const fdb = execFileSync('bridge', ['-n', lab.node(a).netns, 'fdb', 'show', 'dev', 'vxlan.calico'], { encoding: 'utf8' });
          t.match(fdb, new RegExp(`dst ${nodeIp(lab, b).replace(/\./g, '\\.')} `), `FDB entry toward ${b}'s underlay address`);
        }
      }
    }
  });
}
