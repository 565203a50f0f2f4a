import t from 'tap';
import { parseCidr, formatCidr } from '../../../src/common/ip.js';
import {
  newBlock,
  cloneBlock,
  blockAutoAssign,
  blockAssign,
  blockRelease,
  blockReleaseByHandle,
  blockProblems,
  numFree,
  numInUse,
  isEmpty,
  candidateBlocks,
  ordinalToIp,
  ipToOrdinal,
  AddressInUse,
  BadSequenceNumber,
  BadHandle,
  blockHandleCounts,
  fnv1a32,
} from '../../../src/ipam/block.js';

const now = new Date('2026-01-01T00:00:00Z');

t.test('a /26 hands out all 64 addresses, network and broadcast included, then nothing', async (t) => {
  const b = newBlock(parseCidr('10.1.0.0/26'), 'n1', now);
  t.equal(b.affinity, 'host:n1');
  const got = blockAutoAssign(b, 100, 'h1', { pod: 'p' });
  t.equal(got.length, 64);
  t.equal(got[0]!.ip, '10.1.0.0', 'first ordinal: no address reserved');
  t.equal(got[63]!.ip, '10.1.0.63', 'last address of the block');
  t.equal(new Set(got.map((g) => g.ip)).size, 64);
  t.equal(numFree(b), 0);
  t.same(blockAutoAssign(b, 1, 'h2', {}), [], 'full block gives nothing');
  t.same(blockProblems(b), []);
  t.equal(b.attributes.length, 1, 'one attribute row shared by the handle');
});

t.test('ordinals map to addresses at block boundaries', async (t) => {
  const b = newBlock(parseCidr('10.1.0.192/26'), null, now);
  t.equal(ordinalToIp(b, 0), '10.1.0.192');
  t.equal(ordinalToIp(b, 63), '10.1.0.255');
  t.equal(ipToOrdinal(b, '10.1.0.255'), 63);
  t.throws(() => ipToOrdinal(b, '10.1.1.0'), RangeError, 'first address past the block');
  t.throws(() => ipToOrdinal(b, '10.1.0.191'), RangeError, 'last address before the block');
  const c = newBlock(parseCidr('10.255.255.192/26'), null, now);
  t.equal(ordinalToIp(c, 63), '10.255.255.255');
});

t.test('IPv6 /122 blocks', async (t) => {
  const b = newBlock(parseCidr('fd00:1::40/122'), 'n1', now);
  t.equal(b.allocations.length, 64);
  const got = blockAutoAssign(b, 64, 'h', {});
  t.equal(got[0]!.ip, 'fd00:1::40');
  t.equal(got[63]!.ip, 'fd00:1::7f');
  t.equal(ipToOrdinal(b, 'fd00:1::7f'), 63);
});

t.test('released addresses are reused last (FIFO)', async (t) => {
  const b = newBlock(parseCidr('10.0.0.0/29'), 'n1', now);
  const [a0, a1] = blockAutoAssign(b, 2, 'h1', {});
  blockRelease(b, [{ ip: a0!.ip }]);
  const next = blockAutoAssign(b, 6, 'h2', {});
  t.same(
    next.map((x) => x.ip),
    ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7'],
  );
  const last = blockAutoAssign(b, 1, 'h3', {});
  t.equal(last[0]!.ip, '10.0.0.0', 'the released address comes back only after all others');
  t.ok(a1);
  t.same(blockProblems(b), []);
});

t.test('sequence numbers stop a stale release from freeing a reused address', async (t) => {
  const b = newBlock(parseCidr('10.0.0.0/30'), 'n1', now);
  const [first] = blockAutoAssign(b, 1, 'pod-a', {});
  blockRelease(b, [{ ip: first!.ip, sequenceNumber: first!.sequenceNumber }]);
  // Fill the block so the same address is handed out again, to pod-b.
  const again = blockAutoAssign(b, 4, 'pod-b', {});
  const reused = again.find((x) => x.ip === first!.ip)!;
  t.ok(reused, 'address reused');
  t.not(reused.sequenceNumber, first!.sequenceNumber, 'new allocation, new sequence number');
  const before = cloneBlock(b);
  t.throws(() => blockRelease(b, [{ ip: first!.ip, sequenceNumber: first!.sequenceNumber }]), BadSequenceNumber);
  t.throws(() => blockRelease(b, [{ ip: first!.ip, handle: 'pod-a' }]), BadHandle);
  t.same(b, before, 'a refused release changes nothing');
  const ok = blockRelease(b, [{ ip: first!.ip, sequenceNumber: reused.sequenceNumber, handle: 'pod-b' }]);
  t.same(ok.released, [{ ip: first!.ip, handle: 'pod-b' }]);
});

t.test('assign a requested address; in-use refused; release by handle', async (t) => {
  const b = newBlock(parseCidr('10.0.0.0/28'), 'n1', now);
  const a = blockAssign(b, '10.0.0.9', 'h1', { ns: 'x' });
  t.equal(a.ordinal, 9);
  t.notOk(b.unallocated.includes(9));
  t.throws(() => blockAssign(b, '10.0.0.9', 'h2', {}), AddressInUse);
  blockAutoAssign(b, 3, 'h2', {});
  blockAutoAssign(b, 2, 'h1', { ns: 'x' });
  t.same(Object.fromEntries(blockHandleCounts(b)), { h1: 3, h2: 3 });
  const rel = blockReleaseByHandle(b, 'h1');
  t.equal(rel.length, 3);
  t.same(Object.fromEntries(blockHandleCounts(b)), { h2: 3 });
  t.equal(b.attributes.length, 1, 'unreferenced attributes dropped');
  t.equal(numInUse(b), 3);
  t.same(blockProblems(b), []);
  blockReleaseByHandle(b, 'h2');
  t.ok(isEmpty(b));
  const rr = blockRelease(b, [{ ip: '10.0.0.1' }]);
  t.same(rr.notAllocated, ['10.0.0.1'], 'releasing a free address is a no-op');
});

t.test('candidate blocks: every block once, start seeded by node name', async (t) => {
  const pool = parseCidr('10.0.0.0/22');
  const a = [...candidateBlocks(pool, 26, 'node-a')].map(formatCidr);
  const b = [...candidateBlocks(pool, 26, 'node-b')].map(formatCidr);
  t.equal(a.length, 16);
  t.equal(new Set(a).size, 16);
  t.same([...a].sort(), [...b].sort());
  t.same([...candidateBlocks(pool, 26, 'node-a')].map(formatCidr), a, 'deterministic');
  const starts = new Set(Array.from({ length: 20 }, (_, i) => formatCidr(candidateBlocks(pool, 26, `node-${i}`).next().value!)));
  t.ok(starts.size >= 6, `20 nodes start at ${starts.size} different blocks`);
  const v6 = candidateBlocks(parseCidr('fd00::/64'), 122, 'n1');
  const first = v6.next().value!;
  t.equal(first.prefixLen, 122);
  t.equal(fnv1a32(''), 0x811c9dc5);
});
