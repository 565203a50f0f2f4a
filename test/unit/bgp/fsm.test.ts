// RFC 4271 §8 FSM, row by row: pure step(), no sockets, no waiting.
import t from 'tap';
import { Buffer } from 'node:buffer';
import {
  step,
  newFsm,
  TRANSITIONS,
  STATES,
  type Action,
  type Fsm,
  type FsmConfig,
  type FsmEvent,
  type BgpState,
} from '../../../src/bgp/fsm.js';
import { negotiate, buildOpen } from '../../../src/bgp/negotiate.js';
import { jitter, VirtualClock } from '../../../src/bgp/clock.js';
import { BgpMessageError, type OpenMessage } from '../../../src/bgp/codec/types.js';

const cfg: FsmConfig = {
  localAsn: 65000,
  peerAsn: 65000,
  routerId: '10.0.0.1',
  holdTime: 90,
  families: ['ipv4'],
  passive: false,
  connectRetryTime: 5,
};
const at = (state: BgpState, extra: Partial<Fsm> = {}, c: FsmConfig = cfg): Fsm => ({ ...newFsm(c), state, ...extra });
const peerOpen = (o: Partial<OpenMessage> = {}): OpenMessage => ({
  type: 'open',
  version: 4,
  asn: 65000,
  holdTime: 30,
  routerId: '10.0.0.2',
  capabilities: [
    { kind: 'multiprotocol', afi: 1, safi: 1 },
    { kind: 'as4', asn: 65000 },
  ],
  ...o,
});
const types = (a: Action[]): string[] =>
  a.map((x) =>
    x.type === 'timer' ? `timer:${x.timer}:${x.seconds}` : x.type === 'send-notification' ? `notify:${x.code}/${x.subcode}` : x.type,
  );
const established = (): Fsm => {
  const n = negotiate(cfg, peerOpen());
  return at('Established', { negotiated: n });
};

t.test('Idle', async (t) => {
  let r = step(at('Idle'), { type: 'ManualStart' });
  t.equal(r.next.state, 'Connect');
  t.same(types(r.actions), ['timer:connectRetry:5', 'connect']);
  r = step(at('Idle', {}, { ...cfg, passive: true }), { type: 'ManualStart' });
  t.equal(r.next.state, 'Active', 'passive: wait in Active');
  t.same(types(r.actions), ['timer:connectRetry:5']);
  t.equal(step(at('Idle'), { type: 'AutomaticStart' }).next.state, 'Connect');
  for (const e of [{ type: 'KeepAliveMsg' }, { type: 'HoldTimerExpires' }, { type: 'TcpConnectionFails', reason: 'x' }] as FsmEvent[]) {
    const s = step(at('Idle'), e);
    t.same([s.next.state, s.actions], ['Idle', []], `Idle ignores ${e.type}`);
  }
});

t.test('Connect and Active', async (t) => {
  for (const st of ['Connect', 'Active'] as const) {
    for (const ev of ['TcpCrAcked', 'TcpConnectionConfirmed'] as const) {
      const r = step(at(st), { type: ev });
      t.equal(r.next.state, 'OpenSent', `${st} + ${ev}`);
      t.same(types(r.actions), ['timer:connectRetry:0', 'send-open', 'timer:hold:240'], 'send OPEN, hold timer large (§8.2.2)');
    }
    const f = step(at(st), { type: 'TcpConnectionFails', reason: 'Connection refused' });
    t.equal(f.next.state, 'Active', `${st} + TcpConnectionFails → Active (retry after ConnectRetry)`);
    t.same(types(f.actions), ['close', 'timer:connectRetry:5', 'down']);
    const k = step(at(st), { type: 'KeepAliveMsg' });
    t.equal(k.next.state, 'Idle', `${st} + unexpected message → Idle`);
    t.notOk(
      types(k.actions).some((a) => a.startsWith('notify')),
      'no NOTIFICATION without a BGP connection',
    );
    t.same(types(step(at(st), { type: 'ManualStop' }).actions).includes('close'), true);
  }
  t.same(types(step(at('Connect'), { type: 'ConnectRetryTimerExpires' }).actions), ['close', 'timer:connectRetry:5', 'connect']);
  const a = step(at('Active'), { type: 'ConnectRetryTimerExpires' });
  t.same([a.next.state, types(a.actions)], ['Connect', ['timer:connectRetry:5', 'connect']]);
  const p = step(at('Active', {}, { ...cfg, passive: true }), { type: 'ConnectRetryTimerExpires' });
  t.same([p.next.state, types(p.actions)], ['Active', ['timer:connectRetry:5']], 'passive never dials');
});

