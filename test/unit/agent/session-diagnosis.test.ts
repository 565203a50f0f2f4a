// Session history (bounded, retry loops counted) and the classified causes of `bgp diagnose`, one per
// kind of failure, read from the events the speaker reports.
import t from 'tap';
import { SessionHistory, sessionsJson, type SessionEventInput, type PeerSessionJson } from '../../../src/agent/session-history.js';
import { diagnoseSession, decodeNotificationData } from '../../../src/agent/session-diagnosis.js';
import type { PeerStatusJson } from '../../../src/agent/status-types.js';
import type { DesiredPeer } from '../../../src/agent/peers.js';

let clock = new Date('2026-01-01T12:00:00Z').getTime();
const now = (): Date => new Date(clock);
const tick = (s: number): void => {
  clock += s * 1000;
};

const PEER = '10.0.0.2';
const desired = (over: Partial<DesiredPeer> = {}): DesiredPeer => ({
  address: PEER,
  family: 4,
  asn: 65001,
  type: 'global',
  source: 'tor',
  localAddress: '10.0.0.1',
  passive: false,
  routeReflectorClient: false,
  keepOriginalNextHop: false,
  ...over,
});
const status = (state: PeerStatusJson['state'], sinceAgoS = 0): PeerStatusJson => ({
  address: PEER,
  family: 4,
  asn: 65001,
  type: 'global',
  state,
  since: new Date(clock - sinceAgoS * 1000).toISOString(),
  info: state,
  prefixesReceived: 0,
  prefixesAccepted: 0,
});

function session(events: SessionEventInput[], st: PeerStatusJson, d: DesiredPeer = desired()): PeerSessionJson {
  const h = new SessionHistory(64, now);
  for (const e of events) {
    h.record(e);
    tick(1);
  }
  return sessionsJson('n1', 64512, [d], [st], h, now()).peers[0]!;
}
const up: SessionEventInput[] = [
  { kind: 'state', peer: PEER, from: 'Idle', to: 'Connect', info: 'Connect' },
  { kind: 'state', peer: PEER, from: 'OpenConfirm', to: 'Established', info: 'Established' },
];
const notif = (sent: boolean, code: number, subcode: number, data = ''): SessionEventInput => ({
  kind: 'notification',
  peer: PEER,
  sent,
  code,
  subcode,
  data,
});
const connErr = (code: string): SessionEventInput => ({ kind: 'connect-error', peer: PEER, code, message: code });

t.test('history: bounded, retry loops counted on the entry they repeat, forget', async (t) => {
  const h = new SessionHistory(5, now);
  h.record({ kind: 'state', peer: PEER, from: 'Established', to: 'Idle', info: 'x' });
  for (let i = 0; i < 20; i++) {
    h.record({ kind: 'state', peer: PEER, from: 'Idle', to: 'Connect', info: 'Connect' });
    h.record(connErr('ECONNREFUSED'));
    h.record({ kind: 'state', peer: PEER, from: 'Connect', to: 'Active', info: 'Active' });
    tick(5);
  }
  const { events, dropped } = h.events(PEER);
  t.equal(events.length, 4, 'the loop is 3 entries, plus the drop before it');
  t.equal(dropped, 0);
  t.match(events[0], { kind: 'state', from: 'Established', to: 'Idle' });
  t.match(events[2], { kind: 'connect-error', code: 'ECONNREFUSED', count: 20 });
  for (let i = 0; i < 10; i++) h.record(notif(true, 6, 4));
  t.equal(h.events(PEER).events.length, 5, 'never more than the limit');
  t.ok(h.events(PEER).dropped > 0);
  h.forget(PEER);
  t.same(h.events(PEER), { events: [], dropped: 0 });
});

t.test('NOTIFICATION data decoded', async (t) => {
  t.equal(decodeNotificationData(2, 2, 'fde8'), 'peer AS in its OPEN: 65000');
  t.equal(decodeNotificationData(2, 3, '0a000001'), 'BGP identifier: 10.0.0.1');
  t.equal(decodeNotificationData(6, 1, '00010100000064'), 'AFI 1 SAFI 1, limit 100 prefixes');
  t.equal(
    decodeNotificationData(6, 2, Buffer.concat([Buffer.from([11]), Buffer.from('maintenance')]).toString('hex')),
    'message: "maintenance"',
  );
  t.equal(decodeNotificationData(3, 1, 'ff'), 'data ff');
});

