// Update groups (update-group.ts): a route reflector's clients share one Adj-RIB-Out and one encoded
// UPDATE stream — split horizon stays exact per member, messages go out one write per round, and a
// member whose socket stops reading holds the group back only for a while (it goes on alone, gets
// everything once it reads again, and rejoins).
import t, { type Test } from 'tap';
import type { BgpSpeaker } from '../../../src/bgp/speaker.js';
import { MemHub, memSpeaker, until, type MemSession } from './speaker-harness.js';

const RR = '10.0.0.1';
const CLIENTS = ['10.0.0.2', '10.0.0.3', '10.0.0.4'];

async function reflectorWithClients(
  t: Test,
  limits?: { highWater?: number; lowWater?: number; evictMs?: number },
): Promise<{ hub: MemHub; rr: BgpSpeaker; cs: BgpSpeaker[] }> {
  const hub = new MemHub();
  const rr = memSpeaker(hub, RR, { asn: 65000, routerId: '1.1.1.1', clusterId: '1.1.1.1', ...(limits ? { updateGroups: limits } : {}) });
  const cs = CLIENTS.map((a, i) => memSpeaker(hub, a, { asn: 65000, routerId: `2.2.2.${i + 2}` }));
  for (const a of CLIENTS) rr.addPeer({ address: a, asn: 65000, families: ['ipv4'], routeReflectorClient: true });
  for (const c of cs) c.addPeer({ address: RR, asn: 65000, families: ['ipv4'] });
  await rr.start();
  for (const c of cs) await c.start();
  t.teardown(() => Promise.all([rr.stop(), ...cs.map((c) => c.stop())]));
  await until(() => rr.updateGroups().some((g) => g.members.length === 3), 10_000, 'the three clients in one update group');
  return { hub, rr, cs };
}

const received = (c: BgpSpeaker): number => c.peers()[0]!.prefixesReceived;

t.test('route reflector: clients in one update group, split horizon exact per member', async (t) => {
  const { rr, cs } = await reflectorWithClients(t);
  const [c1, c2, c3] = cs as [BgpSpeaker, BgpSpeaker, BgpSpeaker];
  t.equal(rr.updateGroups().length, 1, 'one group');
  c1.originate('10.1.0.0/24');
  await until(() => received(c2) === 1 && received(c3) === 1, 5000, 'reflected to c2 and c3');
  t.same(c2.locRib().get('10.1.0.0/24')?.nextHops, ['10.0.0.2'], "c1's next hop, unchanged on reflection");
  t.equal(received(c1), 0, 'not sent back to the client it came from');
  const adv = Object.fromEntries(rr.peers().map((p) => [p.address, p.prefixesAdvertised]));
  t.same(adv, { '10.0.0.2': 0, '10.0.0.3': 1, '10.0.0.4': 1 }, 'advertised counts per member');

  // The best path moves to c2 (higher LOCAL_PREF): c2 must lose c1's path — a withdrawal to c2 only.
  c2.originate('10.1.0.0/24', { localPref: 200 });
  await until(() => received(c2) === 0 && received(c1) === 1, 5000, "c2 withdrawn, c1 gets c2's path");
  await until(() => c3.locRib().get('10.1.0.0/24')?.attrs.localPref === 200, 5000, "c3 has c2's path");
  t.equal(c3.locRib().get('10.1.0.0/24')?.attrs.originatorId, '2.2.2.3', 'ORIGINATOR_ID of c2');

  // Back to c1's path: c2 gets it again, c1 loses c2's.
  c2.withdraw('10.1.0.0/24');
  await until(() => received(c2) === 1 && received(c1) === 0, 5000, "c2 has c1's path again");
  c1.withdraw('10.1.0.0/24');
  await until(() => received(c2) === 0 && received(c3) === 0, 5000, 'withdrawn everywhere');
  t.equal(rr.updateGroups()[0]!.prefixes, 0);
});