t.test('OpenSent', async (t) => {
  const r = step(at('OpenSent'), { type: 'BGPOpen', open: peerOpen() });
  t.equal(r.next.state, 'OpenConfirm');
  t.same(
    types(r.actions),
    ['collision-check', 'timer:connectRetry:0', 'send-keepalive', 'timer:keepalive:10', 'timer:hold:30'],
    'hold = min(90, 30), keepalive = hold/3',
  );
  const z = step(at('OpenSent'), { type: 'BGPOpen', open: peerOpen({ holdTime: 0 }) });
  t.same(
    types(z.actions),
    ['collision-check', 'timer:connectRetry:0', 'send-keepalive', 'timer:keepalive:0', 'timer:hold:0'],
    'hold 0: no keepalives, no hold timer',
  );
  const bad = (o: Partial<OpenMessage>, code: number, sub: number, what: string): void => {
    const s = step(at('OpenSent'), { type: 'BGPOpen', open: peerOpen(o) });
    t.equal(s.next.state, 'Idle', what);
    t.same(types(s.actions).slice(0, 1), [`notify:${code}/${sub}`], `${what} → ${code}/${sub}`);
  };
  bad({ holdTime: 1 }, 2, 6, 'hold 1');
  bad({ holdTime: 2 }, 2, 6, 'hold 2');
  bad({ asn: 65001, capabilities: [{ kind: 'as4', asn: 65001 }] }, 2, 2, 'bad peer AS');
  bad({ routerId: '0.0.0.0' }, 2, 3, 'BGP identifier 0');
  bad({ routerId: '10.0.0.1' }, 2, 3, 'iBGP peer with our identifier');
  const req = step(at('OpenSent', {}, { ...cfg, requireCapabilities: ['extended-message'], extendedMessage: true }), {
    type: 'BGPOpen',
    open: peerOpen(),
  });
  const n = req.actions.find((a) => a.type === 'send-notification');
  t.match(n, { code: 2, subcode: 7 }, 'missing required capability → 2/7');
  t.same(n && n.type === 'send-notification' ? [...n.data] : [], [6, 0], '2/7 data carries the capability');
  t.same(types(step(at('OpenSent'), { type: 'HoldTimerExpires' }).actions).slice(0, 1), ['notify:4/0']);
  t.same(types(step(at('OpenSent'), { type: 'KeepAliveMsg' }).actions).slice(0, 1), ['notify:5/1'], 'unexpected message → 5/1 (RFC 6608)');
  t.same(types(step(at('OpenSent'), { type: 'OpenCollisionDump' }).actions).slice(0, 1), ['notify:6/7']);
  t.same(types(step(at('OpenSent'), { type: 'ManualStop' }).actions).slice(0, 1), ['notify:6/2']);
  const hdr = step(at('OpenSent'), { type: 'BGPHeaderErr', error: new BgpMessageError(1, 2, Buffer.from([0, 18])) });
  t.match(hdr.actions[0], { type: 'send-notification', code: 1, subcode: 2, data: Buffer.from([0, 18]) });
  const f = step(at('OpenSent'), { type: 'TcpConnectionFails', reason: 'reset' });
  t.equal(f.next.state, 'Active', 'TCP fails in OpenSent → Active (§8.2.2)');
  t.equal(
    step(at('OpenSent'), { type: 'NotifMsg', msg: { type: 'notification', code: 6, subcode: 2, data: Buffer.alloc(0) } }).next.state,
    'Idle',
  );
});

t.test('OpenConfirm', async (t) => {
  const n = negotiate(cfg, peerOpen());
  const r = step(at('OpenConfirm', { negotiated: n }), { type: 'KeepAliveMsg' });
  t.equal(r.next.state, 'Established');
  t.same(types(r.actions), ['timer:hold:30', 'established']);
  t.same(types(step(at('OpenConfirm', { negotiated: n }), { type: 'KeepaliveTimerExpires' }).actions), [
    'send-keepalive',
    'timer:keepalive:10',
  ]);
  t.same(
    types(
      step(at('OpenConfirm', { negotiated: n }), {
        type: 'UpdateMsg',
        msg: { type: 'update', withdrawn: null as never, nlri: null as never, attrs: null },
      }).actions,
    ).slice(0, 1),
    ['notify:5/2'],
  );
  t.same(
    types(step(at('OpenConfirm', { negotiated: n }), { type: 'BGPOpen', open: peerOpen() }).actions).slice(0, 1),
    ['notify:5/2'],
    'second OPEN → 5/2',
  );
  t.same(types(step(at('OpenConfirm', { negotiated: n }), { type: 'HoldTimerExpires' }).actions).slice(0, 1), ['notify:4/0']);
  t.same(types(step(at('OpenConfirm', { negotiated: n }), { type: 'OpenCollisionDump' }).actions).slice(0, 1), ['notify:6/7']);
});

