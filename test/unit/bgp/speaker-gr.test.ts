// Graceful restart (RFC 4724) over the in-memory transport: helper keeps a dropped peer's routes
// stale (no withdrawal), sweeps what the restarted peer did not re-announce after its End-of-RIB;
// restart time expiry; the restarting side defers best-path output until its peers' End-of-RIB.
import t from 'tap';
import { MemHub, memSpeaker, until, type MemSession } from './speaker-harness.js';
import { VirtualClock } from '../../../src/bgp/clock.js';
import type { BestRouteEvent } from '../../../src/bgp/speaker.js';

const gr = { restartTime: 120 };
const peer = (address: string) => ({ address, asn: 65000, families: ['ipv4' as const] });

t.test('helper keeps stale routes, restarted peer re-announces, stale swept after End-of-RIB', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1', gracefulRestart: gr });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '2.2.2.2', gracefulRestart: gr });
  a.addPeer(peer('10.0.0.2'));
  b.addPeer(peer('10.0.0.1'));
  b.originate('192.168.2.0/26');
  for (const p of ['192.168.1.0/26', '192.168.1.64/26', '192.168.1.128/26']) a.originate(p);
  await a.start();
  await b.start();
  await until(() => b.locRib().size === 4 && a.locRib().size === 4, 5000, 'routes exchanged');
  const withdrawn: string[] = [];
  const best: BestRouteEvent[] = [];
  b.on('withdrawn', (e: { prefix: string }) => withdrawn.push(e.prefix));
  b.on('best', (e: BestRouteEvent) => best.push(e));

  // kill -9 of a: the connection just drops.
  (hub.sessions.get('10.0.0.1>10.0.0.2') as MemSession).kill();
  await a.stop({ graceful: true });
  await until(() => b.peers()[0]!.state !== 'Established', 5000, 'b sees the drop');
  t.equal(b.peers()[0]!.prefixesStale, 3, 'three routes kept stale');
  t.equal(b.locRib().size, 4, 'nothing withdrawn');
  t.equal(b.locRib().get('192.168.1.0/26')?.stale, true, 'marked stale, still best');
  t.same(withdrawn, []);

  // a comes back (restarting), re-announces two of its three routes.
  const a2 = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1', gracefulRestart: { ...gr, restarting: true } });
  a2.addPeer(peer('10.0.0.2'));
  a2.originate('192.168.1.0/26');
  a2.originate('192.168.1.64/26');
  const a2best: string[] = [];
  let deferredWhenLearned: boolean | undefined;
  a2.on('best', (e: BestRouteEvent) => {
    a2best.push(e.prefix);
    if (e.prefix === '192.168.2.0/26') deferredWhenLearned = a2.deferringBestPath;
  });
  t.teardown(() => Promise.all([a2.stop(), b.stop()]));
  await a2.start();
  t.equal(a2.deferringBestPath, true, 'restarting: best-path output deferred');
  t.same(a2best, [], 'no best-route event while deferring');
  await until(() => withdrawn.length === 1, 5000, 'stale route swept');
  t.same(withdrawn, ['192.168.1.128/26'], 'only the route not re-announced is withdrawn, after End-of-RIB');
  t.equal(b.peers()[0]!.prefixesStale, 0);
  t.equal(b.locRib().get('192.168.1.0/26')?.stale, false, 're-announced route no longer stale');
  t.equal(a2.deferringBestPath, false, "deferral ended with the peer's End-of-RIB");
  t.equal(deferredWhenLearned, false, 'peer route reported only after the deferral');
  t.ok(a2best.includes('192.168.2.0/26') && a2best.includes('192.168.1.0/26'));
  t.equal(best.filter((e) => e.prefix === '192.168.1.0/26').length, 0, 'no flap of the re-announced routes at b (same attributes)');
});

t.test('helper: stale routes removed when the restart time runs out', async (t) => {
  const hub = new MemHub();
  const clock = new VirtualClock();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1', gracefulRestart: { restartTime: 30 } });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '2.2.2.2', gracefulRestart: gr, clock });
  a.addPeer(peer('10.0.0.2'));
  b.addPeer(peer('10.0.0.1'));
  a.originate('192.168.1.0/26');
  await a.start();
  await b.start();
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await until(() => b.locRib().size === 1, 5000, 'learned');
  (hub.sessions.get('10.0.0.1>10.0.0.2') as MemSession).kill();
  await until(() => b.peers()[0]!.prefixesStale === 1, 5000, 'stale');
  clock.advance(29_000);
  t.equal(b.locRib().size, 1, "kept within the peer's restart time (30 s)");
  clock.advance(2_000);
  t.equal(b.locRib().size, 0, 'gone after it');
});

t.test('without graceful restart, or after a NOTIFICATION, routes go at once', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1' });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '2.2.2.2', gracefulRestart: gr });
  a.addPeer(peer('10.0.0.2'));
  b.addPeer(peer('10.0.0.1'));
  a.originate('192.168.1.0/26');
  await a.start();
  await b.start();
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await until(() => b.locRib().size === 1, 5000, 'learned');
  (hub.sessions.get('10.0.0.1>10.0.0.2') as MemSession).kill();
  await until(() => b.locRib().size === 0, 5000, 'removed: peer had no GR capability');
  t.pass('removed');
});

t.test('resetPeer (BFD down, RFC 5882): routes removed at once despite graceful restart, Cease 6/10, session restarted', async (t) => {
  const hub = new MemHub();
  const a = memSpeaker(hub, '10.0.0.1', { asn: 65000, routerId: '1.1.1.1', gracefulRestart: gr });
  const b = memSpeaker(hub, '10.0.0.2', { asn: 65000, routerId: '2.2.2.2', gracefulRestart: gr });
  a.addPeer(peer('10.0.0.2'));
  b.addPeer(peer('10.0.0.1'));
  a.originate('192.168.1.0/26');
  await a.start();
  await b.start();
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await until(() => b.locRib().size === 1, 5000, 'route learned');
  const withdrawn: string[] = [];
  b.on('withdrawn', (e) => withdrawn.push(e.prefix));
  const infos: string[] = [];
  b.on('peer', (e) => infos.push(`${e.state}: ${e.info}`));
  const stops: unknown[] = [];
  const s = hub.sessions.get('10.0.0.2>10.0.0.1') as MemSession;
  const stop = s.stop.bind(s);
  s.stop = (c) => {
    stops.push(c);
    stop(c);
  };
  t.equal(b.resetPeer('10.0.0.1', 'BFD session down (Control Detection Time Expired)'), true);
  t.same(withdrawn, ['192.168.1.0/26'], 'withdrawn at once: no stale retention for a detected failure');
  t.equal(b.peers()[0]!.prefixesStale, 0);
  t.same(stops, [{ subcode: 10 }], 'Cease 6/10 BFD Down (RFC 9384)');
  t.ok(infos.includes('Active: BFD session down (Control Detection Time Expired)'), "the reason is the peer's state info");
  await until(() => b.peers()[0]!.state === 'Established' && b.locRib().size === 1, 5000, 'a new session comes up and the route returns');
  t.equal(b.resetPeer('10.9.9.9', 'x'), false, 'unknown peer');
});
