// BFD with a real BIRD 2 (`protocol bfd` + `bfd on` in its BGP protocol) as a global BGPPeer of a
// one-node tabby lab: both ends see the BFD session Up (`birdc show bfd sessions`, tabby's status and
// metrics-facing JSON); then BFD packets alone are dropped in the router (nft, BGP's TCP still flows):
// tabby declares BFD Down in ~3 × 300 ms and takes the BGP session down at once (RFC 5882) — the
// ToR route leaves the node's kernel long before any hold timer — and BIRD does the same on its side.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, routeTo, until, nodeIp, tabbyctl, statusOf } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';
import { hasProgram } from '../../helpers/netns.js';

const skip = labSkipReason() ?? (haveBird() ? (hasProgram('nft') ? false : 'nft not installed') : 'bird2 not installed (bird, birdc)');
const TOR = '198.51.100.0/24';

t.test('BFD with BIRD 2: Up both ways; BFD loss takes BGP and the route down in about a second', { skip }, async (t) => {
  const lab = await agentLab(t, 'bfd', { nodes: 1, mode: 'routed' });
  const routerIp = '172.31.1.1';
  const node = nodeIp(lab, 'node-1');
  const routerNs = lab.state.routerNetns!;
  const bird = await startBird(t, {
    netns: routerNs,
    config: `router id ${routerIp};
protocol device {}
protocol static tor { ipv4; route ${TOR} blackhole; }
protocol bfd { interface "*" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; }; }
protocol bgp tabby {
  local ${routerIp} as 65000;
  neighbor ${node} as 64512;
  direct;
  bfd on;
  hold time 90;
  connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv4 { import all; export where proto = "tor"; };
}
`,
  });
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  try {
    await new ResourceStore(ds).create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: routerIp, asNumber: 65000, bfd: { transmitInterval: '300ms', receiveInterval: '300ms', detectMultiplier: 3 } },
    } as never);
  } finally {
    await ds.close();
  }

  t.ok(await bird.waitEstablished('tabby', 30_000), 'BIRD: BGP Established');
  const birdUp = await until(async () => {
    const out = await bird.birdc('show bfd sessions');
    return /\bUp\b/.test(out) && out.includes(node) ? out : undefined;
  }, 20_000);
  t.ok(birdUp, `BIRD sees the BFD session Up:\n${birdUp ?? ''}`);
  const tabbyUp = await until(async () => {
    const p = (await lab.agentStatus('node-1'))?.peers.find((x) => x.address === routerIp);
    return p?.bfd?.state === 'Up' ? p : undefined;
  }, 20_000);
  t.ok(tabbyUp, 'tabby: BFD Up in /status');
  t.ok(
    await until(async () => (await tabbyctl(lab, 'node-1', 'node', 'status')).stdout.includes('(BFD Up)'), 20_000),
    'tabbyctl node status shows BFD Up',
  );
  t.ok(await until(() => routeTo(lab.node('node-1').netns, TOR), 15_000), `${TOR} in the node's kernel`);
  // Fast timers negotiated (the Poll Sequence after Up): detection 3 × 300 ms.
  t.ok(
    await until(
      async () => (await lab.agentStatus('node-1'))?.peers.find((x) => x.address === routerIp)?.bfd?.detectionTimeMs === 900,
      10_000,
    ),
    'detection time 900 ms',
  );

  // Drop BFD only (UDP 3784) in the router, silently: BGP's TCP session would live for its hold time.
  execFileSync('ip', ['netns', 'exec', routerNs.replace(/^\/var\/run\/netns\//, ''), 'nft', '-f', '-'], {
    input:
      'table inet tabbytestbfd {\n chain input { type filter hook input priority 0; udp dport 3784 drop; }\n chain output { type filter hook output priority 0; udp dport 3784 drop; }\n}\n',
  });
  const cut = Date.now();
  const gone = await until(() => !routeTo(lab.node('node-1').netns, TOR), 10_000, 20);
  const ms = Date.now() - cut;
  t.ok(gone, `route gone from the node's kernel ${ms} ms after BFD stopped (hold time 90 s)`);
  t.ok(ms < 5000, `well under the hold time: ${ms} ms`);
  process.stdout.write(
    `# BFD with BIRD 2: BFD packets dropped → ${TOR} gone from the node's kernel in ${ms} ms (300 ms × 3; BGP hold time 90 s)\n`,
  );
  // Both ends detect at ~900 ms; BIRD may close the BGP session a moment before tabby's own detection.
  // The BGP session is closed on the BFD event, a moment after BFD's own state changes: wait for both.
  const st = await until(async () => {
    const p = (await lab.agentStatus('node-1'))?.peers.find((x) => x.address === routerIp);
    return p?.bfd?.state === 'Down' && p.state !== 'Established' ? p : undefined;
  }, 5_000);
  t.match(st?.bfd, { state: 'Down', diag: 'Control Detection Time Expired' }, 'tabby: BFD Down, detection time expired');
  t.not(st?.state, 'Established', 'tabby: BGP session taken down by BFD');
  // While BFD stays Down the session stays down (BGP's own TCP path still works): no reconnect, no route.
  let flapped = '';
  const watchUntil = Date.now() + 3_000;
  while (Date.now() < watchUntil && !flapped) {
    const p = (await lab.agentStatus('node-1'))?.peers.find((x) => x.address === routerIp);
    if (p?.state === 'Established') flapped = 'Established';
    else if (routeTo(lab.node('node-1').netns, TOR)) flapped = `route to ${TOR} back`;
    else if (p && p.state !== 'Idle') t.comment(`tabby: ${p.state} (${p.info})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(flapped, '', 'tabby: held while BFD is Down — no Established session, no route, for 3 s');
  t.match(
    (await statusOf(lab, 'node-1'))?.peers.find((x) => x.address === routerIp)?.info,
    /BFD session Down: not connecting until BFD is Up again/,
    'status says why it is not connecting',
  );
  t.ok(
    await until(async () => !(await bird.birdc('show protocols tabby')).includes('Established'), 10_000),
    'BIRD: its BGP session went down too (its own BFD)',
  );

  // Heal: BFD back Up, BGP re-established, the route returns.
  execFileSync('ip', ['netns', 'exec', routerNs.replace(/^\/var\/run\/netns\//, ''), 'nft', 'delete', 'table', 'inet', 'tabbytestbfd']);
  t.ok(await until(() => routeTo(lab.node('node-1').netns, TOR), 40_000), 'route back after the path heals');
  t.equal((await statusOf(lab, 'node-1'))?.peers.find((x) => x.address === routerIp)?.bfd?.state, 'Up');
});
