// BGP policy as FRR sees it: a 2-node tabby lab (real tabby-node processes) and FRR's bgpd (AS 65002,
// 172.31.1.3, its own netns-local config/pid/vty directory, no zebra) in the lab's router namespace,
// a global BGPPeer configured only through Calico resources:
//   - export: BGPFilter `frr-out` prepends 64512 64512 and adds 65002:7 on pool routes — seen in
//     `show bgp ipv4 unicast <block> json`; the service range 10.96.0.0/12 reaches FRR from both nodes
//     until a Reject rule is added to `frr-out`, then it is withdrawn with no session reset on either side;
//   - import: BGPFilter `frr-in` rejects 198.51.100.0/24 that FRR sends — absent from both kernels
//     while FRR's 203.0.113.0/24 is installed via 172.31.1.3 with the metric its setPriority gives
//     (`ip route`: metric 512, then 300 after the filter changes).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import type { PeerStatusJson } from '../../../src/agent/status-types.js';
import { agentLab, labSkipReason, routeTo, until, blockOf, nodeIp, statusOf, tabbyctl } from '../../integration/agent/helpers.js';
import { startFrr, haveFrr, frrConfig } from '../../helpers/frr.js';

const skip = labSkipReason() ?? (haveFrr() ? false : 'FRR not installed (/usr/lib/frr/bgpd, vtysh)');
const FRR_IP = '172.31.1.3';
const REJECTED = '198.51.100.0/24';
const ALLOWED = '203.0.113.0/24';
const SERVICES = '10.96.0.0/12';
const NODES = ['node-1', 'node-2'];

const frrOut = (rejectServices: boolean) => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'BGPFilter',
  metadata: { name: 'frr-out' },
  spec: {
    exportV4: [
      ...(rejectServices ? [{ action: 'Reject', matchOperator: 'In', cidr: SERVICES }] : []),
      {
        action: 'Accept',
        matchOperator: 'In',
        cidr: '10.244.0.0/16',
        operations: [{ prependASPath: { prefix: [64512, 64512] } }, { addCommunity: { value: '65002:7' } }],
      },
    ],
  },
});

const frrIn = (priority: number) => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'BGPFilter',
  metadata: { name: 'frr-in' },
  spec: {
    importV4: [
      { action: 'Reject', matchOperator: 'Equal', cidr: REJECTED },
      { action: 'Accept', matchOperator: 'Equal', cidr: ALLOWED, operations: [{ setPriority: { value: priority } }] },
    ],
  },
});

/** `ip route` lines for one destination in a node (the metric shows there). */
const routeLines = (netns: string, dst: string): string[] =>
  execFileSync('ip', ['-n', netns, 'route', 'show', dst], { encoding: 'utf8' }).split('\n').filter(Boolean);

