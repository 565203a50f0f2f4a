// Dual stack end to end (`lab up --ipv6`): nodes autodetect their IPv6 address (IP6=autodetect,
// IP6_AUTODETECTION_METHOD=interface=^eth0$), pods get an IPv4 and an IPv6 address (a /122 block per
// node), every node has an IPv4 and an IPv6 BGP session to each peer (mesh, then route reflectors), the
// IPv6 blocks are in every kernel via the owner's IPv6 address, pods ping6 each other across nodes,
// and `tabbyctl node status` shows the IPv6 table. VXLAN and CrossSubnet rows: the IPv6 pool over
// vxlan-v6.calico — each remote IPv6 block `via <owner's IPv6 VTEP> dev vxlan-v6.calico onlink` with a
// permanent neighbour and an FDB entry toward the owner's IPv6 address (CrossSubnet: plain via the
// owner inside a subnet), the Node resource carrying ipv6VXLANTunnelAddr and vxlanTunnelMACAddrV6.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { agentLab, labSkipReason, until, tabbyctl, type IpRoute, statusOf } from './helpers.js';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import type { Lab } from '../../../src/lab/lab.js';

const skip = labSkipReason() ?? false;

const routes6Of = (netns: string): IpRoute[] =>
  JSON.parse(execFileSync('ip', ['-j', '-6', '-n', netns, 'route', 'show'], { encoding: 'utf8' })) as IpRoute[];
const node6 = (lab: Lab, node: string): string =>
  `fd00:31:${lab.node(node).subnet === 'b' ? 2 : 1}::${(10 + lab.node(node).ordinal).toString(16)}`;
