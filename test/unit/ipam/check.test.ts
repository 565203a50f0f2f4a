// IPAM's consistency check as a pure function over the lists it reads: leaked allocations (no handle
// record, or an owner the caller says is gone), handle counts that disagree with the blocks, what a node
// without a Node resource still holds, pending claims — and no gone-node verdict when no Node is registered.
import t from 'tap';
import { checkReport, type IpamLists } from '../../../src/ipam/check.js';
import { blockAssign, newBlock } from '../../../src/ipam/block.js';
import { parseCidr } from '../../../src/common/ip.js';

const kv = <T>(key: string, value: T) => ({ key, value, revision: 1 });

function lists(): IpamLists {
  const b1 = newBlock(parseCidr('10.0.0.0/30'), 'n1');
  blockAssign(b1, '10.0.0.1', 'h-live', {});
  blockAssign(b1, '10.0.0.2', 'h-gone-record', {});
  blockAssign(b1, '10.0.0.3', 'h-dead-pod', { pod: 'p3' });
  const b2 = newBlock(parseCidr('10.0.0.4/30'), 'old-node');
  return {
    blocks: [kv('b1', b1), kv('b2', b2)],
    handles: [
      kv('h1', { handleId: 'h-live', block: { '10.0.0.0/30': 1 } }),
      kv('h3', { handleId: 'h-dead-pod', block: { '10.0.0.0/30': 1 } }),
      kv('h4', { handleId: 'h-stale', block: { '10.0.0.4/30': 2 } }),
    ],
    affinities: [
      kv('a1', { node: 'n1', cidr: '10.0.0.0/30', state: 'confirmed' as const }),
      kv('a2', { node: 'old-node', cidr: '10.0.0.4/30', state: 'confirmed' as const }),
      kv('a3', { node: 'n1', cidr: '10.0.0.8/30', state: 'pending' as const }),
    ],
    nodes: ['n1'],
  };
}

t.test('leaks, handle mismatches, gone nodes and pending claims', async (t) => {
  const r = await checkReport(lists(), (_h, attrs) => attrs.pod !== 'p3');
  t.equal(r.blocks, 2);
  t.equal(r.allocations, 3);
  t.same(
    r.leaked.map((l) => [l.ip, l.reason]),
    [
      ['10.0.0.2', 'handle "h-gone-record" does not exist'],
      ['10.0.0.3', 'owner of handle "h-dead-pod" is gone'],
    ],
  );
  t.same(r.handleMismatches, [{ handle: 'h-stale', block: '10.0.0.4/30', handleCount: 2, blockCount: 0 }]);
  t.same(r.blocksOfGoneNodes, [{ cidr: '10.0.0.4/30', node: 'old-node' }]);
  t.same(r.affinitiesOfGoneNodes, [{ cidr: '10.0.0.4/30', node: 'old-node', state: 'confirmed' }]);
  t.same(r.pendingAffinities, [{ cidr: '10.0.0.8/30', node: 'n1' }]);
  t.same(r.problems, []);
});

t.test('no Node registered: gone nodes are not judged, and the report says so', async (t) => {
  const r = await checkReport({ ...lists(), nodes: [] });
  t.same(r.blocksOfGoneNodes, []);
  t.same(r.affinitiesOfGoneNodes, []);
  t.match(r.notes.join('\n'), /no Node resources are registered/);
  t.equal(r.leaked.length, 1, 'without a liveness test only the missing handle record is a leak');
});
