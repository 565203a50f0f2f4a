import t, { type Test } from 'tap';
import { NODES_PREFIX, POOLS_PREFIX } from '../../../src/datastore/keys.js';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { DatastoreConflict } from '../../../src/datastore/types.js';
import {
  Ipam,
  StaticPoolSource,
  PoolExhausted,
  AddressInUse,
  BadSequenceNumber,
  StrictAffinityViolation,
  UnknownPool,
  blockAllocations,
  blockHandleCounts,
  blockProblems,
  DatastorePoolSource,
  type PoolInfo,
} from '../../../src/ipam/index.js';

const pool = (name: string, cidr: string, extra: Partial<PoolInfo> = {}): PoolInfo => ({
  name,
  cidr,
  family: cidr.includes(':') ? 6 : 4,
  blockSize: cidr.includes(':') ? 122 : 26,
  disabled: false,
  nodeSelector: '',
  ...extra,
});

function setup(pools: PoolInfo[], nodes: Record<string, Record<string, string>> = {}) {
  const ds = new MemoryDatastore();
  const src = new StaticPoolSource(pools, new Map(Object.entries(nodes)));
  let seed = 1;
  const ipam = new Ipam(ds, {
    pools: src,
    random: () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    },
  });
  return { ds, src, ipam };
}

/** Every block's allocations per handle equal the handle records (the invariant of the CAS design). */
async function consistent(t: Test, ipam: Ipam): Promise<void> {
  const blocks = await ipam.store.listBlocks();
  const handles = await ipam.store.listHandles();
  const fromBlocks = new Map<string, number>();
  for (const { value: b } of blocks) {
    t.same(blockProblems(b), [], `block ${b.cidr} structurally sound`);
    for (const [h, n] of blockHandleCounts(b)) fromBlocks.set(`${h}|${b.cidr}`, n);
  }
  const fromHandles = new Map<string, number>();
  for (const { value: h } of handles) for (const [c, n] of Object.entries(h.block)) fromHandles.set(`${h.handleId}|${c}`, n);
  t.same(Object.fromEntries([...fromHandles].sort()), Object.fromEntries([...fromBlocks].sort()), 'handles match blocks');
}

t.test('affine block first, then a new block; last address of a pool; then PoolExhausted', async (t) => {
  const { ipam } = setup([pool('p', '10.0.0.0/25')]);
  const first = await ipam.autoAssign({ handle: 'h0', node: 'n1', num4: 1 });
  t.match(first.ipv4[0], /^10\.0\.0\.\d+\/32$/);
  const aff = await ipam.blocksAffineTo('n1');
  t.equal(aff.length, 1);
  t.equal(aff[0]!.state, 'confirmed');
  for (let i = 1; i < 128; i++) await ipam.autoAssign({ handle: `h${i}`, node: 'n1', num4: 1 });
  const blocks = await ipam.listBlocks();
  t.equal(blocks.length, 2, 'two /26 blocks of a /25');
  t.ok(blocks.every((b) => b.node === 'n1' && b.free === 0));
  const all = new Set<string>();
  for (let i = 0; i < 128; i++) for (const ip of await ipam.ipsByHandle(`h${i}`)) all.add(ip);
  t.equal(all.size, 128, '128 distinct addresses: the whole pool, .0 and .127 included');
  t.ok(all.has('10.0.0.127/32') && all.has('10.0.0.0/32'));
  await t.rejects(ipam.autoAssign({ handle: 'hx', node: 'n1', num4: 1 }), PoolExhausted);
  const e = await ipam.autoAssign({ handle: 'hx', node: 'n1', num4: 1 }).then(
    () => undefined,
    (x: unknown) => x as PoolExhausted,
  );
  if (!e) throw new Error('expected PoolExhausted');
  t.equal(e.pool, 'p (10.0.0.0/25)');
  t.match(e.message, /exhausted/);
  t.same(await ipam.ipsByHandle('hx'), [], 'nothing allocated for the failed request');
  await consistent(t, ipam);
});

t.test('dual stack: one IPv4 and one IPv6 (/122 blocks)', async (t) => {
  const { ipam } = setup([pool('v4', '10.0.0.0/24'), pool('v6', 'fd00:10::/120')]);
  const r = await ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1, num6: 1 });
  t.equal(r.ipv4.length, 1);
  t.equal(r.ipv6.length, 1);
  t.match(r.ipv6[0], /^fd00:10::[0-9a-f]*\/128$/);
  const blocks = await ipam.listBlocks();
  t.ok(blocks.some((b) => b.family === 6 && b.cidr.endsWith('/122') && b.size === 64));
  t.same((await ipam.ipsByHandle('h')).sort(), [...r.ipv4, ...r.ipv6].sort());
});

