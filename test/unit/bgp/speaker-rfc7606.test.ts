// A malformed-UPDATE corpus, one row per RFC 7606 case, injected into a speaker's session after a
// valid announcement of the same prefix. Expected outcomes: treat-as-withdraw (the prefix goes, the
// session stays), attribute-discard (the route stays without the attribute), session-reset
// (NOTIFICATION 3/x, the peer's routes go).
import t from 'tap';
import { Buffer } from 'node:buffer';
import { until, establishedPair } from './speaker-harness.js';
import { attr, update, valid, ORIGIN, AS_PATH, NEXT_HOP, LOCAL_PREF } from './update-bytes.js';

type Outcome = 'treat-as-withdraw' | 'attribute-discard' | 'session-reset' | 'accepted';
interface Row {
  name: string;
  msg: Buffer;
  expect: Outcome;
  notification?: [number, number];
  check?: (route: unknown) => boolean;
}

const P = '192.168.7.0/24';
const ann = (attrs: Buffer[]) => update({ attrs, nlri: [P] });
const without = (code: number) => valid().filter((a) => a[1] !== code);

const rows: Row[] = [
  { name: '§7.1 ORIGIN with an undefined value', msg: ann([ORIGIN(7), AS_PATH(), NEXT_HOP(), LOCAL_PREF()]), expect: 'treat-as-withdraw' },
  { name: '§7.1 ORIGIN of length 2', msg: ann([attr(0x40, 1, [0, 0]), AS_PATH(), NEXT_HOP(), LOCAL_PREF()]), expect: 'treat-as-withdraw' },
  {
    name: '§7.2 AS_PATH segment overruns',
    msg: ann([ORIGIN(), attr(0x40, 2, [2, 3, 0, 0, 0, 1]), NEXT_HOP(), LOCAL_PREF()]),
    expect: 'treat-as-withdraw',
  },
  {
    name: '§7.2 AS_PATH with a zero-length segment',
    msg: ann([ORIGIN(), attr(0x40, 2, [2, 0]), NEXT_HOP(), LOCAL_PREF()]),
    expect: 'treat-as-withdraw',
  },
  {
    name: '§7.3 NEXT_HOP of length 5',
    msg: ann([ORIGIN(), AS_PATH(), attr(0x40, 3, [10, 0, 0, 1, 0]), LOCAL_PREF()]),
    expect: 'treat-as-withdraw',
  },
  { name: '§7.4 MULTI_EXIT_DISC of length 3', msg: ann([...valid(), attr(0x80, 4, [0, 0, 1])]), expect: 'treat-as-withdraw' },
  {
    name: '§7.5 LOCAL_PREF of length 2 (iBGP)',
    msg: ann([ORIGIN(), AS_PATH(), NEXT_HOP(), attr(0x40, 5, [0, 100])]),
    expect: 'treat-as-withdraw',
  },
  {
    name: '§7.6 ATOMIC_AGGREGATE of length 1',
    msg: ann([...valid(), attr(0x40, 6, [1])]),
    expect: 'attribute-discard',
    check: (r) => !(r as { attrs: { atomicAggregate?: boolean } }).attrs.atomicAggregate,
  },
  {
    name: '§7.7 AGGREGATOR of length 5',
    msg: ann([...valid(), attr(0xc0, 7, [0, 0, 1, 10, 0])]),
    expect: 'attribute-discard',
    check: (r) => !(r as { attrs: { aggregator?: unknown } }).attrs.aggregator,
  },
  { name: '§7.8 COMMUNITIES of length 5', msg: ann([...valid(), attr(0xc0, 8, [0, 1, 0, 2, 9])]), expect: 'treat-as-withdraw' },
  { name: '§7.9 ORIGINATOR_ID of length 3', msg: ann([...valid(), attr(0x80, 9, [1, 1, 1])]), expect: 'treat-as-withdraw' },
  { name: '§7.10 CLUSTER_LIST of length 5', msg: ann([...valid(), attr(0x80, 10, [1, 1, 1, 1, 2])]), expect: 'treat-as-withdraw' },
  {
    name: '§7.14 EXTENDED_COMMUNITIES of length 7',
    msg: ann([...valid(), attr(0xc0, 16, [0, 2, 0, 1, 0, 0, 0])]),
    expect: 'treat-as-withdraw',
  },
  {
    name: 'RFC 8092 §6 LARGE_COMMUNITY of length 11',
    msg: ann([...valid(), attr(0xc0, 32, Buffer.alloc(11))]),
    expect: 'treat-as-withdraw',
  },
  {
    name: '§3(c) wrong flags on a well-known attribute (ORIGIN marked optional)',
    msg: ann([attr(0xc0, 1, [0]), AS_PATH(), NEXT_HOP(), LOCAL_PREF()]),
    expect: 'treat-as-withdraw',
  },
  { name: '§3(d) missing ORIGIN', msg: ann(without(1)), expect: 'treat-as-withdraw' },
  { name: '§3(d) missing AS_PATH', msg: ann(without(2)), expect: 'treat-as-withdraw' },
  { name: '§3(d) missing NEXT_HOP', msg: ann(without(3)), expect: 'treat-as-withdraw' },
  {
    name: '§3(g) a repeated attribute: the first is kept',
    msg: ann([...valid(), attr(0x80, 4, [0, 0, 0, 5]), attr(0x80, 4, [0, 0, 0, 9])]),
    expect: 'accepted',
    check: (r) => (r as { attrs: { med?: number } }).attrs.med === 5,
  },
  {
    name: '§5.2 unknown optional transitive attribute: kept',
    msg: ann([...valid(), attr(0xc0, 99, [1, 2, 3])]),
    expect: 'accepted',
    check: (r) => (r as { attrs: { unknown?: { code: number }[] } }).attrs.unknown?.[0]?.code === 99,
  },
  {
    name: '§3(j) NLRI with prefix length 33',
    msg: update({ attrs: valid(), rawNlri: [33, 10, 0, 0, 0, 0] }),
    expect: 'session-reset',
    notification: [3, 10],
  },
  {
    name: '§3(j) NLRI overrunning the message',
    msg: update({ attrs: valid(), rawNlri: [24, 10, 0] }),
    expect: 'session-reset',
    notification: [3, 10],
  },
  {
    name: '§4 attribute length overruns the attribute section',
    msg: (() => {
      const m = ann(valid());
      const b = Buffer.from(m);
      b[19 + 4 + 2] = 200;
      return b;
    })(),
    expect: 'session-reset',
    notification: [3, 1],
  },
  {
    name: '§3(g) MP_REACH_NLRI twice',
    msg: ann([...valid(), attr(0x80, 14, [0, 2, 1, 16, ...Buffer.alloc(16), 0]), attr(0x80, 14, [0, 2, 1, 16, ...Buffer.alloc(16), 0])]),
    expect: 'session-reset',
    notification: [3, 1],
  },
  { name: 'unrecognized well-known attribute', msg: ann([...valid(), attr(0x40, 99, [1])]), expect: 'session-reset', notification: [3, 2] },
];

