// IPAM garbage collection of deleted nodes: grace period, one collector at a time through a lease,
// takeover after the holder falls silent, and a racing allocation that never loses its address.
// Injected clock; the pools and nodes come from the datastore as in the agent.
import { GC_LEASE_KEY, NODES_PREFIX, POOLS_PREFIX } from '../../../src/datastore/keys.js';
import t from 'tap';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { Ipam, IpamGc } from '../../../src/ipam/index.js';

async function setup() {
  const ds = new MemoryDatastore();
  await ds.create(`${POOLS_PREFIX}p`, { metadata: { name: 'p' }, spec: { cidr: '10.30.0.0/24', blockSize: 26 } });
  for (const n of ['node-1', 'node-2', 'node-4']) await ds.create(`${NODES_PREFIX}${n}`, { metadata: { name: n }, spec: {} });
  const ipam = new Ipam(ds);
  await ipam.autoAssign({ handle: 'k8s.a', node: 'node-1', num4: 1, attrs: { node: 'node-1' } });
  const gone = await ipam.autoAssign({ handle: 'k8s.d', node: 'node-4', num4: 2, attrs: { node: 'node-4' } });
  let clock = 0;
  const now = () => clock;
  const advance = (ms: number) => {
    clock += ms;
  };
  const gc = (holder: string) => new IpamGc({ ds, ipam, holder, graceMs: 60_000, leaseMs: 30_000, now });
  return { ds, ipam, gone, advance, gc };
}

t.test("a deleted node's addresses, affinity and block are released after the grace period, not before", async (t) => {
  const { ds, ipam, gone, advance, gc } = await setup();
  const a = gc('node-1');
  let r = await a.tick();
  t.ok(r.leader, 'the first agent takes the lease');
  t.same(r.goneNodes, {}, 'nothing gone yet');
  await ds.delete(`${NODES_PREFIX}node-4`);
  r = await a.tick();
  t.same(Object.keys(r.goneNodes), ['node-4'], 'node-4 seen gone');
  t.same(r.releasedIps, [], 'but not released inside the grace period');
  t.same((await ipam.ipsByHandle('k8s.d')).length, 2);
  advance(59_000);
  t.same((await a.tick()).releasedIps, [], 'still inside the grace period at 59 s');
  advance(2_000);
  r = await a.tick();
  t.same(r.releasedNodes, ['node-4']);
  t.same(r.releasedIps.sort(), gone.ipv4.map((x) => x.split('/')[0]!).sort(), 'its 2 addresses released at 61 s');
  t.same(await ipam.ipsByHandle('k8s.d'), []);
  t.same((await ipam.store.listAffinities('node-4')).length, 0, 'affinity gone');
  const check = await ipam.check();
  t.same([check.blocksOfGoneNodes, check.affinitiesOfGoneNodes, check.leaked], [[], [], []], 'ipam check is clean');
  t.same((await ipam.ipsByHandle('k8s.a')).length, 1, 'a live node keeps its address');
});

t.test('a gone node whose blocks change meanwhile (registered, allocated, deleted between two looks) starts its grace again', async (t) => {
  const { ds, ipam, advance, gc } = await setup();
  const a = gc('node-1');
  await ds.delete(`${NODES_PREFIX}node-4`);
  t.same(Object.keys((await a.tick()).goneNodes), ['node-4'], 'seen gone at 0 s');
  advance(50_000);
  // Between two looks node-4 came back, got a pod, and was deleted again: its block changed.
  await ipam.autoAssign({ handle: 'k8s.e', node: 'node-4', num4: 1, attrs: { node: 'node-4' } });
  await a.tick();
  advance(20_000);
  t.same((await a.tick()).releasedIps, [], 'not at 70 s: its records changed 20 s ago');
  t.equal((await ipam.ipsByHandle('k8s.e')).length, 1);
  advance(45_000);
  const r = await a.tick();
  t.same(r.releasedNodes, ['node-4'], 'released once the grace passed since the change');
  t.equal(r.releasedIps.length, 3);
});

t.test('a node that comes back within the grace period keeps everything', async (t) => {
  const { ds, ipam, advance, gc } = await setup();
  const a = gc('node-1');
  await ds.delete(`${NODES_PREFIX}node-4`);
  await a.tick();
  advance(30_000);
  await ds.create(`${NODES_PREFIX}node-4`, { metadata: { name: 'node-4' }, spec: {} });
  await a.tick();
  advance(60_000);
  t.same((await a.tick()).releasedIps, []);
  t.equal((await ipam.ipsByHandle('k8s.d')).length, 2);
});

t.test('one collector at a time; another takes over when the holder stops renewing', async (t) => {
  const { ds, ipam, advance, gc } = await setup();
  const a = gc('node-1');
  const b = gc('node-2');
  t.ok((await a.tick()).leader);
  t.notOk((await b.tick()).leader, 'the second agent does not collect');
  await ds.delete(`${NODES_PREFIX}node-4`);
  advance(20_000);
  t.ok((await a.tick()).leader, 'the holder renews');
  t.notOk((await b.tick()).leader, 'a renewed lease is not taken');
  // a dies: it renews no more.
  advance(20_000);
  t.notOk((await b.tick()).leader, '20 s of silence: not yet');
  advance(15_000);
  t.ok((await b.tick()).leader, '35 s of silence: taken over');
  t.equal((await ds.get<{ holder: string }>(GC_LEASE_KEY))?.value.holder, 'node-2');
  t.notOk((await a.tick()).leader, 'the old holder, back, finds the lease taken');
  // The new holder starts its own grace period for what it finds gone.
  advance(59_000);
  t.same((await b.tick()).releasedIps, []);
  advance(2_000);
  t.equal((await b.tick()).releasedIps.length, 2, 'the new holder collects');
  t.same(await ipam.ipsByHandle('k8s.d'), []);
});

t.test('a release racing a new allocation in the same block never frees the new address', async (t) => {
  const { ds, ipam, advance, gc } = await setup();
  const a = gc('node-1');
  await ds.delete(`${NODES_PREFIX}node-4`);
  await a.tick();
  advance(61_000);
  // Between the check and the release, node-4's address is released and reused by a pod of node-1
  // (borrowed from the gone node's block): same address, new sequence number, node-1 attributes.
  const [ip] = await ipam.ipsByHandle('k8s.d');
  const bare = ip!.split('/')[0]!;
  const origCheck = ipam.check.bind(ipam);
  let raced = false;
  ipam.check = async (opts) => {
    const r = await origCheck(opts);
    if (!raced) {
      raced = true;
      await ipam.releaseIPs([{ ip: bare }]);
      await ipam.assignIP({ ip: bare, handle: 'k8s.new', node: 'node-1', attrs: { node: 'node-1' } });
    }
    return r;
  };
  await a.tick();
  t.same(await ipam.ipsByHandle('k8s.new'), [ip!], 'the racing allocation keeps its address');
});
