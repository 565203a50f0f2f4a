// BFD (RFC 5880): the Control packet codec and its discard rules, the state table row by row, the
// timer rules (§6.8.3 idle 1 s and Poll/Final, §6.8.4 detection time, §6.8.7 jitter), and two
// BfdServices over an in-memory link on a virtual clock: up in a three-way handshake, fast
// intervals after the Poll, a silent link detected in DetectMult × interval, admin down signalled.
import t from 'tap';
import { Buffer } from 'node:buffer';
import { encodeControl, decodeControl, BfdPacketError, DIAG, type ControlPacket } from '../../../src/bfd/packet.js';
import {
  step,
  newSession,
  packetOf,
  detectionTimeMs,
  txIntervalMs,
  jitterMs,
  TRANSITIONS,
  IDLE_TX_US,
  type BfdSession,
  type BfdAction,
} from '../../../src/bfd/fsm.js';
import { BfdService, type BfdTransport, type BfdStateEvent } from '../../../src/bfd/service.js';
import { VirtualClock } from '../../../src/bgp/clock.js';
import { log } from '../../../src/common/log.js';

const pkt = (o: Partial<ControlPacket> = {}): ControlPacket => ({
  diag: 0,
  state: 'Down',
  poll: false,
  final: false,
  cpi: false,
  demand: false,
  detectMult: 3,
  myDiscr: 0x11111111,
  yourDiscr: 0,
  desiredMinTx: 1_000_000,
  requiredMinRx: 300_000,
  requiredMinEchoRx: 0,
  ...o,
});

t.test('packet: round trip, wire layout, discard rules of §6.8.6', async (t) => {
  const p = pkt({ state: 'Up', poll: true, yourDiscr: 7, diag: DIAG.controlDetectionTimeExpired });
  const b = encodeControl(p);
  t.equal(
    b.toString('hex'),
    '21e00318' + '11111111' + '00000007' + '000f4240' + '000493e0' + '00000000',
    'version 1, diag 1, Up+P, mult 3, length 24, µs intervals',
  );
  t.same(decodeControl(b), p);
  const bad = (f: (b: Buffer) => void, why: RegExp): void => {
    const x = Buffer.from(encodeControl(pkt()));
    f(x);
    let reason = '';
    try {
      decodeControl(x);
    } catch (e) {
      if (e instanceof BfdPacketError) reason = e.reason;
    }
    t.match(reason, why, `discarded: ${why.source}`);
  };
  bad((x) => {
    x[0] = 2 << 5;
  }, /version 2/);
  bad((x) => {
    x[3] = 20;
  }, /length field 20/);
  bad((x) => {
    x[2] = 0;
  }, /detect multiplier 0/);
  bad((x) => {
    x[1] = x[1]! | 1;
  }, /multipoint/);
  bad((x) => {
    x.writeUInt32BE(0, 4);
  }, /my discriminator 0/);
  bad((x) => {
    x[1] = 3 << 6;
  }, /your discriminator 0 in state Up/);
  bad((x) => {
    x[1] = x[1]! | 4;
    x[3] = 26;
  }, /length field 26 >|authentication/);
  let short = '';
  try {
    decodeControl(Buffer.alloc(10));
  } catch (e) {
    short = e instanceof BfdPacketError ? e.reason : String(e);
  }
  t.match(short, /10 bytes, shorter than 24/);
});

const at = (state: BfdSession['state'], extra: Partial<BfdSession> = {}): BfdSession => ({ ...newSession(0x22222222), state, ...extra });
const kinds = (a: BfdAction[]): string[] =>
  a.map((x) =>
    x.type === 'send'
      ? `send${x.final ? '+F' : ''}`
      : x.type === 'detect-timer' || x.type === 'tx-interval'
        ? `${x.type}:${x.ms}`
        : x.type === 'down'
          ? `down:${x.diag}`
          : x.type,
  );