t.test('one encoding, one write per round: members are sent the same bytes in far fewer writes than UPDATEs', async (t) => {
  const { hub, rr, cs } = await reflectorWithClients(t);
  const [c1, c2, c3] = cs as [BgpSpeaker, BgpSpeaker, BgpSpeaker];
  const to2 = hub.sessions.get(`${RR}>10.0.0.3`) as MemSession;
  const to3 = hub.sessions.get(`${RR}>10.0.0.4`) as MemSession;
  const at2 = hub.sessions.get(`10.0.0.3>${RR}`) as MemSession;
  const w0 = to2.sentMessages;
  const u0 = at2.received.filter((m) => m.type === 'update').length;
  // 3000 prefixes, a distinct attribute set every 10: 300 attribute sets → ≥ 300 UPDATEs.
  for (let i = 0; i < 3000; i++) c1.originate(`10.${i >> 8}.${i & 255}.0/24`, { med: Math.floor(i / 10) });
  await until(() => received(c2) === 3000 && received(c3) === 3000, 20_000, '3000 prefixes at c2 and c3');
  const writes = to2.sentMessages - w0;
  const updates = at2.received.filter((m) => m.type === 'update').length - u0;
  t.ok(updates >= 300, `${updates} UPDATEs`);
  t.ok(writes * 10 <= updates, `${writes} writes for ${updates} UPDATEs`);
  t.equal(to2.sentBytes, to3.sentBytes, 'the same bytes to both members');
  t.equal(rr.updateGroups()[0]!.prefixes, 3000, 'one shared table');
});

t.test('a member that stops reading holds the group back only for a while, then catches up alone and rejoins', async (t) => {
  const { hub, rr, cs } = await reflectorWithClients(t, { highWater: 16 << 10, lowWater: 4 << 10, evictMs: 300 });
  const [c1, c2, c3] = cs as [BgpSpeaker, BgpSpeaker, BgpSpeaker];
  const to3 = hub.sessions.get(`${RR}>10.0.0.4`) as MemSession;
  to3.writable = false; // c3's socket buffer is full: every send returns false until 'drain'
  // The group checks its members' queues before each round of up to 2000 prefixes (~26 KB here), so c3 is
  // sure to hold it back only when more is still to come after its queue passed the high water mark: at
  // most 2000 + ~1250 (< 16 KB) + 2000 prefixes can go before that. 5000 was not always enough: the RR
  // received the feed in pieces, c3's queue stayed under the mark at each check, and nothing stalled.
  const N = 10_000;
  for (let i = 0; i < N; i++) c1.originate(`10.${i >> 8}.${i & 255}.0/24`, { med: Math.floor(i / 20) });
  await until(() => received(c2) === N, 30_000, 'c2 gets everything while c3 is stuck');
  const st3 = rr.peers().find((p) => p.address === '10.0.0.4')!;
  t.equal(st3.updateGroup, undefined, 'c3 left the group');
  t.ok(received(c3) < N, `c3 has ${received(c3)} of ${N}`);
  // Bounded: the high water mark plus one round of encoded UPDATEs (2000 prefixes), not the whole table.
  t.ok(st3.outboundPeak < (16 << 10) + 64_000, `c3's queue peaked at ${st3.outboundPeak} bytes`);
  t.equal(rr.updateGroups().find((g) => g.members.includes('10.0.0.3'))?.members.length, 2, 'c1 and c2 still share one');
  to3.writable = true;
  to3.emit('drain');
  await until(() => received(c3) === N, 30_000, 'c3 catches up once it reads');
  c1.originate('10.200.0.0/24'); // a change after catching up: c3 settles and rejoins
  await until(() => rr.updateGroups().some((g) => g.members.length === 3), 10_000, 'c3 back in the group');
  await until(() => received(c3) === N + 1 && received(c2) === N + 1, 5000, 'the next change reaches both');
});

t.test('a client with no routes leaving the reflector does not walk the Loc-RIB; one with routes is flushed', async (t) => {
  const { rr, cs } = await reflectorWithClients(t);
  const [c1, c2, c3] = cs as [BgpSpeaker, BgpSpeaker, BgpSpeaker];
  for (let i = 0; i < 500; i++) c1.originate(`10.7.${i >> 8}.${i & 255}/32`);
  await until(() => received(c2) === 500, 10_000, 'c2 has the 500 routes');
  // Count walks of the Loc-RIB's table (each is O(routes); 50 clients leaving were 50 walks).
  const table = (rr as unknown as { rib: { table: { forEach: (...a: unknown[]) => void } } }).rib.table;
  const walk = table.forEach;
  let walks = 0;
  table.forEach = function (this: unknown, ...a: unknown[]) {
    walks++;
    return walk.apply(this, a);
  };
  t.teardown(() => {
    table.forEach = walk;
  });
  const flushed: { address: string; removed: number }[] = [];
  rr.on('flushed', (e) => flushed.push(e));
  await c3.stop();
  await until(() => flushed.some((f) => f.address === '10.0.0.4'), 10_000, "c3's session down seen");
  t.equal(walks, 0, 'no walk for a client that sent nothing');
  t.equal(rr.locRib().size, 500, "c1's routes stay");
  await c1.stop();
  await until(() => received(c2) === 0, 10_000, "c1's routes withdrawn from c2");
  t.ok(walks >= 1, 'a client with routes is flushed by a walk');
  t.equal(rr.locRib().size, 0);
});

