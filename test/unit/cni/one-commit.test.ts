// One synced write per CNI ADD and per DEL: the pod's address, its handle and its WorkloadEndpoint go in
// one Datastore.commit (one log record, one fdatasync in the file store), and DEL releases the address,
// drops the handle and deletes the endpoint in one. Counted on the real file store on disk (its own
// fdatasync counter), through the plugin's commands (test/helpers/cni-store.ts; the etcd side: one Txn,
// test/integration/cni/one-commit-etcd.test.ts). Before, the endpoint was a second synced write each way.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileDatastore, LOG_FILE } from '../../../src/datastore/file.js';
import { blockKey, handleKey } from '../../../src/ipam/store.js';
import type { PoolInfo } from '../../../src/ipam/index.js';
import { cniOverStore, handleOf, wepKeyOf } from '../../helpers/cni-store.js';
import { runTag } from '../../helpers/run-tag.js';

const tag = `${runTag()}cnc`;
const pool: PoolInfo = { name: 'p', cidr: '10.71.0.0/16', family: 4, blockSize: 26, disabled: false, nodeSelector: '' };

function open(t: { teardown(fn: () => unknown): void }, dir?: string) {
  if (!dir) {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
    t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
    dir = d;
  }
  const ds = new FileDatastore(dir, { fsync: true });
  t.teardown(() => ds.close());
  return { dir, ds, ...cniOverStore(ds, pool) };
}

const logLines = (dir: string) => fs.readFileSync(path.join(dir, LOG_FILE), 'utf8').split('\n').filter(Boolean);
const wepKey = (pod: string) => JSON.stringify(wepKeyOf(pod));

t.test('CNI ADD is one fdatasync and one log record holding block, handle and endpoint; DEL is one too', async (t) => {
  const { dir, ds, ipam, run, wep } = open(t);
  await run('ADD', 'warm'); // claims the block, creates the namespace's profile
  for (let i = 0; i < 4; i++) {
    const pod = `pod-${i}`;
    const syncs = ds.fds.syncs;
    const lines = logLines(dir).length;
    const res = await run('ADD', pod);
    const ip = res!.ips[0]!.address;
    t.equal(ds.fds.syncs - syncs, 1, `ADD ${pod} (${ip}): one fdatasync`);
    const added = logLines(dir).slice(lines);
    t.equal(added.length, 1, 'one log record');
    const cidr = (await ipam.blocksAffineTo('n1'))[0]!.cidr;
    t.ok(
      added[0]!.includes(JSON.stringify(handleKey(handleOf(pod)))) &&
        added[0]!.includes(JSON.stringify(blockKey(cidr))) &&
        added[0]!.includes(wepKey(pod)),
      'holding the handle, the block and the endpoint',
    );
    t.same((await wep(pod))?.spec.ipNetworks, [ip], 'the endpoint names the address');
  }
  for (let i = 0; i < 4; i++) {
    const pod = `pod-${i}`;
    const syncs = ds.fds.syncs;
    const lines = logLines(dir).length;
    await run('DEL', pod);
    t.equal(ds.fds.syncs - syncs, 1, `DEL ${pod}: one fdatasync`);
    const added = logLines(dir).slice(lines);
    t.equal(added.length, 1, 'one log record');
    t.ok(added[0]!.includes(wepKey(pod)) && added[0]!.includes(JSON.stringify(handleKey(handleOf(pod)))), 'endpoint and handle');
    t.equal(await wep(pod), undefined, 'endpoint gone');
    t.equal(await ipam.store.getHandle(handleOf(pod)), undefined, 'handle gone');
  }
  const report = await ipam.check();
  t.same([report.leaked, report.handleMismatches], [[], []], 'ipam check: nothing leaked or miscounted');
});

