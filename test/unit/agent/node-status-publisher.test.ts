// The published node status: written on change (at most every minIntervalMs), at least every
// heartbeat, and records of nodes whose Node is gone deleted (they expire with their node).
import { STATUS_PREFIX } from '../../../src/datastore/keys.js';
import t from 'tap';
import { MemoryDatastore } from '../../../src/datastore/memory.js';
import { NodeStatusPublisher } from '../../../src/agent/node-status-publisher.js';
import { statusKey, readStatusRecords } from '../../../src/agent/cluster-input.js';
import type { NodeStatusRecord } from '../../../src/agent/cluster-check.js';
import { log } from '../../../src/common/log.js';

const rec = (over: Partial<NodeStatusRecord> = {}): NodeStatusRecord => ({
  node: 'a',
  mode: 'node',
  version: 't',
  updatedAt: '',
  startedAt: 's',
  sessions: [],
  blocks: [],
  routes: [],
  kernelInSync: true,
  ready: true,
  problems: [],
  ...over,
});

t.test('change, rate limit, heartbeat, gc', async (t) => {
  const ds = new MemoryDatastore();
  let now = 1_000_000;
  let cur = rec();
  const p = new NodeStatusPublisher({
    ds,
    node: 'a',
    source: () => ({ ...cur }),
    logger: log('test'),
    minIntervalMs: 2000,
    heartbeatMs: 30_000,
    gcEveryMs: 60_000,
    now: () => now,
  });
  await p.tick();
  const first = await ds.get<NodeStatusRecord>(statusKey('a'));
  t.equal(first?.value.updatedAt, new Date(now).toISOString(), 'first record written at once');
  t.equal(first?.value.intervalMs, 30_000);
  now += 1000;
  cur = rec({ routes: ['10.244.1.0/26'] });
  await p.tick();
  t.same((await ds.get<NodeStatusRecord>(statusKey('a')))?.value.routes, [], 'a change within 2 s waits');
  now += 1500;
  await p.tick();
  t.same((await ds.get<NodeStatusRecord>(statusKey('a')))?.value.routes, ['10.244.1.0/26'], 'then it is written');
  const rev = (await ds.get(statusKey('a')))!.revision;
  now += 10_000;
  await p.tick();
  t.equal((await ds.get(statusKey('a')))!.revision, rev, 'no change, no write');
  now += 25_000;
  await p.tick();
  t.ok((await ds.get(statusKey('a')))!.revision > rev, 'heartbeat after 30 s');

  // Expire with the node: b's record goes once b's Node is gone; a's own record stays.
  await ds.create(`${STATUS_PREFIX}b`, rec({ node: 'b' }));
  await ds.create('/tabby/resources/v3/projectcalico.org/nodes/a', {});
  t.same(await p.gc(), ['b']);
  t.same([...(await readStatusRecords(ds)).keys()], ['a']);
});

t.test('a stopping agent marks its record', async (t) => {
  const ds = new MemoryDatastore();
  const p = new NodeStatusPublisher({ ds, node: 'a', source: () => rec(), logger: log('test'), now: () => 1_000_000 });
  await p.publishStopped('SIGTERM');
  const r = (await ds.get<NodeStatusRecord>(statusKey('a')))!.value;
  t.equal(r.ready, false);
  t.match(r.problems, [/tabby-node stopped \(SIGTERM\)/]);
});
