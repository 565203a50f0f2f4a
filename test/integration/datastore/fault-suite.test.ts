// The file store's fault-injection suite: 4 processes CAS-increment 8 counters while a chaos driver
// kill -9s them at random moments, makes them kill themselves inside compaction, fills the (small
// tmpfs) disk mid-append and mid-compaction, flips a byte mid-log, and mounts the store read-only.
// After every round, from a fresh process and the writers' ack files:
//   I1 every acknowledged write is present (each counter >= its acknowledged increments)
//   I2 no two processes disagree: one (key, value) per revision, one revision per (key, value)
//   I3 revisions never go backwards (each writer checks its own view; the store's across rounds)
//   I4 counters = acknowledged increments, plus at most one unacknowledged commit per killed writer
// Bounded: a fixed number of rounds of ~2 s each. Root (tmpfs and bind mounts).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FileDatastore, LOG_FILE } from '../../../src/datastore/file.js';
import { DatastoreCorrupt, DatastoreUnavailable } from '../../../src/datastore/types.js';
import { runTag } from '../../helpers/run-tag.js';
import { seeded } from '../../helpers/seed.js';

const WORKER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../helpers/chaos-worker.js');
const tag = `${runTag()}chaos`;
const WRITERS = 4;
const KEYS = 8;
const ROUND_MS = 1500;
const MIN_ACKS = 60;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Kind = 'kill' | 'kill-in-compaction' | 'enospc-append' | 'enospc-compaction' | 'flipped-byte' | 'read-only';
const PLAN: Kind[] = [
  'kill',
  'kill-in-compaction',
  'enospc-append',
  'kill',
  'enospc-compaction',
  'kill-in-compaction',
  'flipped-byte',
  'read-only',
  'kill',
  'kill-in-compaction',
  'enospc-append',
  'enospc-compaction',
];

interface Writer {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  killedByUs: boolean;
  ackFile: string;
}