for (const row of rows) {
  t.test(row.name, async (t) => {
    const { b, rx } = await establishedPair(t);
    rx.inject(ann(valid()));
    await until(() => !!b.locRib().get(P), 5000, 'valid route in');
    rx.inject(row.msg);
    rx.inject(update({ attrs: valid(), nlri: ['192.168.8.0/24'] })); // a marker: processed after the row
    if (row.expect === 'session-reset') {
      await until(() => rx.notificationsSent.length > 0, 5000, 'NOTIFICATION');
      t.same([rx.notificationsSent[0]!.code, rx.notificationsSent[0]!.subcode], row.notification, 'NOTIFICATION code/subcode');
      await until(() => b.locRib().size === 0, 5000, 'routes of the reset session removed');
      return;
    }
    await until(() => !!b.locRib().get('192.168.8.0/24'), 5000, 'marker processed');
    t.equal(b.peers()[0]!.state, 'Established', 'session stays up');
    t.same(rx.notificationsSent, [], 'no NOTIFICATION');
    const r = b.locRib().get(P);
    if (row.expect === 'treat-as-withdraw') t.equal(r, undefined, 'prefix withdrawn');
    else {
      t.ok(r, 'route present');
      if (row.check) t.ok(row.check(r), 'attribute handled as specified');
    }
    t.equal(b.internalErrors, 0);
  });
}
