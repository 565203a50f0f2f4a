// Two BgpSpeakers over real TCP on loopback (127.0.0.1 ↔ 127.0.0.2, an unprivileged port), through
// The TCP transport (tcpSessions over session.ts) end to end — OPEN, UPDATE, End-of-RIB, withdraw, graceful stop.
import t from 'tap';
import { BgpSpeaker, tcpSessions, type BestRouteEvent } from '../../../src/bgp/index.js';
import { until } from './speaker-harness.js';
import { native } from '../../../src/native/index.js';
import type { Socket } from 'node:net';
import { encodeKeepalive } from '../../../src/bgp/codec/message.js';

const haveNative = ((): boolean => {
  try {
    native();
    return true;
  } catch {
    return false;
  }
})();

const port = 20000 + (process.pid % 20000);

t.test('two speakers over loopback TCP', { skip: haveNative ? false : 'native addon not built (npm ci)' }, async (t) => {
  const a = new BgpSpeaker({ sessions: tcpSessions(), asn: 65000, routerId: '10.255.0.1', listenAddress: '127.0.0.1', listenPort: port });
  const b = new BgpSpeaker({ sessions: tcpSessions(), asn: 65000, routerId: '10.255.0.2', listenAddress: '127.0.0.2', listenPort: port });
  a.addPeer({ address: '127.0.0.2', asn: 65000, localAddress: '127.0.0.1', port, families: ['ipv4'] });
  b.addPeer({ address: '127.0.0.1', asn: 65000, localAddress: '127.0.0.2', port, families: ['ipv4'], passive: true });
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  await a.start();
  await b.start();
  await until(() => a.peers()[0]!.state === 'Established' && b.peers()[0]!.state === 'Established', 20000, 'Established');
  t.equal(a.peers()[0]!.info, 'Established');
  const got: BestRouteEvent[] = [];
  b.on('best', (e: BestRouteEvent) => got.push(e));
  for (let i = 0; i < 1000; i++) a.originate(`10.${i >> 8}.${i & 255}.0/24`);
  await until(() => b.locRib().size === 1000, 10000, '1000 routes');
  t.same(b.locRib().get('10.0.5.0/24')?.nextHops, ['127.0.0.1'], 'next hop self = our session address');
  t.equal(got.length, 1000);
  a.withdraw('10.0.5.0/24');
  await until(() => b.locRib().size === 999, 5000, 'withdrawn');
  t.equal(b.peers()[0]!.prefixesReceived, 999);
});

t.test(
  'graceful stop over TCP: the peer keeps our routes stale (no NOTIFICATION)',
  { skip: haveNative ? false : 'native addon not built (npm ci)' },
  async (t) => {
    const p2 = port + 1;
    const gr = { restartTime: 120 };
    const a = new BgpSpeaker({
      sessions: tcpSessions(),
      asn: 65000,
      routerId: '10.255.0.1',
      listenAddress: '127.0.0.1',
      listenPort: p2,
      gracefulRestart: gr,
    });
    const b = new BgpSpeaker({
      sessions: tcpSessions(),
      asn: 65000,
      routerId: '10.255.0.2',
      listenAddress: '127.0.0.2',
      listenPort: p2,
      gracefulRestart: gr,
    });
    a.addPeer({ address: '127.0.0.2', asn: 65000, localAddress: '127.0.0.1', port: p2, families: ['ipv4'] });
    b.addPeer({ address: '127.0.0.1', asn: 65000, localAddress: '127.0.0.2', port: p2, families: ['ipv4'], passive: true });
    t.teardown(async () => {
      await a.stop();
      await b.stop();
    });
    await a.start();
    await b.start();
    a.originate('10.9.0.0/24');
    await until(() => b.locRib().size === 1, 20000, 'route at b');
    const withdrawn: string[] = [];
    b.on('withdrawn', (e: { prefix: string }) => withdrawn.push(e.prefix));
    await a.stop({ graceful: true });
    await until(() => b.peers()[0]!.state !== 'Established', 10000, 'b sees the close');
    t.equal(b.peers()[0]!.prefixesStale, 1, 'kept stale');
    t.equal(b.locRib().get('10.9.0.0/24')?.stale, true);
    t.same(withdrawn, []);
  },
);

t.test(
  'a connection destroyed before the FSM sees its close: output to it is dropped, the speaker does not throw',
  { skip: haveNative ? false : 'native addon not built (npm ci)' },
  async (t) => {
    // Seen in the RR fan-out benchmark: 50 clients closed at once, a flush wrote to a destroyed socket
    // whose 'close' had not reached the FSM yet, and "session … is not Established" killed the reflector.
    const p3 = port + 2;
    const a = new BgpSpeaker({ sessions: tcpSessions(), asn: 65000, routerId: '10.255.0.1', listenAddress: '127.0.0.1', listenPort: p3 });
    const b = new BgpSpeaker({ sessions: tcpSessions(), asn: 65000, routerId: '10.255.0.2', listenAddress: '127.0.0.2', listenPort: p3 });
    a.addPeer({ address: '127.0.0.2', asn: 65000, localAddress: '127.0.0.1', port: p3, families: ['ipv4'] });
    b.addPeer({ address: '127.0.0.1', asn: 65000, localAddress: '127.0.0.2', port: p3, families: ['ipv4'], passive: true });
    t.teardown(async () => {
      await a.stop();
      await b.stop();
    });
    await a.start();
    await b.start();
    await until(() => a.peers()[0]!.state === 'Established' && b.peers()[0]!.state === 'Established', 20000, 'Established');
    const adapter = (
      a as unknown as { peersByAddr: Map<string, { session: { session: { main: { socket: Socket } }; send(m: Buffer): boolean } }> }
    ).peersByAddr.get('127.0.0.2')!.session;
    adapter.session.main.socket.destroy(); // its 'close' event comes on a later tick
    t.doesNotThrow(() => adapter.send(encodeKeepalive()), 'a send in that window is dropped');
    a.originate('10.8.0.0/24');
    await until(() => b.locRib().size === 1, 30000, 'the session comes back and the route arrives');
    t.equal(a.internalErrors, 0);
  },
);