t.test('state table, row by row (RFC 5880 §6.2, §6.8.6)', async (t) => {
  const rx = (state: ControlPacket['state']) => ({
    type: 'rx' as const,
    packet: pkt({ state, yourDiscr: state === 'Down' || state === 'AdminDown' ? 0 : 0x22222222 }),
  });
  const cases: [BfdSession['state'], Parameters<typeof step>[1], BfdSession['state'], number | undefined][] = [
    ['Down', rx('Down'), 'Init', undefined],
    ['Down', rx('Init'), 'Up', DIAG.none],
    ['Down', rx('Up'), 'Down', undefined],
    ['Down', rx('AdminDown'), 'Down', undefined],
    ['Init', rx('Down'), 'Init', undefined],
    ['Init', rx('Init'), 'Up', DIAG.none],
    ['Init', rx('Up'), 'Up', DIAG.none],
    ['Init', rx('AdminDown'), 'Down', DIAG.neighborSignaledDown],
    ['Init', { type: 'detect-timeout' }, 'Down', DIAG.controlDetectionTimeExpired],
    ['Up', rx('Up'), 'Up', undefined],
    ['Up', rx('Init'), 'Up', undefined],
    ['Up', rx('Down'), 'Down', DIAG.neighborSignaledDown],
    ['Up', rx('AdminDown'), 'Down', DIAG.neighborSignaledDown],
    ['Up', { type: 'detect-timeout' }, 'Down', DIAG.controlDetectionTimeExpired],
    ['Up', { type: 'admin-down' }, 'AdminDown', DIAG.adminDown],
    ['AdminDown', rx('Up'), 'AdminDown', undefined],
    ['AdminDown', { type: 'admin-up' }, 'Down', DIAG.none],
  ];
  for (const [from, ev, to, diag] of cases) {
    const r = step(at(from), ev);
    t.equal(r.next.state, to, `${from} + ${ev.type === 'rx' ? `rx ${ev.packet.state}` : ev.type} → ${to}`);
    if (diag !== undefined) t.equal(r.next.localDiag, diag, '  diag');
  }
  t.same(Object.keys(TRANSITIONS).sort(), ['AdminDown', 'Down', 'Init', 'Up']);
  // Actions: Up → Down by timeout says why, and sends at once.
  const d = step(at('Up', { remoteDetectMult: 3, remoteDesiredMinTxUs: 300_000, remoteMinRxUs: 300_000, desiredMinTxUs: 300_000 }), {
    type: 'detect-timeout',
  });
  t.same(kinds(d.actions), ['down:1', 'send', 'detect-timer:0', 'tx-interval:1000'], 'down (diag 1), tell the peer, back to 1 s');
  t.match(d.actions[0], { remoteAdmin: false });
  t.match(step(at('Up'), rx('AdminDown')).actions[0], { type: 'down', remoteAdmin: true });
  // AdminDown discards received packets entirely.
  t.same(step(at('AdminDown'), rx('Up')).actions, []);
});

t.test('timers: idle 1 s until Up, Poll on the change, Final answered, detection time, jitter', async (t) => {
  let s = newSession(5);
  t.equal(s.desiredMinTxUs, IDLE_TX_US, '§6.8.3: 1 s while not Up');
  t.equal(txIntervalMs(s), 1000);
  t.equal(detectionTimeMs(s), 0, 'no remote yet: no detection timer');
  let r = step(s, { type: 'rx', packet: pkt({ state: 'Init', yourDiscr: 5, desiredMinTx: 1_000_000, requiredMinRx: 300_000 }) });
  s = r.next;
  t.equal(s.state, 'Up');
  t.equal(s.desiredMinTxUs, 300_000, 'Up: the configured 300 ms (a decrease applies at once)');
  t.equal(s.polling, true, 'announced with a Poll Sequence');
  t.equal(packetOf(s).poll, true, 'P set in our packets');
  t.same(kinds(r.actions), ['up', 'send', 'detect-timer:3000', 'tx-interval:300'], 'remote still at 1 s: detection 3 × 1 s');
  r = step(s, { type: 'rx', packet: pkt({ state: 'Up', yourDiscr: 5, final: true, desiredMinTx: 300_000 }) });
  s = r.next;
  t.equal(s.polling, false, 'Final ends the Poll Sequence');
  t.same(kinds(r.actions), ['detect-timer:900'], 'remote at 300 ms: 3 × 300 ms');
  r = step(s, { type: 'rx', packet: pkt({ state: 'Up', yourDiscr: 5, poll: true, desiredMinTx: 300_000 }) });
  t.same(kinds(r.actions), ['send+F', 'detect-timer:900'], 'a Poll from the peer is answered with a Final at once');
  t.equal(packetOf(r.next, true).poll, false, 'never P and F together');
  r = step(r.next, { type: 'rx', packet: pkt({ state: 'Up', yourDiscr: 5, requiredMinRx: 0, desiredMinTx: 300_000 }) });
  t.same(kinds(r.actions), ['detect-timer:900', 'tx-interval:0'], 'remote RequiredMinRx 0: no periodic packets (§6.8.3)');
  t.equal(jitterMs(300, 3, 0), 300);
  t.equal(jitterMs(300, 3, 0.999), 300 * (1 - 0.25 * 0.999), 'up to 25 % shorter');
  t.ok(jitterMs(300, 1, 0) <= 270, 'DetectMult 1: at least 10 % shorter');
});

/** A two-ended in-memory link; `cut` drops everything silently. */
function link(): { a: BfdTransport; b: BfdTransport; cut: boolean; sent: number } {
  const handlers: ((peer: string, b: Buffer) => void)[] = [() => undefined, () => undefined];
  const l = { cut: false, sent: 0 } as { a: BfdTransport; b: BfdTransport; cut: boolean; sent: number };
  const end = (i: 0 | 1, self: string): BfdTransport => ({
    send: (_peer, buf) => {
      l.sent++;
      if (!l.cut) queueMicrotask(() => handlers[1 - i]!(self, Buffer.from(buf)));
    },
    onPacket: (fn) => {
      handlers[i] = fn;
    },
    close: async () => undefined,
  });
  l.a = end(0, '10.0.0.1');
  l.b = end(1, '10.0.0.2');
  return l;
}

