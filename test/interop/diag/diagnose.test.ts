// `tabbyctl bgp diagnose` names the broken step when a session is broken on purpose, in netns with
// real processes: a real BIRD 2 in the lab's router namespace as a node-specific BGPPeer of node-1
// (AS mismatch, then a TCP-MD5 password on BIRD's side only, then a different password on each side,
// then BIRD gone), and a mesh peer whose
// tabby-node stops (the passive side says who to ask). Each case: the cause, the fix, the exit code.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { openDatastore } from '../../../src/datastore/index.js';
import { ResourceStore } from '../../../src/datastore/resources.js';
import { agentLab, labSkipReason, nodeIp, tabbyctl, until, run } from '../../integration/agent/helpers.js';
import { startBird, haveBird } from '../../helpers/bird.js';
import type { Lab } from '../../../src/lab/lab.js';

const skip = labSkipReason() ?? (haveBird() ? false : 'bird2 not installed (bird, birdc)');
const ROUTER = '172.31.1.1';

interface DiagJson {
  peers: {
    peer: string;
    cause: string;
    summary: string;
    fix: string;
    history: { kind: string; code?: number; subcode?: number; sent?: boolean }[];
  }[];
}

async function diagnose(
  lab: Lab,
  node: string,
  peer: string,
): Promise<{ code: number | null; json?: DiagJson['peers'][number]; text: string }> {
  const j = await tabbyctl(lab, node, 'bgp', 'diagnose', peer, '-o', 'json');
  const text = await tabbyctl(lab, node, 'bgp', 'diagnose', peer);
  let json: DiagJson['peers'][number] | undefined;
  try {
    json = (JSON.parse(j.stdout) as DiagJson).peers[0];
  } catch {
    /* reported by the assertions */
  }
  return { code: j.code, json, text: text.stdout + text.stderr };
}

/** Poll diagnose until the peer's cause is `cause` (sessions take a few seconds to fail). */
async function waitCause(lab: Lab, node: string, peer: string, cause: string, ms: number): Promise<Awaited<ReturnType<typeof diagnose>>> {
  let last = await diagnose(lab, node, peer);
  await until(
    async () => {
      last = await diagnose(lab, node, peer);
      return last.json?.cause === cause ? true : undefined;
    },
    ms,
    1000,
  );
  return last;
}

const birdConf = (node1: string, extra = ''): string => `router id ${ROUTER};
protocol device {}
protocol bgp tabby1 {
  local ${ROUTER} as 65000;
  neighbor ${node1} as 64512;
  direct;
  ${extra}
  ipv4 { import all; export none; };
}
`;

