// IPReservation and IPPool allowedUses as IPAM honours them (Calico's semantics): reserved addresses
// are skipped by automatic assignment, wholly reserved blocks are never claimed or borrowed from, a
// requested address may be reserved; Workload-only pools never give tunnel addresses and Tunnel-only
// pools never give pod addresses.
import t from 'tap';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { parseCidr, parseIp } from '../../../src/common/ip.js';
import {
  Ipam,
  StaticPoolSource,
  PoolExhausted,
  PoolUseNotAllowed,
  Reservations,
  DatastorePoolSource,
  blockAllocations,
  type PoolInfo,
} from '../../../src/ipam/index.js';
import { POOLS_PREFIX, RESERVATIONS_PREFIX } from '../../../src/datastore/keys.js';
import { blockAutoAssign, blockNumFree, newBlock } from '../../../src/ipam/block.js';

const pool = (name: string, cidr: string, extra: Partial<PoolInfo> = {}): PoolInfo => ({
  name,
  cidr,
  family: cidr.includes(':') ? 6 : 4,
  blockSize: cidr.includes(':') ? 122 : 26,
  disabled: false,
  nodeSelector: '',
  ...extra,
});

function setup(pools: PoolInfo[], reservations: string[] = []) {
  const ds = new MemoryDatastore();
  const src = new StaticPoolSource(pools, new Map([['n1', {}]]), reservations);
  let seed = 7;
  const ipam = new Ipam(ds, {
    pools: src,
    random: () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    },
  });
  return { ds, src, ipam };
}

t.test('Reservations: addresses, CIDRs, whole and partial cover, tiling', async (t) => {
  const r = new Reservations(['10.0.0.3', '10.0.1.0/27', '10.0.1.32/27', 'cafe:f00d::/123', '10.0.2.77/24']);
  t.ok(r.matchesIp(parseIp('10.0.0.3')));
  t.notOk(r.matchesIp(parseIp('10.0.0.4')));
  t.ok(r.matchesIp(parseIp('cafe:f00d::1f')));
  t.notOk(r.matchesIp(parseIp('cafe:f00d::20')));
  t.ok(r.matchesIp(parseIp('10.0.2.1')), 'host bits set: the network is reserved');
  t.ok(r.matchesWhole(parseCidr('10.0.1.0/26')), 'two /27s tile a /26');
  t.notOk(r.matchesWhole(parseCidr('10.0.0.0/26')), 'one address does not cover a block');
  t.ok(r.matchesSome(parseCidr('10.0.0.0/26')));
  t.notOk(r.matchesSome(parseCidr('10.0.0.64/26')));
  t.ok(r.matchesWhole(parseCidr('10.0.2.64/26')), 'inside a reserved /24');
  t.notOk(new Reservations(['10.0.1.0/27', '10.0.1.0/27']).matchesWhole(parseCidr('10.0.1.0/26')), 'a duplicate counts once');
  t.notOk(new Reservations(['10.0.1.0/27', '10.0.1.0/28']).matchesWhole(parseCidr('10.0.1.0/26')), 'a nested one counts once');
  t.ok(new Reservations().empty);
});

t.test('block: automatic assignment skips reserved ordinals, which stay free in place', async (t) => {
  const b = newBlock(parseCidr('10.0.0.0/29'), 'n1');
  const r = new Reservations(['10.0.0.0/31', '10.0.0.4']);
  t.equal(blockNumFree(b, r), 5);
  const got = blockAutoAssign(b, 3, 'h', {}, r);
  t.same(
    got.map((a) => a.ip),
    ['10.0.0.2', '10.0.0.3', '10.0.0.5'],
  );
  t.same(b.unallocated, [0, 1, 4, 6, 7], 'reserved ordinals still free, order kept');
  t.equal(blockNumFree(b, r), 2);
  t.same(
    blockAutoAssign(b, 5, 'h', {}, r).map((a) => a.ip),
    ['10.0.0.6', '10.0.0.7'],
  );
  t.same(blockAutoAssign(b, 1, 'h', {}, r), [], 'only reserved addresses left: nothing');
});

t.test('autoAssign never hands out a reserved address; a wholly reserved block is never claimed', async (t) => {
  // /25 pool = two /26 blocks; the node's first candidate block is whichever the hash picks, so reserve
  // a whole /26 and addresses in the other, and check both.
  const { ipam } = setup([pool('p', '10.9.0.0/25')], ['10.9.0.0/26', '10.9.0.64', '10.9.0.65', '10.9.0.100/30']);
  const got: string[] = [];
  for (let i = 0; i < 58; i++) got.push(...(await ipam.autoAssign({ handle: `h${i}`, node: 'n1', num4: 1 })).ipv4);
  const r = new Reservations(['10.9.0.0/26', '10.9.0.64', '10.9.0.65', '10.9.0.100/30']);
  t.same(
    got.filter((a) => r.matchesIp(parseIp(a.split('/')[0]!))),
    [],
    'no reserved address handed out',
  );
  t.equal(new Set(got).size, 58, 'every non-reserved address of 10.9.0.64/26 once (64 - 6 reserved)');
  const blocks = (await ipam.listBlocks()).map((b) => b.cidr);
  t.same(blocks, ['10.9.0.64/26'], 'the wholly reserved block was never claimed');
  const err = await ipam.autoAssign({ handle: 'more', node: 'n1', num4: 1 }).catch((e: unknown) => e);
  t.type(err, PoolExhausted);
  t.match((err as Error).message, /wholly reserved/, 'the error says why');
});

