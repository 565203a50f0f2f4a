// One synced write per pod: an assignment writes its block and its handle in one commit (one log record,
// one fdatasync in the file store), a release frees the block and drops the handle in one, and a crash
// in the middle of that record leaves neither — never an address without its handle. Counted on the real
// file store on disk (its own fdatasync counter), so a second synced write per ADD fails the test.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileDatastore, LOG_FILE } from '../../../src/datastore/file.js';
import { frame } from '../../../src/datastore/file-log.js';
import { blockAllocations, Ipam, StaticPoolSource, type PoolInfo } from '../../../src/ipam/index.js';
import { blockKey, handleKey } from '../../../src/ipam/store.js';
import { runTag } from '../../helpers/run-tag.js';

const tag = `${runTag()}ipc`;
const pool: PoolInfo = { name: 'p', cidr: '10.70.0.0/16', family: 4, blockSize: 26, disabled: false, nodeSelector: '' };

function open(t: { teardown(fn: () => unknown): void }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ds = new FileDatastore(dir, { fsync: true });
  t.teardown(() => ds.close());
  const ipam = new Ipam(ds, { pools: new StaticPoolSource([pool], new Map([['n1', {}]])) });
  return { dir, ds, ipam };
}

const logLines = (dir: string) => fs.readFileSync(path.join(dir, LOG_FILE), 'utf8').split('\n').filter(Boolean);

t.test('an ADD into a held block is one fdatasync and one log record; its DEL is one too', async (t) => {
  const { dir, ds, ipam } = open(t);
  await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 }); // claims the block (affinity, block)
  for (let i = 0; i < 5; i++) {
    const syncs = ds.fds.syncs;
    const lines = logLines(dir).length;
    const r = await ipam.autoAssign({ handle: `pod-${i}`, node: 'n1', num4: 1, attrs: { pod: `pod-${i}` } });
    t.equal(r.ipv4.length, 1, `pod-${i} got ${r.ipv4[0]}`);
    t.equal(ds.fds.syncs - syncs, 1, `pod-${i}: one fdatasync for the assignment`);
    const added = logLines(dir).slice(lines);
    t.equal(added.length, 1, 'one log record');
    const rec = added[0]!;
    t.ok(
      rec.includes(JSON.stringify(handleKey(`pod-${i}`))) && rec.includes(JSON.stringify(blockKey(r.allocations[0]!.block))),
      'holding the handle and the block',
    );
  }
  const h = await ipam.store.getHandle('pod-2');
  const [cidr] = (await ipam.blocksAffineTo('n1')).map((b) => b.cidr);
  t.same(h?.value.block, { [cidr!]: 1 }, 'the handle counts its one address');
  for (let i = 0; i < 5; i++) {
    const syncs = ds.fds.syncs;
    const released = await ipam.releaseByHandle(`pod-${i}`);
    t.equal(released.length, 1, `pod-${i} released`);
    t.equal(ds.fds.syncs - syncs, 1, `pod-${i}: one fdatasync for the release`);
    t.equal(await ipam.store.getHandle(`pod-${i}`), undefined, 'its handle is gone');
  }
  const report = await ipam.check();
  t.same([report.leaked, report.handleMismatches, report.problems], [[], [], []], 'ipam check: nothing leaked or miscounted');
});

t.test('8 concurrent ADDs share commits: distinct addresses, every handle counted, at most 3 fdatasyncs', async (t) => {
  const { dir, ds, ipam } = open(t);
  await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 });
  const syncs = ds.fds.syncs;
  const lines = logLines(dir).length;
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => ipam.autoAssign({ handle: `c-${i}`, node: 'n1', num4: 1 })));
  const ips = rs.map((r) => r.ipv4[0]);
  t.equal(new Set(ips).size, 8, 'no address twice');
  // One block, one process: the assignments queue behind the commit in flight and go in the next one
  // (as separate compare-and-swaps, 7 of 8 conflicted each round and retried: ~8 commits).
  t.ok(ds.fds.syncs - syncs <= 3, `${ds.fds.syncs - syncs} fdatasyncs for 8 ADDs`);
  t.ok(logLines(dir).length - lines <= 3, `${logLines(dir).length - lines} log records for 8 ADDs`);
  const report = await ipam.check();
  t.same([report.leaked, report.handleMismatches], [[], []], 'every allocation has its handle, counts agree');
  const [cidr] = (await ipam.blocksAffineTo('n1')).map((b) => b.cidr);
  const blk = (await ipam.store.getBlock(cidr!))!.value;
  t.equal(blockAllocations(blk).length, 9, 'the block holds 9 allocations');
});