async function run(clock: VirtualClock, ms: number, step = 10): Promise<void> {
  for (let i = 0; i < ms; i += step) {
    clock.advance(step);
    await Promise.resolve();
    await Promise.resolve();
  }
}

t.test('two services: Up, fast timers after the Poll, a silent cut detected in ≤ 3 × 300 ms, admin down', async (t) => {
  const clock = new VirtualClock(() => 0.5);
  const l = link();
  const A = new BfdService({ transport: () => l.a, clock, logger: log('bfd-a') });
  const B = new BfdService({ transport: () => l.b, clock, logger: log('bfd-b') });
  const evA: BfdStateEvent[] = [];
  A.on('state', (e) => evA.push(e));
  A.add({ peer: '10.0.0.2' });
  B.add({ peer: '10.0.0.1' });
  await run(clock, 3000);
  t.equal(A.stateOf('10.0.0.2'), 'Up');
  t.equal(B.stateOf('10.0.0.1'), 'Up');
  t.same(
    evA.map((e) => e.state),
    ['Up'],
  );
  const st = A.status()[0]!;
  t.equal(st.txIntervalMs, 300, 'transmitting every 300 ms (before jitter)');
  t.equal(st.detectionTimeMs, 900, 'detection time 3 × 300 ms');
  const before = l.sent;
  await run(clock, 3000);
  const perSec = (l.sent - before) / 2 / 3;
  t.ok(perSec > 3 && perSec < 4.6, `~3.8 packets/s each with jitter (got ${perSec.toFixed(2)})`);

  l.cut = true;
  const cutAt = clock.now();
  await run(clock, 2000, 5);
  const down = evA.find((e) => e.state === 'Down');
  t.ok(down, 'A: Down after the cut');
  t.equal(down?.diag, 'Control Detection Time Expired');
  const tookMs = A.status()[0]!.since.getTime() - cutAt;
  t.ok(tookMs <= 900 && tookMs > 600, `detected in ${tookMs} ms (≤ 3 × 300)`);
  t.equal(A.status()[0]!.downs, 1);

  l.cut = false;
  await run(clock, 5000);
  t.equal(A.stateOf('10.0.0.2'), 'Up', 'back Up when the link heals');
  t.match(
    A.status()[0],
    { diag: 'No Diagnostic', lastDownDiag: 'Control Detection Time Expired', downs: 1 },
    'Up again: diag cleared (§6.8.1), why it last went down kept for status',
  );
  B.remove('10.0.0.1');
  await run(clock, 100);
  t.equal(A.stateOf('10.0.0.2'), 'Down', 'the peer signalled AdminDown');
  t.equal(evA[evA.length - 1]?.diag, 'Neighbor Signaled Session Down');
  t.equal(evA[evA.length - 1]?.remoteAdminDown, true, 'AdminDown from the peer is flagged: not a path failure (§6.8.16)');
  t.equal(down?.remoteAdminDown, false, 'a detection timeout is a failure');
  // A packet from an address with no session, or a stranger's discriminator, is discarded.
  const d0 = A.discarded;
  (l.b.send as (p: string, b: Buffer) => void)('10.0.0.1', encodeControl(pkt({ myDiscr: 9, yourDiscr: 12345, state: 'Up' })));
  await Promise.resolve();
  t.equal(A.discarded, d0 + 1);
  await A.close();
  await B.close();
});

t.test('resources: BGPPeer bfd and BGPConfiguration nodeMeshBFD', async (t) => {
  const { validateResource } = await import('../../../src/datastore/resources.js');
  const peer = (bfd: unknown) => ({
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPPeer',
    metadata: { name: 'tor' },
    spec: { peerIP: '10.0.0.1', asNumber: 65000, bfd },
  });
  t.same((validateResource(peer({})) as { spec: { bfd: unknown } }).spec.bfd, {}, '{} = defaults');
  t.same(
    (validateResource(peer({ transmitInterval: '100ms', receiveInterval: '1s', detectMultiplier: 5 })) as { spec: { bfd: unknown } }).spec
      .bfd,
    { transmitInterval: '100ms', receiveInterval: '1s', detectMultiplier: 5 },
  );
  t.throws(() => validateResource(peer({ transmitInterval: '1ms' })), /spec.bfd.transmitInterval "1ms" is out of range 10ms..60s/);
  t.throws(() => validateResource(peer({ detectMultiplier: 1 })), /spec.bfd.detectMultiplier 1 is out of range 2..255/);
  t.throws(() => validateResource(peer({ interval: '300ms' })), /interval/, 'unknown field');
  const cfg = {
    apiVersion: 'projectcalico.org/v3',
    kind: 'BGPConfiguration',
    metadata: { name: 'default' },
    spec: { nodeMeshBFD: { detectMultiplier: 3 } },
  };
  t.same((validateResource(cfg) as { spec: { nodeMeshBFD: unknown } }).spec.nodeMeshBFD, { detectMultiplier: 3 });
});