t.test('Established', async (t) => {
  const up = { type: 'update' as const, withdrawn: null as never, nlri: null as never, attrs: null };
  t.same(types(step(established(), { type: 'UpdateMsg', msg: up }).actions), ['timer:hold:30', 'deliver-update']);
  t.same(types(step(established(), { type: 'KeepAliveMsg' }).actions), ['timer:hold:30']);
  t.same(types(step(established(), { type: 'RouteRefreshMsg', msg: { type: 'route-refresh', afi: 1, safi: 1, subtype: 0 } }).actions), [
    'timer:hold:30',
    'deliver-route-refresh',
  ]);
  t.same(types(step(established(), { type: 'KeepaliveTimerExpires' }).actions), ['send-keepalive', 'timer:keepalive:10']);
  const h = step(established(), { type: 'HoldTimerExpires' });
  t.equal(h.next.state, 'Idle');
  t.same(types(h.actions), ['notify:4/0', 'timer:connectRetry:0', 'timer:hold:0', 'timer:keepalive:0', 'close', 'down']);
  t.match(h.actions.at(-1), { type: 'down', error: { code: 4, subcode: 0, sent: true } });
  t.same(
    types(step(established(), { type: 'BGPOpen', open: peerOpen() }).actions).slice(0, 1),
    ['notify:5/3'],
    'OPEN in Established → 5/3',
  );
  t.same(types(step(established(), { type: 'UpdateMsgErr', error: new BgpMessageError(3, 1, Buffer.alloc(0)) }).actions).slice(0, 1), [
    'notify:3/1',
  ]);
  t.same(types(step(established(), { type: 'ManualStop', subcode: 4 }).actions).slice(0, 1), ['notify:6/4'], 'admin reset Cease 6/4');
  const stop = step(established(), { type: 'ManualStop', subcode: 1, data: Buffer.from([0, 1, 1, 0, 0, 0, 100]) });
  t.match(stop.actions[0], { code: 6, subcode: 1, data: Buffer.from([0, 1, 1, 0, 0, 0, 100]) }, 'max-prefix Cease carries data');
  t.equal(stop.next.connectRetryCounter, 0, 'ManualStop resets the counter');
  t.equal(step(established(), { type: 'HoldTimerExpires' }).next.connectRetryCounter, 1, 'errors count');
  const nv = step(established(), { type: 'NotifMsg', msg: { type: 'notification', code: 6, subcode: 2, data: Buffer.alloc(0) } });
  t.match(nv.actions.at(-1), { type: 'down', error: { code: 6, subcode: 2, sent: false } });
});

t.test('every state has a row for ManualStop; unknown rows are FSM errors', async (t) => {
  for (const s of STATES) t.ok(TRANSITIONS[s].ManualStop, `${s}: ManualStop`);
  const err = step(at('OpenSent'), { type: 'RouteRefreshMsg', msg: { type: 'route-refresh', afi: 1, safi: 1, subtype: 0 } });
  t.same([err.next.state, types(err.actions)[0]], ['Idle', 'notify:5/1']);
});

t.test('negotiation', async (t) => {
  const n = negotiate(
    { ...cfg, families: ['ipv4', 'ipv6'], addPathReceive: ['ipv4'], addPathSend: ['ipv4'], extendedMessage: true },
    peerOpen({
      capabilities: [
        { kind: 'multiprotocol', afi: 1, safi: 1 },
        { kind: 'as4', asn: 65000 },
        { kind: 'add-path', entries: [{ afi: 1, safi: 1, mode: 3 }] },
        { kind: 'extended-message' },
        { kind: 'route-refresh' },
        { kind: 'unknown', code: 71, value: Buffer.alloc(0) },
      ],
    }),
  );
  t.same(n.families, [0x101], 'intersection of families');
  t.same([...n.caps.addPathRx], [0x101]);
  t.same([...n.caps.addPathTx], [0x101]);
  t.equal(n.caps.extendedMessage, true);
  t.equal(n.caps.as4, true);
  t.equal(n.routeRefresh, true);
  const old = negotiate({ ...cfg, families: ['ipv4', 'ipv6'] }, peerOpen({ capabilities: [] }));
  t.same(old.families, [0x101], 'no MP capability: IPv4 unicast only (RFC 4760)');
  t.equal(old.caps.as4, false);
  const o = buildOpen({ ...cfg, localAsn: 4200000001 });
  t.equal(o.asn, 23456, 'AS_TRANS in the 2-octet field');
  t.match(
    o.capabilities.find((c) => c.kind === 'as4'),
    { asn: 4200000001 },
  );
});

t.test('timers: RFC 4271 §10 jitter in [0.75, 1.0], virtual clock', async (t) => {
  t.equal(jitter(1000, new VirtualClock(() => 0)), 750);
  t.equal(jitter(1000, new VirtualClock(() => 0.999999)), 1000);
  const c = new VirtualClock();
  const fired: number[] = [];
  c.setTimer(300, () => fired.push(c.now()));
  const h = c.setTimer(200, () => fired.push(-1));
  c.setTimer(100, () => c.setTimer(50, () => fired.push(c.now())));
  h.cancel();
  c.advance(1000);
  t.same(fired, [150, 300]);
  t.equal(c.now(), 1000);
});

t.test('silent ManualStop (graceful restart): no NOTIFICATION', async (t) => {
  const r = step(established(), { type: 'ManualStop', silent: true });
  t.equal(r.next.state, 'Idle');
  t.notOk(types(r.actions).some((a) => a.startsWith('notify')));
  t.ok(types(r.actions).includes('close'));
});
