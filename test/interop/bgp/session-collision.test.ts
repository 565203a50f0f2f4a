// Connection collision (RFC 4271 §6.8): both sides dial at once; exactly one session (one TCP
// connection) survives — two tabby speakers, and tabby with BIRD 2.
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { BgpListener, BgpSession } from '../../../src/bgp/session.js';
import { haveBird, startBird } from '../../helpers/bird.js';
import { isRoot, makeNsPair, waitFor } from '../../helpers/netns.js';

const skip = !isRoot() ? 'needs root (netns)' : false;

/** Established TCP connections on port 179 in a netns. */
function bgpConnections(ns: string): number {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'ss', '-Htn', 'state', 'established', '( sport = :179 or dport = :179 )'], {
    encoding: 'utf8',
  });
  return out.split('\n').filter((l) => l.trim()).length;
}

t.test('two tabby speakers, both active, started at the same time', { skip, timeout: 60_000 }, async (t) => {
  const pair = makeNsPair(t, 'co', { a4: ['10.81.0.1/24'], b4: ['10.81.0.2/24'] });
  const la = new BgpListener({ address: '0.0.0.0', port: 179, netns: pair.a.path });
  const lb = new BgpListener({ address: '0.0.0.0', port: 179, netns: pair.b.path });
  await la.start();
  await lb.start();
  t.teardown(() => la.stop());
  t.teardown(() => lb.stop());
  const common = { localAsn: 65000, peerAsn: 65000, holdTime: 9, connectRetryTime: 1, idleHoldTime: 1 };
  const a = new BgpSession({ ...common, address: '10.81.0.2', localAddress: '10.81.0.1', routerId: '10.81.0.1', netns: pair.a.path });
  const b = new BgpSession({ ...common, address: '10.81.0.1', localAddress: '10.81.0.2', routerId: '10.81.0.2', netns: pair.b.path });
  la.add(a);
  lb.add(b);
  t.teardown(() => a.stop());
  t.teardown(() => b.stop());
  let ups = 0;
  let downs = 0;
  let collisions = 0;
  for (const s of [a, b]) {
    s.on('established', () => ups++);
    s.on('down', () => downs++);
    s.on('collision', () => collisions++);
  }
  for (let round = 0; round < 3; round++) {
    ups = 0;
    downs = 0;
    a.start();
    b.start();
    t.ok(await waitFor(() => a.established && b.established, 10_000), `round ${round}: both Established`);
    // The losing connection closes (Cease 6/7, FIN); then exactly one remains.
    await waitFor(() => bgpConnections(pair.a.name) === 1, 15_000);
    await new Promise((r) => setTimeout(r, 300));
    t.equal(bgpConnections(pair.a.name), 1, `round ${round}: exactly one TCP connection`);
    t.equal(ups, 2, `round ${round}: one 'up' per side`);
    t.equal(downs, 0, `round ${round}: no flap`);
    a.stop();
    b.stop();
    await waitFor(() => bgpConnections(pair.a.name) === 0, 15_000);
  }
  t.ok(collisions > 0, `collisions really happened and were resolved (${collisions} over 3 rounds)`);
});

t.test('tabby and BIRD 2, both active', { skip: skip || (!haveBird() ? 'needs bird2' : false), timeout: 60_000 }, async (t) => {
  const pair = makeNsPair(t, 'cb', { a4: ['10.82.0.1/24'], b4: ['10.82.0.2/24'] });
  const la = new BgpListener({ address: '0.0.0.0', port: 179, netns: pair.a.path });
  await la.start();
  t.teardown(() => la.stop());
  const s = new BgpSession({
    address: '10.82.0.2',
    localAddress: '10.82.0.1',
    localAsn: 65000,
    peerAsn: 65000,
    routerId: '10.82.0.1',
    holdTime: 9,
    connectRetryTime: 1,
    idleHoldTime: 1,
    netns: pair.a.path,
  });
  la.add(s);
  t.teardown(() => s.stop());
  let ups = 0;
  s.on('established', () => ups++);
  const bird = await startBird(t, {
    netns: pair.b.name,
    config: `
router id 10.82.0.2;
protocol device {}
protocol bgp tabby { local 10.82.0.2 as 65000; neighbor 10.82.0.1 as 65000; hold time 9; connect delay time 1; connect retry time 1; error wait time 1,2; ipv4 { import all; export none; }; }
`,
  });
  // BIRD dials after its 1 s connect delay; so do we (start now + 1 s retry after the first try).
  await new Promise((r) => setTimeout(r, 900));
  s.start();
  t.ok(await bird.waitEstablished('tabby', 15_000), 'BIRD Established');
  t.ok(await waitFor(() => s.established, 15_000), 'tabby Established');
  await waitFor(() => bgpConnections(pair.a.name) === 1, 15_000);
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(bgpConnections(pair.a.name), 1, 'exactly one TCP connection');
  t.equal(ups, 1, 'tabby came up once (no flap)');
  t.match(await bird.protocolState('tabby'), /Established/, 'still Established');
});