t.test('a client coming up to a full reflector is dumped from the group table (no Adj-RIB-Out of its own), End-of-RIB last', async (t) => {
  const { hub, rr, cs } = await reflectorWithClients(t);
  const [c1, c2] = cs as [BgpSpeaker, BgpSpeaker, BgpSpeaker];
  for (let i = 0; i < 3000; i++) c1.originate(`10.9.${i >> 8}.${i & 255}/32`, { med: i >> 4 });
  await until(() => received(c2) === 3000, 10_000, 'c2 has the 3000 routes');
  // A fourth client comes up now.
  const c4 = memSpeaker(hub, '10.0.0.5', { asn: 65000, routerId: '2.2.2.5' });
  rr.addPeer({ address: '10.0.0.5', asn: 65000, families: ['ipv4'], routeReflectorClient: true });
  c4.addPeer({ address: RR, asn: 65000, families: ['ipv4'] });
  t.teardown(() => c4.stop());
  let inGroupAtDumpDone: number | undefined;
  rr.on('dump-done', (e) => {
    if (e.address === '10.0.0.5') inGroupAtDumpDone = rr.peers().find((p) => p.address === '10.0.0.5')?.updateGroup;
  });
  const eor: number[] = [];
  c4.on('end-of-rib', () => eor.push(received(c4)));
  await c4.start();
  c1.originate('10.10.0.0/24'); // a change while the new client is being dumped
  await until(() => received(c4) === 3001, 10_000, 'c4 has every route and the change');
  t.ok(inGroupAtDumpDone !== undefined, 'in the group during its dump');
  t.equal(rr.updateGroups().length, 1, 'still one group');
  t.equal(rr.updateGroups()[0]!.members.length, 4);
  t.ok(eor.length === 1 && eor[0]! >= 3000, `End-of-RIB after the dump (${eor[0]} routes then)`);
});

t.test('a lone peer keeps its own Adj-RIB-Out: no shared table of everything it sent (a node with one upstream peer)', async (t) => {
  // Before: a group was built for the one peer and kept every learned route in its shared table (and
  // encoded each batch for nobody): bgp-ingest at 1M took 4.0 s of CPU instead of 1.2 s.
  const hub = new MemHub();
  const rr = memSpeaker(hub, RR, { asn: 65000, routerId: '1.1.1.1', clusterId: '1.1.1.1' });
  const [c1, c2] = CLIENTS.slice(0, 2).map((a, i) => memSpeaker(hub, a, { asn: 65000, routerId: `2.2.2.${i + 2}` })) as [
    BgpSpeaker,
    BgpSpeaker,
  ];
  rr.addPeer({ address: CLIENTS[0]!, asn: 65000, families: ['ipv4'], routeReflectorClient: true });
  c1.addPeer({ address: RR, asn: 65000, families: ['ipv4'] });
  await rr.start();
  await c1.start();
  t.teardown(() => Promise.all([rr.stop(), c1.stop(), c2.stop()]));
  await until(() => rr.peers()[0]?.state === 'Established', 10_000, 'session up');
  for (let i = 0; i < 2000; i++) c1.originate(`10.${i >> 8}.${i & 255}.0/24`, { med: Math.floor(i / 10) });
  await until(() => rr.locRib().size === 2000, 20_000, '2000 prefixes learned');
  t.same(rr.updateGroups(), [], 'no update group for a lone peer');
  t.equal(received(c1), 0, 'nothing sent back');

  // A second peer of the same key: the group is built (from the Loc-RIB) and the first peer joins it.
  rr.addPeer({ address: CLIENTS[1]!, asn: 65000, families: ['ipv4'], routeReflectorClient: true });
  c2.addPeer({ address: RR, asn: 65000, families: ['ipv4'] });
  await c2.start();
  await until(() => received(c2) === 2000, 20_000, "the second peer gets the first one's routes");
  await until(() => rr.updateGroups()[0]?.members.length === 2, 10_000, 'both peers in one group');
  t.equal(rr.updateGroups()[0]!.prefixes, 2000, 'the shared table');
  c1.originate('10.99.0.0/24');
  c2.originate('10.98.0.0/24');
  await until(() => received(c2) === 2001 && received(c1) === 1, 5000, "each gets the other's new route through the group");
});
