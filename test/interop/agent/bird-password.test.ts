// A BGPPeer password from a secret against a real BIRD 2 with `password`: tabby-node reads
// $TABBY_SECRETS_DIR/<name>/<key>. Missing secret → no session at all (node status INFO and readiness
// say so), wrong secret → no session (TCP-MD5 drops the segments), right secret → Established and
// routes both ways; rotating the key on both ends brings the session back with the new one.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, until, blockOf, nodeIp, tabbyctl, run, statusOf } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';

const skip = labSkipReason() ?? (haveBird() ? false : 'bird2 not installed (bird, birdc)');

t.test('BGPPeer password from a secret with BIRD 2: Established only with the right key', { skip }, async (t) => {
  const secrets = `/tmp/tb${run}agpw-secrets`;
  fs.rmSync(secrets, { recursive: true, force: true });
  t.teardown(() => fs.rmSync(secrets, { recursive: true, force: true }));
  const write = (value: string): void => {
    fs.mkdirSync(path.join(secrets, 'bgp-passwords'), { recursive: true });
    fs.writeFileSync(path.join(secrets, 'bgp-passwords', 'tor'), value);
  };
  const lab = await agentLab(t, 'pw', { nodes: 1, mode: 'routed', agentEnv: { TABBY_SECRETS_DIR: secrets } });
  const routerIp = '172.31.1.1';
  const node = nodeIp(lab, 'node-1');
  const birdConf = (password: string): string => `router id ${routerIp};
protocol device {}
protocol bgp tor {
  local ${routerIp} as 65000;
  neighbor ${node} as 64512;
  direct;
  password "${password}";
  connect delay time 1; connect retry time 1; error wait time 1,2;
  ipv4 { import all; export none; };
}
`;
  const bird = await startBird(t, { netns: lab.state.routerNetns!, config: birdConf('right-key') });
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  try {
    await new ResourceStore(ds).create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { peerIP: routerIp, asNumber: 65000, password: { secretKeyRef: { name: 'bgp-passwords', key: 'tor' } } },
    } as never);
  } finally {
    await ds.close();
  }

  // 1. No secret: the peer is never connected; status and readiness name the secret.
  const info = await until(async () => {
    const st = await lab.agentStatus('node-1');
    return st?.peers.find((p) => p.address === routerIp && /not found/.test(p.info));
  }, 20_000);
  t.match(info?.info, /^password secret bgp-passwords\/tor not found/, 'status INFO: password secret bgp-passwords/tor not found');
  const ready = await statusOf(lab, 'node-1');
  t.ok(
    ready?.readiness.reasons.some((r) => r.includes(`BGP not established with ${routerIp}: password secret bgp-passwords/tor not found`)),
    'readiness reason',
  );
  const st = await tabbyctl(lab, 'node-1', 'node', 'status');
  t.match(st.stdout, /password secret bgp-passwords\/tor not found/, 'tabbyctl node status shows it');
  t.notOk(await bird.waitEstablished('tor', 5_000), 'BIRD: no session without the secret');

  // 2. Wrong secret: MD5 mismatch, no session.
  write('wrong-key\n');
  t.notOk(await bird.waitEstablished('tor', 8_000), 'BIRD: no session with a wrong key');
  const wrong = await statusOf(lab, 'node-1');
  t.not(wrong?.peers.find((p) => p.address === routerIp)?.state, 'Established', 'tabby: not Established with a wrong key');

  // 3. Right secret (picked up without a restart): Established, routes flow.
  write('right-key\n');
  t.ok(await bird.waitEstablished('tor', 30_000), 'BIRD: Established with the right key');
  const blk = await blockOf(lab, 'node-1');
  t.ok(await until(async () => (await bird.birdc(`show route ${blk}`)).includes(blk), 15_000), `BIRD learned ${blk} over the MD5 session`);

  // 4. Rotation on both ends: the session comes back with the new key.
  await bird.reconfigure(birdConf('rotated-key'));
  write('rotated-key');
  t.ok(
    await until(async () => {
      const p = (await lab.agentStatus('node-1'))?.peers.find((x) => x.address === routerIp);
      return p?.state === 'Established' && (await bird.birdc('show protocols tor')).includes('Established');
    }, 40_000),
    'Established again after rotating the key on both ends',
  );
});