t.test('a crash while appending the commit leaves neither the allocation nor the handle', async (t) => {
  const { dir, ds, ipam } = open(t);
  await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 });
  const [cidr] = (await ipam.blocksAffineTo('n1')).map((b) => b.cidr);
  const blk = (await ipam.store.getBlock(cidr!))!;
  const rev = await ds.revision();
  const b = structuredClone(blk.value);
  // What assignFromBlock would append for one more pod, cut halfway (a writer killed mid-write(2)).
  const rec = frame({
    o: 'txn',
    r: rev + 1,
    ops: [
      { o: 'put', k: handleKey('torn'), v: { handleId: 'torn', block: { [b.cidr]: 1 } } },
      { o: 'put', k: blockKey(b.cidr), v: b },
    ],
  });
  fs.appendFileSync(path.join(dir, LOG_FILE), rec.subarray(0, Math.floor(rec.length / 2)));
  const other = new FileDatastore(dir, { fsync: true });
  t.teardown(() => other.close());
  const ipam2 = new Ipam(other, { pools: new StaticPoolSource([pool], new Map([['n1', {}]])) });
  t.equal(await other.get(handleKey('torn')), undefined, 'no handle');
  t.equal((await other.get(blockKey(b.cidr)))?.revision, blk.revision, 'the block as before');
  const r = await ipam2.autoAssign({ handle: 'after', node: 'n1', num4: 1 });
  t.equal(r.ipv4.length, 1, 'the next writer cuts the torn record and assigns');
  t.same((await ipam2.check()).handleMismatches, [], 'counts agree');
});

t.test(
  'an assignment’s own writes (`also`) go in its commit; one that fails is rejected alone; two naming one key take turns',
  async (t) => {
    const { dir, ds, ipam } = open(t);
    await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 });
    const syncs = ds.fds.syncs;
    const lines = logLines(dir).length;
    const also = (i: number) => async (addrs: string[]) => {
      if (i === 3) throw new Error('cannot build pod-3’s writes');
      return [{ op: 'create' as const, key: `/test/also/${i}`, value: { addrs } }];
    };
    const rs = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => ipam.autoAssign({ handle: `a-${i}`, node: 'n1', num4: 1, also: also(i) })),
    );
    t.match(rs[3], { status: 'rejected', reason: { message: /pod-3/ } }, 'the one whose writes failed is rejected with its error');
    t.same(await ipam.ipsByHandle('a-3'), [], 'and holds no address');
    t.equal(await ds.get('/test/also/3'), undefined);
    for (const i of [0, 1, 2, 4, 5, 6, 7]) {
      const r = rs[i]!;
      if (r.status !== 'fulfilled') {
        t.fail(`a-${i}: ${String(r.reason)}`);
        continue;
      }
      t.same((await ds.get(`/test/also/${i}`))?.value, { addrs: r.value.ipv4 }, `a-${i}'s write names ${r.value.ipv4[0]}`);
    }
    t.ok(ds.fds.syncs - syncs <= 3, `${ds.fds.syncs - syncs} fdatasyncs for 7 assignments and their writes`);
    t.ok(logLines(dir).length - lines <= 3, `${logLines(dir).length - lines} log records`);

    // Two assignments whose writes name one key (two sandboxes of one pod): one commit cannot name it twice,
    // so the second waits for the next round and re-reads.
    const bump = async () => {
      const cur = await ds.get<{ n: number }>('/test/shared');
      return [
        cur
          ? { op: 'update' as const, key: '/test/shared', value: { n: cur.value.n + 1 }, expectedRevision: cur.revision }
          : { op: 'create' as const, key: '/test/shared', value: { n: 1 } },
      ];
    };
    // (The first assignment goes alone; the two after it queue behind its commit and meet in one round.)
    const [, x, y] = await Promise.all([
      ipam.autoAssign({ handle: 's-0', node: 'n1', num4: 1 }),
      ipam.autoAssign({ handle: 's-1', node: 'n1', num4: 1, also: bump }),
      ipam.autoAssign({ handle: 's-2', node: 'n1', num4: 1, also: bump }),
    ]);
    t.not(x.ipv4[0], y.ipv4[0], 'both assigned');
    t.same((await ds.get('/test/shared'))?.value, { n: 2 }, 'both writes made, one after the other');
    t.same((await ipam.check()).handleMismatches, [], 'counts agree');
  },
);

t.test('releaseByHandle’s own writes go in the commit that drops the handle, or alone without a handle', async (t) => {
  const { dir, ds, ipam } = open(t);
  await ipam.autoAssign({ handle: 'r-1', node: 'n1', num4: 1 });
  await ds.create('/test/ep/r-1', { x: 1 });
  const syncs = ds.fds.syncs;
  const lines = logLines(dir).length;
  const del = async () => {
    const kv = await ds.get('/test/ep/r-1');
    return kv ? [{ op: 'delete' as const, key: '/test/ep/r-1', expectedRevision: kv.revision }] : [];
  };
  t.equal((await ipam.releaseByHandle('r-1', del)).length, 1);
  t.equal(ds.fds.syncs - syncs, 1, 'one fdatasync');
  t.equal(logLines(dir).length - lines, 1, 'one record');
  t.equal(await ds.get('/test/ep/r-1'), undefined, 'deleted with the release');
  await ds.create('/test/ep/r-1', { x: 2 });
  t.same(await ipam.releaseByHandle('r-1', del), [], 'no handle: nothing released');
  t.equal(await ds.get('/test/ep/r-1'), undefined, 'the write made alone');
});