t.test('all or nothing across families', async (t) => {
  const { ipam } = setup([pool('v4', '10.0.0.0/24')]);
  await t.rejects(ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1, num6: 1 }), PoolExhausted);
  t.same(await ipam.ipsByHandle('h'), []);
  t.equal(
    (await ipam.listBlocks()).reduce((s, b) => s + b.inUse, 0),
    0,
  );
});

t.test('pool choice: nodeSelector, disabled pools, requested pools by name or CIDR', async (t) => {
  const { ipam } = setup(
    [
      pool('rack1', '10.1.0.0/24', { nodeSelector: "rack == 'r1'" }),
      pool('rack2', '10.2.0.0/24', { nodeSelector: "rack == 'r2'" }),
      pool('off', '10.3.0.0/24', { disabled: true }),
      pool('any', '10.4.0.0/24', { nodeSelector: 'all()' }),
    ],
    { a: { rack: 'r1' }, b: { rack: 'r2' }, c: {} },
  );
  const a = await ipam.autoAssign({ handle: 'a', node: 'a', num4: 1, pools: ['rack1'] });
  t.match(a.ipv4[0], /^10\.1\.0\./);
  const b = await ipam.autoAssign({ handle: 'b', node: 'b', num4: 1, pools: ['10.2.0.0/24'] });
  t.match(b.ipv4[0], /^10\.2\.0\./);
  const c = await ipam.autoAssign({ handle: 'c', node: 'c', num4: 1 });
  t.match(c.ipv4[0], /^10\.4\.0\./, 'node without rack label only matches all() (disabled pool skipped)');
  await t.rejects(ipam.autoAssign({ handle: 'x', node: 'a', num4: 1, pools: ['rack2'] }), PoolExhausted, 'selector mismatch');
  await t.rejects(ipam.autoAssign({ handle: 'x', node: 'a', num4: 1, pools: ['off'] }), PoolExhausted, 'disabled');
  await t.rejects(ipam.autoAssign({ handle: 'x', node: 'a', num4: 1, pools: ['nope'] }), UnknownPool);
  await t.rejects(ipam.autoAssign({ handle: 'x', node: 'a', num4: 1, pools: ['10.9.0.0/24'] }), UnknownPool);
  t.same(await ipam.ipsByHandle('x'), []);
});

t.test("borrowing from another node's block, and strictAffinity forbidding it", async (t) => {
  const { ipam } = setup([pool('p', '10.0.0.0/26')]);
  await ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1 });
  const b = await ipam.autoAssign({ handle: 'h2', node: 'n2', num4: 1 });
  t.match(b.ipv4[0], /^10\.0\.0\./, "n2 borrowed from n1's only block");
  t.same(await ipam.blocksAffineTo('n2'), [], 'borrowing claims no block');
  const info = await ipam.ipInfo(b.ipv4[0]!);
  t.equal(info.blockNode, 'n1');
  t.equal(info.handle, 'h2');
  await ipam.setConfig({ strictAffinity: true });
  const e = await ipam.autoAssign({ handle: 'h3', node: 'n2', num4: 1 }).catch((x: unknown) => x);
  t.type(e, PoolExhausted);
  t.match((e as Error).message, /strictAffinity/);
  await t.rejects(ipam.assignIP({ ip: '10.0.0.40', handle: 'h4', node: 'n2' }), StrictAffinityViolation);
  await consistent(t, ipam);
});

t.test('maxBlocksPerHost: a node stops claiming and borrows', async (t) => {
  const { ipam } = setup([pool('p', '10.0.0.0/24', { blockSize: 28 })]);
  await ipam.setConfig({ maxBlocksPerHost: 2 });
  await ipam.autoAssign({ handle: 'other', node: 'n2', num4: 1 });
  for (let i = 0; i < 33; i++) await ipam.autoAssign({ handle: `h${i}`, node: 'n1', num4: 1 });
  t.equal((await ipam.blocksAffineTo('n1')).length, 2, 'n1 holds at most 2 blocks');
  const info = await ipam.ipInfo((await ipam.ipsByHandle('h32'))[0]!);
  t.equal(info.blockNode, 'n2', 'the 33rd address is borrowed');
  await ipam.setConfig({ strictAffinity: true });
  const e = await ipam.autoAssign({ handle: 'y', node: 'n1', num4: 1 }).then(
    () => new Error('no error'),
    (x: unknown) => x as Error,
  );
  t.match(e.message, /maxBlocksPerHost/);
});