t.test('borrowing skips reserved addresses of other nodes blocks', async (t) => {
  const { ipam, src } = setup([pool('p', '10.8.0.0/26')]);
  src.nodes.set('n2', {});
  await ipam.autoAssign({ handle: 'first', node: 'n2', num4: 1 }); // n2 holds the only block
  const b = (await ipam.listBlocks())[0]!;
  const free = await ipam.store.getBlock(b.cidr);
  const first = free!.value.unallocated.slice(0, 3).map((o) => `10.8.0.${o}`);
  src.reservations = first; // reserve the next three in n2's FIFO
  const r = await ipam.autoAssign({ handle: 'borrow', node: 'n1', num4: 1 });
  t.notOk(first.includes(r.ipv4[0]!.split('/')[0]!), `borrowed ${r.ipv4[0]}, not a reserved one`);
});

t.test('assignIP may take a reserved address (reservations are for automatic assignment)', async (t) => {
  const { ipam } = setup([pool('p', '10.7.0.0/26')], ['10.7.0.5']);
  const a = await ipam.assignIP({ ip: '10.7.0.5', handle: 'static', node: 'n1' });
  t.equal(a.ip, '10.7.0.5');
  const b = (await ipam.store.getBlock('10.7.0.0/26'))!.value;
  t.equal(blockAllocations(b)[0]!.handle, 'static');
});

t.test('allowedUses: Workload-only pools never give tunnel addresses, Tunnel-only never pod addresses', async (t) => {
  const { ipam } = setup([
    pool('pods', '10.1.0.0/24', { allowedUses: ['Workload'] }),
    pool('tunnels', '10.2.0.0/24', { allowedUses: ['Tunnel'] }),
  ]);
  for (let i = 0; i < 5; i++) {
    const w = await ipam.autoAssign({ handle: `pod${i}`, node: 'n1', num4: 1 });
    t.match(w.ipv4[0], /^10\.1\.0\./, 'pod from the Workload pool');
  }
  const tun = await ipam.autoAssign({ handle: 'vxlan-tunnel-addr-n1', node: 'n1', num4: 1, use: 'Tunnel' });
  t.match(tun.ipv4[0], /^10\.2\.0\./, 'tunnel address from the Tunnel pool, although n1 already has a pods block');
  const blocks = await ipam.listBlocks();
  t.same(blocks.map((b) => b.pool).sort(), ['pods', 'tunnels']);
  // Requested pools do not override allowedUses.
  await t.rejects(ipam.autoAssign({ handle: 'x', node: 'n1', num4: 1, pools: ['tunnels'] }), PoolExhausted);
  await t.rejects(ipam.autoAssign({ handle: 'y', node: 'n1', num4: 1, pools: ['pods'], use: 'Tunnel' }), PoolExhausted);
  const err = await ipam.autoAssign({ handle: 'z', node: 'n1', num4: 1, pools: ['tunnels'] }).catch((e: unknown) => e);
  t.match((err as Error).message, /allowedUses include Workload/);
  await t.rejects(ipam.assignIP({ ip: '10.2.0.200', handle: 'pod-static', node: 'n1' }), PoolUseNotAllowed);
  const ok = await ipam.assignIP({ ip: '10.2.0.201', handle: 'tun-static', node: 'n1', use: 'Tunnel' });
  t.equal(ok.ip, '10.2.0.201');
  // ensureBlock (the agent's first block, for pods) never claims from a Tunnel-only pool.
  const { ipam: only } = setup([pool('tunnels', '10.3.0.0/24', { allowedUses: ['Tunnel'] })]);
  await t.rejects(only.ensureBlock('n1', 4), PoolExhausted);
  t.match(await only.ensureBlock('n1', 4, 'Tunnel'), /^10\.3\.0\./);
});

t.test('DatastorePoolSource reads IPReservation resources and allowedUses', async (t) => {
  const ds = new MemoryDatastore();
  await ds.create(`${POOLS_PREFIX}p`, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'p' },
    spec: { cidr: '10.5.0.0/26', allowedUses: ['Workload'] },
  });
  await ds.create(`${RESERVATIONS_PREFIX}r1`, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPReservation',
    metadata: { name: 'r1' },
    spec: { reservedCIDRs: ['10.5.0.0/30'] },
  });
  await ds.create(`${RESERVATIONS_PREFIX}r2`, { metadata: { name: 'r2' }, spec: { reservedCIDRs: ['10.5.0.4', 'fd00::1'] } });
  const src = new DatastorePoolSource(ds);
  t.same((await src.listPools())[0]!.allowedUses, ['Workload']);
  t.same((await src.listReservations()).sort(), ['10.5.0.0/30', '10.5.0.4', 'fd00::1']);
  const ipam = new Ipam(ds);
  const r = await ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1 });
  t.equal(r.ipv4[0], '10.5.0.5/32', 'first address after the reserved ones');
});
