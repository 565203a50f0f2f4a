// IPAM under kill -9: 8 processes on 3 nodes allocate and release addresses in small blocks (/28, so
// blocks fill, are claimed and borrowed from) while a chaos driver kill -9s them at random. After each
// round, from the processes' acknowledgements and the store:
//   no address is handed out twice (every acknowledged, unreleased handle holds its own address, and
//   the store agrees), and nothing leaks that the check does not report: every allocation or handle
//   not acknowledged (an operation cut short by kill -9: an assignment, or a release that may or may not
//   have happened) is reported by ipam check (as leaked, given which handles are live, or as a
//   handle/block mismatch), and ipam gc then leaves the check clean.
import { NODES_PREFIX, POOLS_PREFIX } from '../../../src/datastore/keys.js';
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FileDatastore } from '../../../src/datastore/file.js';
import { Ipam } from '../../../src/ipam/index.js';
import { runTag } from '../../helpers/run-tag.js';
import { seeded } from '../../helpers/seed.js';

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../helpers/ipam-chaos-worker.js');
const PROCS = 8;
const ROUNDS = 4;
const MIN_OPS = 80;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('IPAM fault suite: 8 processes, kill -9, no address twice, no unreported leak', async (t) => {
  const random = seeded(t);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}ichaos-`));
  const dir = path.join(root, 'store');
  const acks = path.join(root, 'acks');
  fs.mkdirSync(acks);
  const procs = new Set<ChildProcess>();
  t.teardown(() => {
    for (const p of procs) p.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  });
  const ds = new FileDatastore(dir);
  t.teardown(() => ds.close());
  await ds.create(`${POOLS_PREFIX}p`, { metadata: { name: 'p' }, spec: { cidr: '10.50.0.0/22', blockSize: 28 } });
  for (const n of ['node-0', 'node-1', 'node-2']) await ds.create(`${NODES_PREFIX}${n}`, { metadata: { name: n }, spec: {} });
  const ipam = new Ipam(ds, { logger: { info() {}, warn() {}, error() {} } });
  let incarnation = 0;
  let kills = 0;
  const ackText = () =>
    fs
      .readdirSync(acks)
      .map((f) => fs.readFileSync(path.join(acks, f), 'utf8'))
      .join('');
  const opsNow = () => ackText().split('\n').length - 1;
  const spawnOne = (): ChildProcess => {
    const i = incarnation++;
    const p = spawn(process.execPath, [WORKER, dir, `w${i}`, path.join(acks, `w${i}`), `node-${i % 3}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, TABBY_TEST_SEED: String(random.int(0x1_0000_0000)) },
    });
    let err = '';
    p.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
    });
    p.once('exit', (code, signal) => {
      procs.delete(p);
      if (signal !== 'SIGKILL') t.fail(`a worker exited on its own (${code}): ${err.trim()}`);
    });
    procs.add(p);
    return p;
  };

  for (let round = 1; round <= ROUNDS; round++) {
    const base = opsNow();
    const start = Date.now();
    while (Date.now() - start < 40_000 && (opsNow() - base < MIN_OPS || Date.now() - start < 2000)) {
      while (procs.size < PROCS) spawnOne();
      await sleep(150 + random() * 300);
      const victim = [...procs][random.int(procs.size)];
      if (victim && random() < 0.7) {
        victim.kill('SIGKILL');
        kills++;
        await new Promise((r) => victim.once('exit', r));
      }
    }
    const last = [...procs];
    for (const p of last) {
      p.kill('SIGKILL');
      kills++;
    }
    await Promise.all(last.map((p) => (p.exitCode !== null || p.signalCode !== null ? undefined : new Promise((r) => p.once('exit', r)))));

    // What the processes were told.
    const held = new Map<string, string>(); // handle -> ip
    const releasing = new Set<string>(); // a release started and was cut short: it may or may not have happened
    let assigned = 0;
    let released = 0;
    for (const line of ackText().split('\n')) {
      const [op, handle, ip] = line.split(' ');
      if (op === 'A') {
        held.set(handle!, ip!);
        assigned++;
      } else if (op === 'r') {
        held.delete(handle!);
        releasing.add(handle!);
      } else if (op === 'R') {
        releasing.delete(handle!);
        released++;
      }
    }
    const problems: string[] = [];
    const owners = new Map<string, string>();
    for (const [h, ip] of held) {
      if (owners.has(ip)) problems.push(`${ip} acknowledged to ${owners.get(ip)} and ${h}`);
      owners.set(ip, h);
      const info = await ipam.ipInfo(ip);
      if (!info.allocated || info.handle !== h)
        problems.push(`${ip} acknowledged to ${h}, the store says ${info.allocated ? info.handle : 'free'}`);
    }
    t.same(problems.slice(0, 10), [], `round ${round}: no address handed out twice, none lost`);
    // Everything else is an operation cut short: the check (knowing the live handles) reports it.
    const report = await ipam.check({ isLive: (h) => held.has(h) });
    const reported = new Set([...report.leaked.map((l) => l.ip), ...report.handleMismatches.map((m) => m.handle)]);
    const unacked: string[] = [];
    for (const { value: b } of await ipam.store.listBlocks()) {
      for (const a of (await import('../../../src/ipam/index.js')).blockAllocations(b)) {
        if (a.handle && held.get(a.handle) === a.ip) continue;
        unacked.push(a.ip);
        if (!reported.has(a.ip) && !(a.handle && reported.has(a.handle)))
          problems.push(`${a.ip} (handle ${a.handle}) is allocated, not acknowledged, and not reported`);
      }
    }
    t.same(problems.slice(0, 10), [], `round ${round}: every unacknowledged allocation (${unacked.length}) is reported by ipam check`);
    t.ok(unacked.length <= kills, `round ${round}: ${unacked.length} cut-short allocations <= ${kills} kills`);
    t.same(report.problems, [], `round ${round}: no block corruption`);
    await ipam.gc(report);
    const after = await ipam.check({ isLive: (h) => held.has(h) });
    t.same([after.leaked, after.handleMismatches, after.problems], [[], [], []], `round ${round}: after gc the check is clean`);
    for (const [h, ip] of held) if ((await ipam.ipInfo(ip)).handle !== h) t.fail(`gc took ${ip} from live ${h}`);
    t.comment(
      `IPAM round ${round}: ${assigned} assignments and ${released} releases acknowledged so far, ${held.size} held, ${kills} kill -9 so far, ${unacked.length} cut-short allocations reported and collected`,
    );
  }
});