t.test(
  'concurrent releases and assignments from one block share commits; a release racing an assignment to its handle starts over',
  async (t) => {
    const { dir, ds, ipam } = open(t);
    await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 });
    const held = await Promise.all(Array.from({ length: 8 }, (_, i) => ipam.autoAssign({ handle: `d-${i}`, node: 'n1', num4: 1 })));
    const syncs = ds.fds.syncs;
    const lines = logLines(dir).length;
    // 8 releases and 4 new assignments at once.
    const [rel, add] = await Promise.all([
      Promise.all(held.map((_, i) => ipam.releaseByHandle(`d-${i}`))),
      Promise.all(Array.from({ length: 4 }, (_, i) => ipam.autoAssign({ handle: `n-${i}`, node: 'n1', num4: 1 }))),
    ]);
    t.same(
      rel.map((r) => r.map((ip) => `${ip}/32`)),
      held.map((h) => h.ipv4),
      'each release freed its address',
    );
    t.equal(new Set(add.map((a) => a.ipv4[0])).size, 4, 'four new addresses');
    // As separate compare-and-swaps on the block: ~12, each retried behind the others.
    t.ok(ds.fds.syncs - syncs <= 4, `${ds.fds.syncs - syncs} fdatasyncs for 8 releases and 4 assignments`);
    t.ok(logLines(dir).length - lines <= 4, `${logLines(dir).length - lines} log records`);
    for (let i = 0; i < 8; i++) t.equal(await ipam.store.getHandle(`d-${i}`), undefined, `d-${i}'s handle gone`);
    const report = await ipam.check();
    t.same([report.leaked, report.handleMismatches, report.problems], [[], [], []], 'nothing leaked or miscounted');

    // The handle gains an address in a second block between the release's read and its round: the round sees
    // a handle that names another block too and the release starts over, freeing both.
    const cidr = (await ipam.blocksAffineTo('n1'))[0]!.cidr;
    await ipam.autoAssign({ handle: 'two', node: 'n1', num4: 1 });
    const getHandle = ipam.store.getHandle.bind(ipam.store);
    let first = true;
    ipam.store.getHandle = async (h) => {
      const kv = await getHandle(h);
      if (h === 'two' && first) {
        first = false;
        await ipam.assignIP({ ip: '10.70.1.7', handle: 'two', node: 'n1' }); // another block: claimed for n1
      }
      return kv;
    };
    const freed = await ipam.releaseByHandle('two');
    ipam.store.getHandle = getHandle;
    t.equal(freed.length, 2, `both addresses freed (${freed.join(', ')})`);
    t.ok(freed.includes('10.70.1.7'), 'the one assigned meanwhile too');
    t.equal(await ipam.store.getHandle('two'), undefined, 'handle gone');
    t.notOk(cidr.startsWith('10.70.1.'), 'the two blocks differ');
    t.same((await ipam.check()).handleMismatches, [], 'counts agree');
  },
);

t.test('block rounds read the block without a copy and never change the one the store holds', async (t) => {
  const { ds, ipam } = open(t);
  const first = await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 });
  const [block] = await ipam.store.listBlocks();
  const key = block!.key;
  const held = (await ds.getShared(key))!.value;
  const before = JSON.stringify(held);
  const real = globalThis.structuredClone;
  let blockCopies = 0;
  globalThis.structuredClone = ((v: unknown, o?: Parameters<typeof structuredClone>[1]) => {
    if (typeof v === 'object' && v !== null && 'allocations' in v) blockCopies++;
    return real(v, o);
  }) as typeof structuredClone;
  t.teardown(() => {
    globalThis.structuredClone = real;
  });
  // 4 at once share rounds; then 2 releases
  const got = await Promise.all(
    [0, 1, 2, 3].map((i) => ipam.autoAssign({ handle: `p${i}`, node: 'n1', num4: 1, attrs: { pod: `p${i}` } })),
  );
  await Promise.all([ipam.releaseByHandle('p0'), ipam.releaseByHandle('p1')]);
  globalThis.structuredClone = real;
  t.equal(JSON.stringify(held), before, 'the block object the store held before is unchanged');
  const now = (await ds.get<Parameters<typeof blockAllocations>[0]>(key))!.value;
  const inUse = blockAllocations(now).map((a) => a.ip);
  t.same(
    inUse.sort(),
    [first.ipv4[0], got[2]!.ipv4[0], got[3]!.ipv4[0]].map((a) => a!.split('/')[0]).sort(),
    'the store has the new state',
  );
  t.equal(blockCopies, 0, 'the rounds had no copy of the block made by the store (they copy it themselves)');
});