t.test('8 concurrent ADDs share commits, each with its endpoint; 8 concurrent DELs share theirs', async (t) => {
  const { dir, ds, ipam, run, wep } = open(t);
  await run('ADD', 'warm');
  const pods = Array.from({ length: 8 }, (_, i) => `c-${i}`);
  let syncs = ds.fds.syncs;
  let lines = logLines(dir).length;
  const rs = await Promise.all(pods.map((p) => run('ADD', p)));
  const ips = rs.map((r) => r!.ips[0]!.address);
  t.equal(new Set(ips).size, 8, 'no address twice');
  t.ok(ds.fds.syncs - syncs <= 3, `${ds.fds.syncs - syncs} fdatasyncs for 8 ADDs (with their endpoints)`);
  t.ok(logLines(dir).length - lines <= 3, `${logLines(dir).length - lines} log records for 8 ADDs`);
  for (const [i, p] of pods.entries()) t.same((await wep(p))?.spec.ipNetworks, [ips[i]], `${p}'s endpoint names ${ips[i]}`);
  syncs = ds.fds.syncs;
  lines = logLines(dir).length;
  await Promise.all(pods.map((p) => run('DEL', p)));
  // The releases share the block's rounds as the assignments do (as separate compare-and-swaps: 8).
  t.ok(ds.fds.syncs - syncs <= 3, `${ds.fds.syncs - syncs} fdatasyncs for 8 DELs`);
  t.ok(logLines(dir).length - lines <= 3, `${logLines(dir).length - lines} log records for 8 DELs`);
  for (const p of pods) t.equal(await wep(p), undefined, `${p}'s endpoint gone`);
  t.same((await ipam.check()).leaked, [], 'nothing leaked');
});

t.test('a crash in the middle of an ADD’s record leaves neither the address, its handle nor its endpoint', async (t) => {
  const { dir, ds, ipam, run } = open(t);
  await run('ADD', 'warm');
  const cidr = (await ipam.blocksAffineTo('n1'))[0]!.cidr;
  const blockRev = (await ipam.store.getBlock(cidr))!.revision;
  const log = path.join(dir, LOG_FILE);
  const before = fs.statSync(log).size;
  await run('ADD', 'torn');
  await ds.close();
  // Cut the ADD's record halfway (a writer killed mid-write(2)), as the next process finds the log.
  const bytes = fs.readFileSync(log);
  t.ok(bytes.subarray(before).toString().includes(wepKey('torn')), 'the ADD wrote one record with its endpoint');
  fs.truncateSync(log, before + Math.floor((bytes.length - before) / 2));
  const after = open(t, dir);
  t.equal(await after.ds.get(handleKey(handleOf('torn'))), undefined, 'no handle');
  t.equal(await after.wep('torn'), undefined, 'no endpoint');
  t.equal((await after.ipam.store.getBlock(cidr))?.revision, blockRev, 'the block as before');
  const res = await after.run('ADD', 'next');
  t.ok(res!.ips[0], 'the next ADD cuts the torn record and assigns');
  t.ok(await after.wep('next'), 'with its endpoint');
  t.same((await after.ipam.check()).handleMismatches, [], 'counts agree');
});

t.test('a crash in the middle of a DEL’s record leaves the address, its handle and its endpoint all in place', async (t) => {
  const { dir, ds, run } = open(t);
  await run('ADD', 'warm');
  const res = await run('ADD', 'gone');
  const ip = res!.ips[0]!.address;
  const log = path.join(dir, LOG_FILE);
  const before = fs.statSync(log).size;
  await run('DEL', 'gone');
  await ds.close();
  const bytes = fs.readFileSync(log);
  t.ok(bytes.subarray(before).toString().includes(wepKey('gone')), 'the DEL wrote one record with the endpoint’s delete');
  fs.truncateSync(log, before + Math.floor((bytes.length - before) / 2));
  const after = open(t, dir);
  t.ok(await after.ds.get(handleKey(handleOf('gone'))), 'the handle is still there');
  t.ok(await after.wep('gone'), 'the endpoint too');
  t.same(await after.ipam.ipsByHandle(handleOf('gone')), [ip], `the address ${ip} still held`);
  await after.run('DEL', 'gone');
  t.equal(await after.wep('gone'), undefined, 'the DEL run again removes all of it');
  t.same(await after.ipam.ipsByHandle(handleOf('gone')), []);
  t.same((await after.ipam.check()).handleMismatches, [], 'counts agree');
});