t.test('bgp diagnose names the broken step', { skip, timeout: 300_000 }, async (t) => {
  const secrets = `/tmp/tb${run}dg-secrets`;
  fs.rmSync(secrets, { recursive: true, force: true });
  fs.mkdirSync(path.join(secrets, 'bgp-passwords'), { recursive: true });
  t.teardown(() => fs.rmSync(secrets, { recursive: true, force: true }));
  const lab = await agentLab(t, 'dg', { nodes: 2, mode: 'routed', agentEnv: { TABBY_SECRETS_DIR: secrets } });
  t.ok((await lab.waitForBgp(60_000)).ok, 'mesh Established');
  const n1 = nodeIp(lab, 'node-1');
  const bird = await startBird(t, { netns: lab.state.routerNetns!, config: birdConf(n1) });
  const ds = await openDatastore({ type: 'file', dir: lab.state.datastoreDir });
  t.teardown(() => ds.close());
  const rs = new ResourceStore(ds);

  await t.test('AS mismatch: the BGPPeer says 65001, BIRD is AS 65000', async (t) => {
    await rs.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: { node: 'node-1', peerIP: ROUTER, asNumber: 65001 },
    } as never);
    const d = await waitCause(lab, 'node-1', ROUTER, 'as-mismatch', 40_000);
    t.equal(d.json?.cause, 'as-mismatch', d.text);
    t.match(d.json?.summary, /another AS than configured here \(expected AS 65001\)/);
    t.ok(
      d.json?.history.some((e) => e.kind === 'notification' && e.code === 2 && e.subcode === 2 && e.sent),
      'the 2/2 NOTIFICATION we sent is in the history',
    );
    t.match(d.text, /NOTIFICATION sent: 2\/2 Bad peer AS/);
    t.equal(d.code, 1, 'exit 1 while the session is not up');
  });

  await t.test('fixed: Established, exit 0', async (t) => {
    const cur = await rs.get('BGPPeer', 'tor');
    await rs.update({ ...cur!, spec: { ...cur!.spec, asNumber: 65000 } } as never);
    await bird.birdc('restart tabby1'); // BIRD holds off a peer that sent it an error; start it at once
    t.ok(await bird.waitEstablished('tabby1', 40_000), 'BIRD: Established');
    const d = await waitCause(lab, 'node-1', ROUTER, 'established', 20_000);
    t.equal(d.json?.cause, 'established');
    t.equal(d.code, 0);
  });

  await t.test('TCP-MD5 on one side only: timeouts, and diagnose says a key mismatch looks like this', async (t) => {
    await bird.reconfigure(birdConf(n1, 'password "s3cret";'));
    await bird.birdc('restart tabby1');
    const d = await waitCause(lab, 'node-1', ROUTER, 'tcp-timeout', 90_000);
    t.equal(d.json?.cause, 'tcp-timeout', d.text);
    t.match(d.json?.summary, /TCP-MD5 password \(and this side none\), it looks exactly like this/);
    t.equal(d.code, 1);
  });

  await t.test('TCP-MD5 on both sides with different keys: timeouts, and diagnose names the key mismatch', async (t) => {
    // BIRD still has "s3cret"; tabby gets another key from its secret.
    fs.writeFileSync(path.join(secrets, 'bgp-passwords', 'tor'), 'not-the-same\n');
    const cur = await rs.get('BGPPeer', 'tor');
    await rs.update({
      ...cur!,
      spec: { ...cur!.spec, password: { secretKeyRef: { name: 'bgp-passwords', key: 'tor' } } },
    } as never);
    const d = await until(
      async () => {
        const x = await diagnose(lab, 'node-1', ROUTER);
        return x.json?.cause === 'tcp-timeout' && /TCP-MD5 is configured for this peer/.test(x.json.summary) ? x : undefined;
      },
      90_000,
      1000,
    );
    t.ok(d, 'tcp-timeout with the MD5 sentence for a configured key');
    t.match(d?.json?.summary, /TCP-MD5 is configured for this peer: a key mismatch, or a key on one side only, looks exactly like this/);
    t.match(d?.json?.fix, /make the TCP-MD5 password the same on both sides/);
    t.equal(d?.code, 1);
    t.notOk(await bird.waitEstablished('tabby1', 3_000), 'BIRD: no session with different keys');
    // The same key on both sides: Established, exit 0 (and the password off again for the next case).
    fs.writeFileSync(path.join(secrets, 'bgp-passwords', 'tor'), 's3cret\n');
    await bird.birdc('restart tabby1');
    t.ok(await bird.waitEstablished('tabby1', 60_000), 'BIRD: Established with the same key');
    const ok = await waitCause(lab, 'node-1', ROUTER, 'established', 20_000);
    t.equal(ok.code, 0, ok.text);
    const now = (await rs.get('BGPPeer', 'tor'))!;
    const { password: _key, ...spec } = now.spec as { password?: unknown };
    await rs.update({ ...now, spec } as never);
  });

  await t.test('peer down: connection refused', async (t) => {
    await bird.kill();
    const d = await waitCause(lab, 'node-1', ROUTER, 'connection-refused', 40_000);
    t.equal(d.json?.cause, 'connection-refused', d.text);
    t.match(d.json?.summary, /refuses TCP port 179/);
  });

  await t.test("a mesh peer's tabby-node stops: the active side sees refused, the passive side says who to ask", async (t) => {
    await rs.delete('BGPPeer', 'tor');
    await lab.stopAgent('node-2', { signal: 'SIGTERM' });
    // node-1 (172.31.1.11) is passive toward node-2 (172.31.1.12): lower address waits.
    const d = await waitCause(lab, 'node-1', 'node-2', 'waiting-passive', 30_000);
    t.equal(d.json?.cause, 'waiting-passive', d.text);
    t.match(d.json?.summary, /dropped at .* without a NOTIFICATION/);
    t.match(d.json?.fix, /diagnose on node-2/);
    const unknown = await tabbyctl(lab, 'node-1', 'bgp', 'diagnose', 'node-9');
    t.equal(unknown.code, 1);
    t.match(unknown.stderr, /no BGP peer "node-9" on node-1 \(peers: 172\.31\.1\.12 \(node-2\)\)/);
  });
});