t.test('one cause per failure', async (t) => {
  const cases: [string, SessionEventInput[], PeerSessionJson['status'], string, RegExp, DesiredPeer?][] = [
    ['established', up, status('Established', 30), 'established', /Established for/],
    [
      'refused',
      [...up, { kind: 'state', peer: PEER, from: 'Established', to: 'Idle', info: 'Idle' }, connErr('ECONNREFUSED')],
      status('Active'),
      'connection-refused',
      /refuses TCP port 179/,
    ],
    ['no route', [connErr('EHOSTUNREACH')], status('Active'), 'no-route', /no route to 10\.0\.0\.2/],
    ['timeout', [connErr('ETIMEDOUT')], status('Active'), 'tcp-timeout', /timed out.*TCP-MD5 password \(and this side none\)/],
    [
      'timeout with md5 here',
      [connErr('ETIMEDOUT')],
      status('Active'),
      'tcp-timeout',
      /TCP-MD5 is configured for this peer: a key mismatch/,
      desired({ password: { name: 'bgp', key: 'k' } }),
    ],
    ['gtsm', [connErr('ETIMEDOUT')], status('Active'), 'tcp-timeout', /GTSM \(ttlSecurity 1\)/, desired({ ttlSecurity: 1 })],
    [
      'silent connect',
      [
        { kind: 'state', peer: PEER, from: 'Idle', to: 'Connect', info: 'Connect' },
        ...Array(12).fill({ kind: 'state', peer: PEER, from: 'Connect', to: 'Active', info: 'Active' }),
      ],
      status('Connect', 2),
      'tcp-timeout',
      /No answer from 10\.0\.0\.2 for 1\d s/,
    ],
    [
      'closed before open',
      [connErr('ECLOSED')],
      status('Active'),
      'closed-before-open',
      /closed it before any OPEN.*not have this node \(10\.0\.0\.1\)/,
    ],
    [
      'as mismatch sent',
      [notif(true, 2, 2, 'fde8'), connErr('ECLOSED')],
      status('Active'),
      'as-mismatch',
      /another AS than configured here \(expected AS 65001\).*peer AS in its OPEN: 65000/,
    ],
    ['as mismatch received', [notif(false, 2, 2)], status('Idle'), 'as-mismatch', /rejects our AS 64512/],
    ['bad id', [notif(false, 2, 3, '0a000001')], status('Idle'), 'bad-bgp-identifier', /router IDs are equal or invalid/],
    ['hold timer', [...up, notif(true, 4, 0)], status('Idle'), 'hold-timer-expired', /went silent/],
    ['max prefix', [...up, notif(true, 6, 1, '00010100000064')], status('Idle'), 'max-prefix', /limit 100 prefixes/],
    ['admin shutdown', [...up, notif(false, 6, 2)], status('Idle'), 'admin-shutdown', /shut the session down administratively/],
    [
      'passive',
      [...up, { kind: 'state', peer: PEER, from: 'Established', to: 'Active', info: 'x' }],
      status('Active'),
      'waiting-passive',
      /dropped at .* without a NOTIFICATION.*passive side/,
      desired({ passive: true }),
    ],
    [
      'old notification, then refused',
      [notif(false, 6, 2), ...up, { kind: 'state', peer: PEER, from: 'Established', to: 'Idle', info: 'x' }, connErr('ECONNREFUSED')],
      status('Active'),
      'connection-refused',
      /refuses/,
    ],
  ];
  for (const [name, events, st, cause, summary, d] of cases) {
    const dg = diagnoseSession(session(events, st, d), now());
    t.equal(dg.cause, cause, `${name}: ${cause}`);
    t.match(dg.summary, summary, `${name}: summary`);
    t.ok(dg.fix.length > 0);
  }
});

t.test('a NOTIFICATION followed only by the peer closing before OPEN stays the cause', async (t) => {
  const dg = diagnoseSession(
    session(
      [
        notif(true, 2, 2, 'fde8'),
        connErr('ECLOSED'),
        { kind: 'state', peer: PEER, from: 'OpenSent', to: 'Active', info: 'x' },
        connErr('ECLOSED'),
      ],
      status('Active'),
    ),
    now(),
  );
  t.equal(dg.cause, 'as-mismatch');
  t.match(dg.summary, /since then the peer closes every connection before OPEN/);
  const later = diagnoseSession(session([notif(true, 2, 2), connErr('ECLOSED'), connErr('ECONNREFUSED')], status('Active')), now());
  t.equal(later.cause, 'connection-refused', 'a different failure after it wins');
});