const sh = (...args: string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8' });
const esc = (s: string): string => s.replace(/[.:]/g, (c) => `\\${c}`);

/** How the IPv6 pool is carried: routed (via the owner on eth0), VXLAN, or CrossSubnet (VXLAN across the router). */
type V6Mode = 'routed' | 'vxlan' | 'crosssubnet';

/** A node's confirmed IPv6 block, from its agent's /status. */
async function block6Of(lab: Lab, node: string): Promise<string> {
  const s = await until(async () => {
    const x = await lab.agentStatus(node);
    return x?.blocks.some((b) => b.state === 'confirmed' && b.cidr.includes(':')) ? x : undefined;
  }, 20_000);
  const b = s?.blocks.find((x) => x.state === 'confirmed' && x.cidr.includes(':'))?.cidr;
  if (!b) throw new Error(`${node} has no confirmed IPv6 block`);
  return b;
}

async function checkDualStack(t: Test, lab: Lab, workers: string[], mode: V6Mode = 'routed'): Promise<void> {
  for (const [i, n] of workers.entries()) await lab.addPod(n, `d${i + 1}`);
  for (const p of lab.pods) t.match(p.ip6, /^fd00:10:244:/, `${p.name} has an IPv6 address from the pool (${p.ip6})`);
  const v4 = await lab.pingMatrix(15_000);
  t.same(
    v4.filter((m) => !m.ok),
    [],
    'IPv4: every pod pings every other pod',
  );
  const pairs = lab.pods.flatMap((a) => lab.pods.filter((b) => b !== a).map((b) => ({ from: a.name, to: b.name, toIp: b.ip6! })));
  const v6 = await lab.pingMatrix(15_000, { pairs });
  t.same(
    v6.filter((m) => !m.ok),
    [],
    'IPv6: every pod pings every other pod (ping6 across nodes)',
  );

  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  const vtep6 = new Map<string, { ip?: string; mac?: string }>();
  try {
    const rs = new ResourceStore(ds);
    for (const n of workers) {
      const node = await rs.get('Node', n);
      t.equal(node?.spec?.bgp?.ipv6Address, `${node6(lab, n)}/64`, `${n}: IPv6 address autodetected on eth0, with its prefix`);
      vtep6.set(n, { ip: node?.spec?.ipv6VXLANTunnelAddr, mac: node?.spec?.vxlanTunnelMACAddrV6 });
      if (mode === 'routed') continue;
      t.match(node?.spec?.ipv6VXLANTunnelAddr, /^fd00:10:244:/, `${n}: Node ipv6VXLANTunnelAddr from the IPv6 pool`);
      t.match(node?.spec?.vxlanTunnelMACAddrV6, /^66(:[0-9a-f]{2}){5}$/, `${n}: Node vxlanTunnelMACAddrV6`);
      t.not(node?.spec?.vxlanTunnelMACAddrV6, node?.spec?.vxlanTunnelMACAddr, `${n}: its IPv6 VTEP MAC is not its IPv4 one`);
      const link = sh('ip', '-d', '-n', lab.node(n).netns, 'link', 'show', 'vxlan-v6.calico');
      t.match(
        link,
        new RegExp(`vxlan id 4096 local ${esc(node6(lab, n))} .*dstport 4789`),
        `${n}: vxlan-v6.calico VNI 4096 over its IPv6 address, port 4789`,
      );
      t.match(link, /mtu 1430/, `${n}: vxlan-v6.calico MTU 1430`);
      t.match(
        sh('ip', '-6', '-n', lab.node(n).netns, 'addr', 'show', 'dev', 'vxlan-v6.calico'),
        new RegExp(`inet6 ${esc(node?.spec?.ipv6VXLANTunnelAddr ?? '?')}/128`),
        `${n}: its IPv6 tunnel address on vxlan-v6.calico`,
      );
    }
  } finally {
    await ds.close();
  }

  for (const a of workers) {
    const ns = lab.node(a).netns;
    for (const b of workers) {
      const blk = await block6Of(lab, b);
      t.match(blk, /\/122$/, `${b}'s IPv6 block is a /122`);
      const r = await until(() => routes6Of(ns).find((x) => x.dst === blk), 10_000);
      if (a === b) {
        t.equal(r?.type, 'blackhole', `${a}: blackhole for its own ${blk}`);
        continue;
      }
      const plain = mode === 'routed' || (mode === 'crosssubnet' && lab.node(a).subnet === lab.node(b).subnet);
      if (plain) {
        t.match(r, { gateway: node6(lab, b), dev: 'eth0', protocol: '81' }, `${a}: ${blk} via ${node6(lab, b)} dev eth0 proto 81`);
        continue;
      }
      const v = vtep6.get(b)!;
      t.match(r, { gateway: v.ip, dev: 'vxlan-v6.calico', protocol: '81' }, `${a}: ${blk} via ${v.ip} dev vxlan-v6.calico proto 81`);
      t.ok(r?.flags?.includes('onlink'), `${a}: onlink`);
      t.match(
        sh('ip', '-6', '-n', ns, 'neigh', 'show', 'dev', 'vxlan-v6.calico'),
        new RegExp(`^${esc(v.ip ?? '?')} lladdr ${v.mac} PERMANENT`, 'm'),
        `${a}: permanent IPv6 neighbour ${v.ip} → ${b}'s IPv6 VTEP MAC`,
      );
      t.match(
        sh('bridge', '-n', ns, 'fdb', 'show', 'dev', 'vxlan-v6.calico'),
        new RegExp(`^${v.mac} dst ${esc(node6(lab, b))} self permanent`, 'm'),
        `${a}: FDB ${v.mac} → ${b}'s IPv6 address`,
      );
    }
  }
}

t.test('dual stack, 3 nodes, full mesh (routed)', { skip }, async (t) => {
  const lab = await agentLab(t, '6m', { nodes: 3, mode: 'routed', ipv6: true });
  const bgp = await lab.waitForBgp(60_000);
  t.ok(bgp.ok, `an IPv4 and an IPv6 session to each peer, all Established (${bgp.pending.join(', ')})`);
  await checkDualStack(t, lab, ['node-1', 'node-2', 'node-3']);

  const st = await tabbyctl(lab, 'node-1', 'node', 'status');
  t.equal(st.code, 0);
  const [, v6part] = st.stdout.split('IPv6 BGP status');
  t.ok(v6part, 'node status has an IPv6 section');
  // the session table, apart from the per-peer prefix counts that follow it
  const [v6sessions = ''] = (v6part ?? '').split('BGP prefixes per peer');
  const rows = v6sessions.split('\n').filter((l) => /^\| fd00:31:1::/.test(l));
  t.same(
    rows.map((r) => r.split('|')[1]!.trim()).sort(),
    [node6(lab, 'node-2'), node6(lab, 'node-3')].sort(),
    'the IPv6 table lists both peers',
  );
  for (const r of rows) t.match(r, /\| node-to-node mesh \| up +\| \d\d:\d\d:\d\d \| Established +\|$/);
});

t.test('dual stack with two route reflectors, mesh off', { skip }, async (t) => {
  const lab = await agentLab(t, '6r', { nodes: 2, mode: 'routed', routeReflectors: 2, ipv6: true });
  t.ok((await lab.waitForBgp(60_000)).ok, 'every node Established with both RRs over IPv4 and IPv6');
  for (const n of ['node-1', 'node-2']) {
    const s = await statusOf(lab, n);
    const want = ['rr-1', 'rr-2'].flatMap((r) => [lab.node(r).address.split('/')[0]!, node6(lab, r)]).sort();
    t.same(s?.peers.map((p) => p.address).sort(), want, `${n}: IPv4 and IPv6 sessions only with the route reflectors`);
  }
  await checkDualStack(t, lab, ['node-1', 'node-2']);
});

// VXLAN over IPv6 and CrossSubnet for the IPv6 pool (IPv4 pool in the same mode alongside).
for (const [mode, tag] of [
  ['vxlan', '6v'],
  ['crosssubnet', '6x'],
] as const) {
  t.test(`dual stack, 3 nodes, --mode ${mode}: the IPv6 pool over vxlan-v6.calico`, { skip }, async (t) => {
    const lab = await agentLab(t, tag, {
      nodes: 3,
      mode,
      ipv6: true,
      ...(mode === 'crosssubnet' ? { crossSubnetEncap: 'vxlan' as const } : {}),
    });
    t.ok((await lab.waitForBgp(60_000)).ok, 'an IPv4 and an IPv6 session to each peer, all Established');
    if (mode === 'crosssubnet') t.not(lab.node('node-1').subnet, lab.node('node-2').subnet, 'node-2 is across the router');
    await checkDualStack(t, lab, ['node-1', 'node-2', 'node-3'], mode);
    for (const n of ['node-1', 'node-2', 'node-3'])
      t.same((await statusOf(lab, n))?.exports, [], `${n}: neither VXLAN pool's blocks are announced over BGP`);
  });
}