t.test('BGPFilter export and import as FRR 8 sees them', { skip }, async (t) => {
  const lab = await agentLab(t, 'fr', { nodes: 2, mode: 'routed' });
  t.ok((await lab.waitForBgp(40_000)).ok, 'mesh Established');
  const router = lab.state.routerNetns!;
  execFileSync('ip', ['-n', router, 'addr', 'add', `${FRR_IP}/24`, 'dev', 'r-a']);
  const frr = await startFrr(t, {
    netns: router,
    listen: FRR_IP,
    config: frrConfig({
      asn: 65002,
      routerId: FRR_IP,
      neighbors: NODES.map((n) => ({ address: nodeIp(lab, n), asn: 64512 })),
      networks: [REJECTED, ALLOWED],
    }),
  });

  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const store = new ResourceStore(ds);
  const apply = (doc: object) => store.apply(doc as never);
  await apply(frrIn(512));
  await apply(frrOut(false));
  await apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { serviceClusterIPs: [{ cidr: SERVICES }] },
  });
  await apply({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'frr' },
    spec: { peerIP: FRR_IP, asNumber: 65002, filters: ['frr-in', 'frr-out'] },
  });
  for (const n of NODES) t.ok(await frr.waitEstablished(nodeIp(lab, n), 40_000), `FRR: ${n} Established`);

  await t.test('export operations: prepended AS path and added community in FRR', async (t) => {
    for (const n of NODES) {
      const blk = await blockOf(lab, n);
      const p = await until(async () => (await frr.route(blk)).find((x) => x.peer === nodeIp(lab, n)), 20_000);
      t.ok(p, `FRR has ${blk} from ${n}`);
      t.same(p?.asPath, [64512, 64512, 64512], 'frr-out prepends 64512 64512, then the eBGP prepend of 64512');
      t.same(p?.communities, ['65002:7'], 'the community frr-out adds');
      t.equal(p?.nextHop, nodeIp(lab, n), 'next hop: the node');
    }
    t.ok((await frr.prefixes()).includes(await blockOf(lab, 'node-1')), 'the block is in `show bgp ipv4 unicast json`');
    const svc = await until(async () => {
      const ps = await frr.route(SERVICES);
      return ps.length === 2 ? ps : undefined;
    }, 20_000);
    t.same(svc?.map((p) => p.peer).sort(), NODES.map((n) => nodeIp(lab, n)).sort(), `FRR learned ${SERVICES} from every node`);
    t.same(svc?.[0]?.asPath, [64512], 'outside the filter cidr: default Accept, plain eBGP path');
  });

  await t.test('import filter: the FRR route rejected by frr-in is absent from every kernel', async (t) => {
    for (const n of NODES) {
      const ok = await until(() => routeTo(lab.node(n).netns, ALLOWED), 20_000);
      t.match(ok, { gateway: FRR_IP, protocol: '81' }, `${n}: ${ALLOWED} via ${FRR_IP} in the kernel`);
      t.equal(routeTo(lab.node(n).netns, REJECTED), undefined, `${n}: ${REJECTED} (frr-in importV4[0] Reject) is not in the kernel`);
    }
    // polled: the counts are the speaker's, read through /status (the last read is what is checked)
    let peer: PeerStatusJson | undefined;
    await until(async () => {
      peer = (await statusOf(lab, 'node-1'))?.peers.find((x) => x.address === FRR_IP) ?? peer;
      return peer?.prefixesReceived === 2 && peer.prefixesAccepted === 1;
    }, 20_000);
    t.match(peer, { prefixesReceived: 2, prefixesAccepted: 1 }, 'node status: received 2, accepted 1');
    const rx = await tabbyctl(lab, 'node-1', 'bgp', 'routes', '--peer', FRR_IP, '--received', '-o', 'json');
    const rows = (JSON.parse(rx.stdout) as { routes: { prefix: string; decidedBy: string; state: string }[] }[])[0]!.routes;
    t.match(
      rows.find((r) => r.prefix === REJECTED),
      { state: 'rejected', decidedBy: 'frr-in importV4[0] Reject' },
    );
  });

  await t.test('import setPriority: the kernel route metric, changed live', async (t) => {
    for (const n of NODES) {
      const lines = await until(() => {
        const l = routeLines(lab.node(n).netns, ALLOWED);
        return l.some((x) => / metric 512\b/.test(x)) ? l : undefined;
      }, 20_000);
      t.match(
        lines,
        [new RegExp(`^${ALLOWED.replace(/\./g, '\\.')} via ${FRR_IP.replace(/\./g, '\\.')} dev \\S+ proto 81 metric 512\\b`)],
        `${n}: ip route shows metric 512`,
      );
    }
    await apply(frrIn(300));
    for (const n of NODES) {
      const lines = await until(() => {
        const l = routeLines(lab.node(n).netns, ALLOWED);
        return l.length === 1 && / metric 300\b/.test(l[0]!) ? l : undefined;
      }, 20_000);
      t.ok(lines, `${n}: one route, metric 300 after the filter change (${routeLines(lab.node(n).netns, ALLOWED).join(' | ')})`);
    }
  });

  await t.test('export filter change: FRR loses the service range, no session reset', async (t) => {
    const before = await Promise.all(NODES.map((n) => frr.established(nodeIp(lab, n))));
    const sinceBefore = (await statusOf(lab, 'node-1'))?.peers.find((p) => p.address === FRR_IP)?.since;
    const t0 = process.hrtime.bigint();
    await apply(frrOut(true));
    const gone = await until(async () => ((await frr.route(SERVICES)).length === 0 ? true : undefined), 20_000, 20);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    t.ok(gone, `FRR no longer has ${SERVICES}`);
    t.comment(`export filter change → WITHDRAW seen in FRR from both nodes: ${ms.toFixed(0)} ms (load ${os.loadavg()[0]!.toFixed(1)})`);
    t.ok(ms < 5000, `within 5 s even under load (measured ${ms.toFixed(0)} ms)`);
    t.same(
      await Promise.all(NODES.map((n) => frr.established(nodeIp(lab, n)))),
      before,
      'FRR: no new session (connectionsEstablished unchanged)',
    );
    t.equal((await statusOf(lab, 'node-1'))?.peers.find((p) => p.address === FRR_IP)?.since, sinceBefore, 'tabby: session not reset');
    t.ok((await frr.route(await blockOf(lab, 'node-1'))).length > 0, 'the pool block is still advertised');
  });
});