t.test('assignIP: requested address, idempotent per handle, in use, outside pools', async (t) => {
  const { ipam } = setup([pool('p', '10.0.0.0/24')]);
  const a = await ipam.assignIP({ ip: '10.0.0.77', handle: 'h1', node: 'n1' });
  t.equal(a.block, '10.0.0.64/26');
  t.same(await ipam.blocksAffineTo('n1'), [{ cidr: '10.0.0.64/26', state: 'confirmed' }], 'claims the block');
  const again = await ipam.assignIP({ ip: '10.0.0.77', handle: 'h1', node: 'n1' });
  t.equal(again.sequenceNumber, a.sequenceNumber);
  await t.rejects(ipam.assignIP({ ip: '10.0.0.77', handle: 'h2', node: 'n1' }), AddressInUse);
  await t.rejects(ipam.assignIP({ ip: '10.9.0.1', handle: 'h2', node: 'n1' }), { code: 'ENOTINPOOL' });
  const auto = await ipam.autoAssign({ handle: 'h3', node: 'n1', num4: 1 });
  t.not(auto.ipv4[0], '10.0.0.77/32');
  await consistent(t, ipam);
});

t.test('releaseByHandle and releaseIPs; stale release refused', async (t) => {
  const { ipam } = setup([pool('p', '10.0.0.0/30', { blockSize: 30 })]);
  const a = await ipam.autoAssign({ handle: 'a', node: 'n1', num4: 2 });
  t.equal(a.ipv4.length, 2);
  const released = await ipam.releaseByHandle('a');
  t.equal(released.length, 2);
  t.same(await ipam.releaseByHandle('a'), [], 'second release is a no-op');
  t.equal(await ipam.store.getHandle('a'), undefined);
  // Take the whole block: the first released address is handed out again, to b.
  const b = await ipam.autoAssign({ handle: 'b', node: 'n1', num4: 4 });
  t.equal(b.ipv4.length, 4);
  const stale = a.allocations[0]!;
  await t.rejects(ipam.releaseIPs([{ ip: stale.ip, sequenceNumber: stale.sequenceNumber }]), BadSequenceNumber);
  t.equal((await ipam.ipsByHandle('b')).length, 4, 'b kept its address');
  const r = await ipam.releaseIPs([b.ipv4[0]!, '10.0.0.3', '192.168.1.1']);
  t.same(r.released.sort(), [b.ipv4[0]!.split('/')[0]!, '10.0.0.3'].sort());
  t.same(r.notAllocated, ['192.168.1.1']);
  t.equal((await ipam.ipsByHandle('b')).length, 2);
  await consistent(t, ipam);
});

t.test('releaseAffinity: empty blocks return to the pool, used ones lose their node', async (t) => {
  const { ipam } = setup([pool('p', '10.0.0.0/24')]);
  const cidr = await ipam.ensureBlock('n1', 4);
  t.equal(await ipam.ensureBlock('n1', 4), cidr, 'ensureBlock is idempotent');
  t.same(await ipam.blocksAffineTo('n1'), [{ cidr, state: 'confirmed' }]);
  const r1 = await ipam.releaseAffinity('n1');
  t.same(r1.released, [cidr]);
  t.equal((await ipam.listBlocks()).length, 0, 'empty block deleted');
  const a = await ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1 });
  const kept = await ipam.releaseAffinity('n1', { requireEmpty: true });
  t.equal(kept.kept.length, 1);
  await ipam.releaseAffinity('n1');
  const blocks = await ipam.listBlocks();
  t.equal(blocks.length, 1);
  t.equal(blocks[0]!.node, null, 'non-empty block stays, affine to nobody');
  t.same(await ipam.blocksAffineTo('n1'), []);
  await ipam.releaseByHandle('h');
  t.equal((await ipam.listBlocks()).length, 0, 'unowned block deleted when its last address goes');
  t.ok(a);
});

t.test('two-phase claim: a pending affinity left by a crash is finished, never routed meanwhile', async (t) => {
  const { ipam, ds } = setup([pool('p', '10.0.0.0/24')]);
  await ipam.store.createAffinity({ node: 'n1', cidr: '10.0.0.128/26', state: 'pending' });
  t.same(await ipam.blocksAffineTo('n1'), [{ cidr: '10.0.0.128/26', state: 'pending' }]);
  const r = await ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1 });
  t.match(r.ipv4[0], /^10\.0\.0\.1(2[89]|[3-9]\d)|^10\.0\.0\.2\d\d/);
  t.same(await ipam.blocksAffineTo('n1'), [{ cidr: '10.0.0.128/26', state: 'confirmed' }]);
  // A pending claim whose block another node created: our affinity is dropped.
  await ipam.store.createAffinity({ node: 'n2', cidr: '10.0.0.128/26', state: 'pending' });
  const r2 = await ipam.autoAssign({ handle: 'h2', node: 'n2', num4: 1 });
  t.notOk((await ipam.blocksAffineTo('n2')).some((b) => b.cidr === '10.0.0.128/26'));
  t.ok(r2.ipv4.length);
  t.ok(ds);
});