t.test(
  'fault suite: CAS counters under kill -9, compaction kills, ENOSPC, a flipped byte, a read-only mount',
  {
    skip: process.getuid?.() !== 0 ? 'needs root (tmpfs, bind mounts)' : false,
  },
  async (t) => {
    const random = seeded(t);
    const rand = (a: number, b: number) => a + random.int(b - a);
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1024k,mode=0700', 'tabbychaos', mnt]);
    const acks = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-acks-`));
    const writers = new Set<Writer>();
    t.teardown(async () => {
      for (const w of writers) w.proc.kill('SIGKILL');
      await Promise.all([...writers].map((w) => w.exited));
      try {
        execFileSync('umount', ['-l', path.join(mnt, 'ro')]);
      } catch {
        /* not mounted */
      }
      try {
        execFileSync('umount', ['-l', mnt]);
      } catch {
        /* gone */
      }
      fs.rmSync(mnt, { recursive: true, force: true });
      fs.rmSync(acks, { recursive: true, force: true });
    });
    const dir = path.join(mnt, 'store');
    const logPath = path.join(dir, LOG_FILE);
    const setup = new FileDatastore(dir);
    for (let k = 0; k < KEYS; k++) await setup.create(`/chaos/c${k}`, 0);
    await setup.close();

    let incarnation = 0;
    const spawnWriter = (opts: object): Writer => {
      const ackFile = path.join(acks, `w${incarnation++}`);
      const proc = spawn(process.execPath, [WORKER, dir, ackFile, String(KEYS), JSON.stringify(opts)], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, TABBY_TEST_SEED: String(random.int(0x1_0000_0000)) },
      });
      let stderr = '';
      proc.stderr!.on('data', (b: Buffer) => {
        stderr += b.toString();
      });
      const w: Writer = {
        proc,
        ackFile,
        killedByUs: false,
        exited: new Promise((r) =>
          proc.once('exit', (code, signal) => {
            writers.delete(w);
            r({ code, signal, stderr });
          }),
        ),
      };
      writers.add(w);
      return w;
    };
    const stopAll = async () => {
      const all = [...writers];
      for (const w of all) {
        w.killedByUs = true;
        w.proc.kill('SIGKILL');
      }
      return Promise.all(all.map((w) => w.exited));
    };

    let kills = 0; // writers that died by SIGKILL at any point (each may leave one unacknowledged commit)
    let lastRevision = 0;
    const totals = { rounds: 0, acked: 0, kills: 0, compactionKills: 0, enospcRefused: 0, unacked: 0 };

    const ackLines = (f: string): number => {
      try {
        return fs.readFileSync(f, 'utf8').split('\n').length - 1;
      } catch {
        return 0;
      }
    };
    const ackedNow = (): number => fs.readdirSync(acks).reduce((n, f) => n + ackLines(path.join(acks, f)), 0);

    /** Run writers until the round has MIN_ACKS acknowledged increments (and at least ROUND_MS, and until
     *  `during` is done; at most 30 s); keep WRITERS alive; with `chaos` kill -9 a writer that is up
     *  (it has acknowledged something) every 150-400 ms. */
    async function runWriters(
      opts: object,
      chaos: boolean,
      during?: () => Promise<void>,
    ): Promise<{ selfKills: number; badExits: string[] }> {
      let selfKills = 0;
      const badExits: string[] = [];
      const start = Date.now();
      const base = ackedNow();
      let duringDone = !during;
      const duringP = during?.().finally(() => {
        duringDone = true;
      });
      while (Date.now() - start < 30_000 && (ackedNow() - base < MIN_ACKS || Date.now() - start < ROUND_MS || !duringDone)) {
        while (writers.size < WRITERS) {
          const w = spawnWriter(opts);
          void w.exited.then((x) => {
            if (x.signal === 'SIGKILL') {
              kills++;
              if (!w.killedByUs) selfKills++;
            } else if (!w.killedByUs) badExits.push(`exit ${x.code} ${x.stderr.trim()}`);
          });
        }
        await sleep(rand(150, 400));
        if (chaos) {
          const up = [...writers].filter((w) => ackLines(w.ackFile) > 0);
          const victim = up[rand(0, up.length)];
          if (victim) {
            victim.killedByUs = true;
            victim.proc.kill('SIGKILL');
            await victim.exited;
          }
        }
      }
      await duringP;
      await stopAll();
      await sleep(50); // exit handlers above have counted
      return { selfKills, badExits };
    }

    /** Once writers are acknowledging, fill the tmpfs to the last page for `ms`, then free it. */
    async function diskFull(ms: number): Promise<void> {
      const base = ackedNow();
      const t0 = Date.now();
      while (ackedNow() - base < 10 && Date.now() - t0 < 20_000) await sleep(50);
      const filler = path.join(mnt, 'filler');
      const fd = fs.openSync(filler, 'w');
      const chunk = Buffer.alloc(4096);
      try {
        for (;;) fs.writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      }
      fs.closeSync(fd);
      await sleep(ms);
      fs.unlinkSync(filler);
    }

    for (const [i, kind] of PLAN.entries()) {
      const killsBefore = kills;
      const round = `round ${i + 1} ${kind}`;
      let extra = '';
      if (kind === 'kill') {
        const r = await runWriters({ compactBytes: 8192 }, true);
        t.same(r.badExits, [], `${round}: no writer failed on its own`);
      } else if (kind === 'kill-in-compaction') {
        // Until a writer has died inside a compaction (a quick round can end before one does), at most 3 more runs.
        const r = await runWriters({ compactBytes: 1024, dieInCompaction: 0.15 }, false);
        for (let more = 0; r.selfKills === 0 && more < 3; more++) {
          const again = await runWriters({ compactBytes: 1024, dieInCompaction: 0.15 }, false);
          r.selfKills += again.selfKills;
          r.badExits.push(...again.badExits);
        }
        t.same(r.badExits, [], `${round}: no writer failed on its own`);
        t.ok(r.selfKills > 0, `${round}: ${r.selfKills} writers killed themselves inside compaction`);
        totals.compactionKills += r.selfKills;
        extra = `, ${r.selfKills} killed inside compaction`;
      } else if (kind === 'enospc-append' || kind === 'enospc-compaction') {
        // Small compactBytes: with the disk full, compactions fail (kept log); appends fail mid-record.
        const r = await runWriters({ compactBytes: kind === 'enospc-compaction' ? 1024 : 1 << 20 }, false, () => diskFull(800));
        t.same(r.badExits, [], `${round}: no writer failed on its own`);
      } else if (kind === 'flipped-byte') {
        // A compaction may just have left one snapshot record: add records outside /chaos/ so that two
        // valid records follow the damaged one.
        const pad = new FileDatastore(dir);
        for (let n = 0; n < 3; n++) await pad.create(`/pad/${Date.now()}-${n}`, n);
        await pad.close();
        const before = fs.readFileSync(logPath);
        const lines: number[] = [0];
        for (let p = 0; p < before.length - 1; p++) if (before[p] === 0x0a) lines.push(p + 1);
        t.ok(lines.length >= 3, `${round}: the log has ${lines.length} records`);
        const at = lines[lines.length - 3]! + 12; // two valid records follow it
        const damaged = Buffer.from(before);
        damaged[at] = damaged[at]! ^ 0x20;
        fs.writeFileSync(logPath, damaged);
        const w = spawnWriter({});
        const guard = setTimeout(() => {
          w.killedByUs = true;
          w.proc.kill('SIGKILL');
        }, 30_000); // a writer that misses the damage must not hang the suite
        const x = await w.exited;
        clearTimeout(guard);
        t.equal(x.code, 4, `${round}: a writer stops with DatastoreCorrupt (${x.stderr.trim()})`);
        const reader = new FileDatastore(dir);
        const err = await reader.update('/chaos/c0', -1, 1).catch((e: unknown) => e);
        t.ok(err instanceof DatastoreCorrupt, `${round}: writes refused`);
        t.ok((await reader.list('/chaos/')).items.length === KEYS, `${round}: readers serve the last good state`);
        await reader.close();
        t.same(fs.readFileSync(logPath), damaged, `${round}: nothing was truncated`);
        fs.writeFileSync(logPath, before); // the operator restores the good copy
        extra = `, damage at byte ${at} refused`;
      } else if (kind === 'read-only') {
        const ro = path.join(mnt, 'ro');
        fs.mkdirSync(ro, { recursive: true });
        execFileSync('mount', ['--bind', dir, ro]);
        execFileSync('mount', ['-o', 'remount,ro,bind', ro]);
        const reader = new FileDatastore(ro);
        const r = await runWriters({ compactBytes: 2048 }, true, async () => {
          for (let n = 0; n < 5; n++) {
            await sleep(300);
            const err = await reader.create('/chaos/ro', 1).catch((e: unknown) => e);
            t.ok(
              err instanceof DatastoreUnavailable && /read-only/.test(err.message),
              `${round}: a write through the read-only mount is refused`,
            );
          }
        });
        const rw = new FileDatastore(dir);
        t.same(
          (await reader.list('/chaos/')).items,
          (await rw.list('/chaos/')).items,
          `${round}: the read-only reader follows the writers`,
        );
        await rw.close();
        await reader.close();
        execFileSync('umount', ['-l', ro]);
        t.same(r.badExits, [], `${round}: no writer failed on its own`);
      }

      // ---- invariants
      const fresh = new FileDatastore(dir);
      const { items, revision } = await fresh.list<number>('/chaos/');
      t.notOk(fresh.corruption(), `${round}: the store replays cleanly`);
      await fresh.close();
      const counters = new Map(items.map((kv) => [kv.key, kv.value]));
      const byRev = new Map<number, string>();
      const byKeyVal = new Map<string, number>();
      const ackedPerKey = new Map<string, number>();
      let acked = 0;
      let refused = 0;
      const problems: string[] = [];
      for (const f of fs.readdirSync(acks)) {
        for (const line of fs.readFileSync(path.join(acks, f), 'utf8').split('\n')) {
          if (!line) continue;
          if (line.startsWith('REFUSED')) {
            if (line.includes('ENOSPC')) refused++;
            continue;
          }
          const [key, revText, valText] = line.split(' ') as [string, string, string];
          const rev = Number(revText);
          const kv = `${key}=${valText}`;
          acked++;
          ackedPerKey.set(key, (ackedPerKey.get(key) ?? 0) + 1);
          if (byRev.has(rev) && byRev.get(rev) !== kv) problems.push(`I2: revision ${rev} acknowledged as ${byRev.get(rev)} and ${kv}`);
          if (byKeyVal.has(kv) && byKeyVal.get(kv) !== rev)
            problems.push(`I2: ${kv} acknowledged at revisions ${byKeyVal.get(kv)} and ${rev}`);
          byRev.set(rev, kv);
          byKeyVal.set(kv, rev);
          if (Number(valText) > (counters.get(key) ?? -1)) problems.push(`I1: ${kv} was acknowledged, the store has ${counters.get(key)}`);
        }
      }
      let committed = 0;
      for (const [key, v] of counters) {
        committed += v;
        if (v < (ackedPerKey.get(key) ?? 0)) problems.push(`I4: ${key} is ${v}, ${ackedPerKey.get(key)} increments were acknowledged`);
      }
      const unacked = committed - acked;
      if (unacked < 0 || unacked > kills)
        problems.push(`I4: ${committed} increments in the store, ${acked} acknowledged, ${kills} writers killed`);
      if (revision < lastRevision) problems.push(`I3: store revision went from ${lastRevision} to ${revision}`);
      t.same(problems.slice(0, 10), [], `${round}: invariants I1-I4 hold`);
      lastRevision = revision;
      totals.rounds++;
      totals.kills += kills - killsBefore;
      totals.enospcRefused = refused;
      totals.acked = acked;
      totals.unacked = unacked;
      t.comment(
        `${round}: ${acked} acknowledged increments so far, ${kills - killsBefore} writers killed${extra}, ${refused} ENOSPC refusals so far, ` +
          `${unacked} committed-unacknowledged (<= ${kills} kills), revision ${revision}, log ${fs.statSync(logPath).size} bytes`,
      );
    }
    t.ok(totals.enospcRefused > 0, `out-of-space appends were refused (${totals.enospcRefused}) and none was acknowledged`);
    t.comment(
      `fault suite: ${totals.rounds} rounds, ${totals.acked} acknowledged increments, ${totals.kills} kill -9 (${totals.compactionKills} inside compaction), ` +
        `${totals.enospcRefused} ENOSPC refusals, 1 flipped byte refused, read-only mount round; invariants held after every round`,
    );
  },
);