t.test('CAS conflicts are retried; no lost update under in-process contention', async (t) => {
  const { ipam, ds } = setup([pool('p', '10.0.0.0/22')]);
  await ipam.autoAssign({ handle: 'first', node: 'n0', num4: 1 });
  ds.failNext(new DatastoreConflict('/x', 1, 2)); // the next assignment's commit (block + handle) conflicts twice
  ds.failNext(new DatastoreConflict('/x', 1, 2));
  await ipam.autoAssign({ handle: 'second', node: 'n0', num4: 1 });
  const jobs: Promise<unknown>[] = [];
  for (let w = 0; w < 6; w++) {
    jobs.push(
      (async () => {
        for (let i = 0; i < 40; i++) await ipam.autoAssign({ handle: `w${w}-${i}`, node: `n${w % 3}`, num4: 1 });
      })(),
    );
  }
  await Promise.all(jobs);
  const ips: string[] = [];
  for (const { value: b } of await ipam.store.listBlocks()) ips.push(...blockAllocations(b).map((a) => a.ip));
  t.equal(ips.length, 242);
  t.equal(new Set(ips).size, 242, 'no duplicates');
  await consistent(t, ipam);
});

t.test('check and gc: leaked addresses, blocks of gone nodes', async (t) => {
  const { ipam, src } = setup([pool('p', '10.0.0.0/24')], { n1: {}, n2: {} });
  await ipam.autoAssign({ handle: 'keep', node: 'n1', num4: 1, attrs: { node: 'n1' } });
  await ipam.autoAssign({ handle: 'gone-pod', node: 'n2', num4: 1, attrs: { node: 'n2' } });
  const leak = await ipam.autoAssign({ handle: 'leak', node: 'n1', num4: 1, attrs: { node: 'n1' } });
  await ipam.store.deleteHandle('leak'); // a crash / an external delete
  let r = await ipam.check();
  t.same(
    r.leaked.map((l) => l.ip),
    [leak.allocations[0]!.ip],
  );
  t.same(r.blocksOfGoneNodes, []);
  src.nodes.delete('n2');
  r = await ipam.check();
  t.equal(r.blocksOfGoneNodes.length, 1);
  t.equal(r.blocksOfGoneNodes[0]!.node, 'n2');
  const g = await ipam.gc(r);
  t.equal(g.releasedIps.length, 2, "leaked address and the gone node's pod address");
  t.equal(g.releasedBlocks.length, 1);
  const after = await ipam.check();
  t.same([after.leaked, after.blocksOfGoneNodes, after.handleMismatches, after.problems], [[], [], [], []]);
  t.equal((await ipam.ipsByHandle('keep')).length, 1);
  const usage = await ipam.usage();
  t.equal(usage[0]!.total, 256n);
  t.equal(usage[0]!.inUse, 1);
  t.equal(usage[0]!.free, 255n);
});

t.test('DatastorePoolSource reads IPPool and Node resources', async (t) => {
  const ds = new MemoryDatastore();
  await ds.create(`${POOLS_PREFIX}default-ipv4-ippool`, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'default-ipv4-ippool' },
    spec: { cidr: '192.168.0.0/16', nodeSelector: "zone == 'a'" },
  });
  await ds.create(`${POOLS_PREFIX}v6`, { metadata: { name: 'v6' }, spec: { cidr: 'fd00::/64', blockSize: 122, disabled: true } });
  await ds.create(`${NODES_PREFIX}n1`, { metadata: { name: 'n1', labels: { zone: 'a' } }, spec: {} });
  const src = new DatastorePoolSource(ds);
  const pools = await src.listPools();
  t.same(
    pools.map((p) => [p.name, p.cidr, p.blockSize, p.disabled]),
    [
      ['default-ipv4-ippool', '192.168.0.0/16', 26, false],
      ['v6', 'fd00::/64', 122, true],
    ],
  );
  t.same(await src.nodeLabels('n1'), { zone: 'a' });
  t.same(await src.listNodes(), ['n1']);
  const ipam = new Ipam(ds);
  const r = await ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1 });
  t.match(r.ipv4[0], /^192\.168\./);
  await t.rejects(ipam.autoAssign({ handle: 'h2', node: 'n2', num4: 1 }), PoolExhausted, 'unlabelled node does not match');
});
