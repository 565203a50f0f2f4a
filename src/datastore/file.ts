// The embedded `file` datastore: one directory, no server, safe for many processes on one machine
// (the lab runs one tabby-node per network namespace, all sharing it).
//
// Layout of the directory (0700, files 0600, owned by the user running tabby — anything else is refused
// or tightened, so no other local user can read the store or hold its lock):
//   datastore.log   the store itself: an append-only log, one record per line, `<crc32 hex8> <json>\n`
//                   (file-log.ts). Records: {o:'put',r,k,v} | {o:'del',r,k} | {o:'snap',r,c,kv,h} (first
//                   line after compaction). Every write is exactly one record appended (write(2) looped
//                   until complete) and fdatasync'd before it is acknowledged; concurrent writes of a
//                   process share one fdatasync (group commit, file-commit.ts). A crash mid-write
//                   leaves a torn last line whose CRC or missing newline gives it away; readers ignore it
//                   and the next writer truncates it — so a half-written value is never seen. A damaged
//                   record with valid records AFTER it is corruption, not a torn tail: nothing is cut,
//                   writes fail with DatastoreCorrupt (file + offset), readers keep the state before it.
//   datastore.lock  flock(2)ed exclusively around every write (the kernel drops it if the holder dies).
//
// Every process replays the log into memory (file-state.ts). Reads catch up by reading the bytes
// appended since last time (one stat + read); a write takes the lock, catches up, checks its CAS
// condition against the now-current state, appends, releases, then waits for its fdatasync: visible
// once appended, acknowledged once synced (a write that depends on it comes later in the log, so its
// sync covers it). Revisions are the record numbers: global, monotonic, like etcd's. A process that
// sees the log shrink or a record out of sequence drops its view and replays from the start; its
// watches get DatastoreCompacted and re-list. Compaction (after the writes that pushed the log past
// the threshold were acknowledged, under the lock) replaces the log with one `snap` record (all keys +
// the last `historyKeep` events, file-compact.ts); other processes notice the new inode. A compaction
// that fails keeps the old log; the writes before it stay committed and acknowledged.
// Watch sees other processes' writes through fs.watch on the directory plus a poll fallback.
import fs from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import { log } from '../common/log.js';
import {
  DatastoreCompacted,
  DatastoreConflict,
  DatastoreCorrupt,
  DatastoreExists,
  DatastoreNotFound,
  DatastoreUnavailable,
  type Datastore,
  type KVPair,
  checkTxnOps,
  checkTxnPreconditions,
  type ListResult,
  type TxnOp,
  type WatchEvent,
} from './types.js';
import { LogNotifier } from './file-notify.js';
import { StoreLock } from './file-lock.js';
import { openStoreFile, prepareStoreDir, StoreAccessError } from './file-dir.js';
import { frame, lastRevision, maxRevision, scanRecords, writeAll, type SnapRec, type TxnRec, type WriteRec } from './file-log.js';
import {
  dropSnapshot,
  installSnapshot,
  removeStaleTemps,
  replaceLog,
  writeSnapshot,
  type CompactStepHook,
  type SnapshotTemp,
} from './file-compact.js';
import { GroupCommit, LogFds } from './file-commit.js';
import { clone, LogState, sequenceProblem, toEvent } from './file-state.js';

export type { CompactStep } from './file-compact.js';

export interface FileDatastoreOptions {
  /** fdatasync after every write (default true; TABBY_DATASTORE_FSYNC=0 turns it off, e.g. on tmpfs). */
  fsync?: boolean;
  /** Events kept for watchers after a compaction (default 256; a watcher further behind re-lists). */
  historyKeep?: number;
  /** Compact when this many bytes were appended since the last snapshot (default 512 KiB). Every
   *  short-lived process (the CNI plugin) replays snapshot + tail at start, so this bounds its cost. */
  compactBytes?: number;
  /** Watch poll fallback when fs.watch is silent (default 250 ms). */
  pollMs?: number;
  /** Give up waiting for the write lock after this long (default 15 s) with DatastoreUnavailable. */
  lockTimeoutMs?: number;
  /** Test seam: called at each step of a compaction. */
  onCompactStep?: CompactStepHook;
}

export const LOG_FILE = 'datastore.log';
export const LOCK_FILE = 'datastore.lock';

const errCode = (e: unknown) => String((e as NodeJS.ErrnoException)?.code ?? (e as Error)?.message ?? e);

export class FileDatastore implements Datastore {
  readonly kind = 'file' as const;
  readonly dir: string;
  private readonly logPath: string;
  private readonly opts: Required<FileDatastoreOptions>;
  private readonly lock: StoreLock;
  private readonly commits: GroupCommit;
  /** The log's descriptors and their fdatasyncs (`fds.syncs` counts them). */
  readonly fds = new LogFds();
  private fd = -1;
  private ino = -1;
  /** Bytes of the current log file consumed (always at a record boundary). */
  private offset = 0;
  /** Size of the snapshot record that opens the current file (compaction threshold is relative to it). */
  private baseSize = 0;
  /** The replayed view: keys, revision, recent events (file-state.ts). */
  private readonly s: LogState;
  private readonly notifier: LogNotifier;
  private closed = false;
  private readonly logger;
  /** The log opened read-only (a read-only file system): reads work, writes are refused. */
  private readOnly: string | undefined;
  /** Set when replay found a damaged record with valid records after it (cleared by a new log file). */
  private corrupt: DatastoreCorrupt | undefined;
  /** After a failed compaction, the next try waits until the log has grown past this offset. */
  private compactRetryAt = 0;
  /** The compaction running behind the writes, if one is (maybeCompact). */
  private compacting: Promise<void> | undefined;

  constructor(dir: string, opts: FileDatastoreOptions = {}) {
    this.dir = path.resolve(dir);
    this.logPath = path.join(this.dir, LOG_FILE);
    this.opts = {
      fsync: opts.fsync ?? process.env.TABBY_DATASTORE_FSYNC !== '0',
      historyKeep: opts.historyKeep ?? 256,
      compactBytes: opts.compactBytes ?? 512 * 1024,
      pollMs: opts.pollMs ?? 250,
      lockTimeoutMs: opts.lockTimeoutMs ?? 15_000,
      onCompactStep: opts.onCompactStep ?? (() => undefined),
    };
    this.logger = log('datastore', { backend: 'file', dir: this.dir });
    this.s = new LogState(this.opts.historyKeep, () => this.notifier?.wake());
    this.notifier = new LogNotifier(this.dir, LOG_FILE, this.opts.pollMs, () => {
      try {
        const st = fs.statSync(this.logPath);
        return st.ino !== this.ino || st.size !== this.offset;
      } catch {
        return true;
      }
    });
    try {
      prepareStoreDir(this.dir, this.logger);
      const lockPath = path.join(this.dir, LOCK_FILE);
      this.lock = new StoreLock(openStoreFile(lockPath, this.logger).fd, lockPath, this.dir, this.opts.lockTimeoutMs, () => this.closed);
      native(); // fail early when the addon is missing
      this.catchUp(false);
      this.commits = new GroupCommit(this.lock, {
        begin: () => {
          this.catchUp(true);
          this.writable();
        },
        append: (rec) => this.append(rec),
        sync: (fd) => this.sync(fd),
        after: () => this.maybeCompact(),
      });
    } catch (e) {
      if (e instanceof DatastoreCorrupt || e instanceof DatastoreUnavailable) throw e;
      const why = e instanceof StoreAccessError ? e.message : `cannot open the file datastore in ${this.dir}: ${(e as Error).message}`;
      throw new DatastoreUnavailable(this.dir, why);
    }
  }

  async revision(): Promise<number> {
    this.catchUp(false);
    return this.s.rev;
  }

  async get<T>(key: string): Promise<KVPair<T> | undefined> {
    this.catchUp(false);
    const e = this.s.data.get(key);
    return e ? { key, value: clone(e.value) as T, revision: e.revision } : undefined;
  }

  async getShared<T>(key: string): Promise<KVPair<Readonly<T>> | undefined> {
    this.catchUp(false);
    const e = this.s.data.get(key);
    return e ? { key, value: e.value as T, revision: e.revision } : undefined;
  }

  async list<T>(prefix: string): Promise<ListResult<T>> {
    this.catchUp(false);
    const items: KVPair<T>[] = [];
    for (const key of this.s.keysWithPrefix(prefix)) {
      const e = this.s.data.get(key)!;
      items.push({ key, value: clone(e.value) as T, revision: e.revision });
    }
    items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { items, revision: this.s.rev };
  }

  async create<T>(key: string, value: T): Promise<KVPair<T>> {
    checkValue(key, value);
    return this.write(
      () => {
        if (this.s.data.has(key)) throw new DatastoreExists(key);
        return { o: 'put', r: this.s.rev + 1, k: key, v: value };
      },
      (r) => ({ key, value, revision: r }),
    );
  }

  async update<T>(key: string, value: T, expectedRevision: number): Promise<KVPair<T>> {
    checkValue(key, value);
    return this.write(
      () => {
        const e = this.s.data.get(key);
        if (!e) throw new DatastoreNotFound(key);
        if (e.revision !== expectedRevision) throw new DatastoreConflict(key, expectedRevision, e.revision);
        return { o: 'put', r: this.s.rev + 1, k: key, v: value };
      },
      (r) => ({ key, value, revision: r }),
    );
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    await this.write(
      () => {
        const e = this.s.data.get(key);
        if (!e) throw new DatastoreNotFound(key);
        if (expectedRevision !== undefined && e.revision !== expectedRevision)
          throw new DatastoreConflict(key, expectedRevision, e.revision);
        return { o: 'del', r: this.s.rev + 1, k: key };
      },
      () => undefined,
    );
  }

  async commit(ops: TxnOp[]): Promise<number[]> {
    checkTxnOps(ops);
    return this.write(
      () => {
        checkTxnPreconditions(ops, (k) => this.s.data.get(k)?.revision);
        const rec: TxnRec = {
          o: 'txn',
          r: this.s.rev + 1,
          ops: ops.map((o) => (o.op === 'delete' ? { o: 'del' as const, k: o.key } : { o: 'put' as const, k: o.key, v: o.value })),
        };
        return rec;
      },
      (r) => ops.map((_, i) => r + i),
    );
  }

  async *watch<T>(prefix: string, fromRevision: number, signal?: AbortSignal): AsyncIterable<WatchEvent<T>> {
    this.catchUp(false);
    let next = fromRevision <= 0 ? this.s.rev + 1 : fromRevision;
    const pos = { next };
    const generation = this.s.generation;
    this.notifier.watchStarted();
    this.s.watchPositions.add(pos);
    try {
      while (!signal?.aborted && !this.closed) {
        // This process replayed the log from scratch (it shrank or was rewritten): events may be missing.
        if (this.s.generation !== generation) throw new DatastoreCompacted(prefix, next, this.s.compactRev + 1);
        if (next <= this.s.compactRev) throw new DatastoreCompacted(prefix, next, this.s.compactRev + 1);
        const start = next - (this.s.compactRev + 1);
        const batch: WatchEvent<T>[] = [];
        for (let i = Math.max(0, start); i < this.s.history.length; i++) {
          const h = this.s.history[i]!;
          if (!h.k.startsWith(prefix)) continue;
          batch.push(toEvent<T>(h));
        }
        const end = this.s.rev + 1;
        for (const ev of batch) {
          if (signal?.aborted || this.closed) return;
          next = ev.revision + 1;
          pos.next = next;
          yield ev;
        }
        next = Math.max(next, end);
        pos.next = next;
        if (this.s.rev + 1 > next) continue; // more arrived while the consumer ran
        await this.notifier.wait(signal, this.closed);
        this.catchUp(false);
      }
    } finally {
      this.s.watchPositions.delete(pos);
      this.notifier.watchStopped();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.compacting; // a compaction behind the writes finishes (or drops its snapshot) first
    if (this.closed) return;
    this.closed = true;
    this.notifier.stop();
    this.notifier.wake();
    this.lock.close();
    this.fds.close(this.fd);
    this.fd = -1;
  }

  /** Rewrite the log now as one snapshot keeping the last `keepEvents` events for watchers
   *  (default historyKeep); older watch positions then get DatastoreCompacted. */
  async compact(keepEvents = this.opts.historyKeep): Promise<void> {
    await this.lock.run(async () => {
      this.catchUp(true);
      this.writable();
      this.s.history = keepEvents > 0 ? this.s.history.slice(-keepEvents) : [];
      const err = await this.compactLocked();
      if (err) throw new DatastoreUnavailable(this.dir, `compaction failed (${errCode(err)}): the log was kept as it is`);
    });
  }

  /** Where replay stopped at damage with valid records after it, if it did (for `datastore check`). */
  corruption(): DatastoreCorrupt | undefined {
    this.catchUp(false);
    return this.corrupt;
  }

  /** What `datastore check` reports: the log's size, revision, keys, and damage if any. */
  inspect(): { file: string; bytes: number; revision: number; keys: number; corrupt?: DatastoreCorrupt } {
    this.catchUp(false);
    return {
      file: this.logPath,
      bytes: fs.fstatSync(this.fd).size,
      revision: this.s.rev,
      keys: this.s.data.size,
      ...(this.corrupt ? { corrupt: this.corrupt } : {}),
    };
  }

  /** Replace the whole store with `entries`, all or nothing: one snapshot written beside the log and
   *  renamed over it (a corrupt log may be replaced this way). Its revision is past every revision seen,
   *  so other processes reload and their watches re-list. Returns the new revision. */
  async restore(entries: { key: string; value: unknown }[]): Promise<number> {
    for (const e of entries) checkValue(e.key, e.value);
    return this.lock.run(async () => {
      this.catchUp(true);
      if (this.readOnly) throw new DatastoreUnavailable(this.dir, `${this.logPath} is read-only (${this.readOnly}): restore refused`);
      // Past every revision any process may have seen, the records after damage included.
      const r = Math.max(this.s.rev, maxRevision(fs.readFileSync(this.logPath))) + 1;
      const snap: SnapRec = { o: 'snap', r, c: r, kv: entries.map((e) => [e.key, r, e.value]), h: [] };
      const err = await this.compactLocked(snap);
      if (err) throw new DatastoreUnavailable(this.dir, `restore failed (${errCode(err)}): the store is unchanged`);
      this.s.apply(snap);
      this.corrupt = undefined;
      this.s.generation++;
      this.notifier.wake();
      return r;
    });
  }

  // ---------------------------------------------------------------- writing

  /** Queue the write for the next group commit: under the lock it is decided against the current state
   *  and appended; it resolves once an fdatasync covering it returned. */
  private async write<R>(decide: () => WriteRec, result: (revision: number) => R): Promise<R> {
    return result(await this.commits.write(decide));
  }

  /** Under the lock: throw when this store must not be written. */
  private writable(): void {
    if (this.corrupt) throw this.corrupt;
    if (this.readOnly) throw new DatastoreUnavailable(this.dir, `${this.logPath} is read-only (${this.readOnly}): writes are refused`);
  }

  /** Under the lock: append one record and apply it; returns the fd it went to (synced by the caller).
   *  The append is the commit point: what happens after it never turns the write into a failure. */
  private append(rec: WriteRec): number {
    const buf = frame(rec);
    try {
      writeAll((b, off, len) => fs.writeSync(this.fd, b, off, len), buf);
    } catch (e) {
      // A partial record has no newline, so no reader applied it; cut it so the log ends on a boundary.
      try {
        fs.ftruncateSync(this.fd, this.offset);
      } catch {
        /* the next writer cuts the torn tail */
      }
      throw new DatastoreUnavailable(this.dir, `cannot append to ${this.logPath} (${errCode(e)}): the write was not made`);
    }
    this.offset += buf.length;
    this.s.apply(rec);
    return this.fd;
  }

  /** Make the appended records durable, on a thread (TABBY_DATASTORE_FSYNC=0: not at all). */
  private async sync(fd: number): Promise<void> {
    if (!this.opts.fsync) return;
    try {
      await this.fds.sync(fd);
    } catch (e) {
      // The records are in the file (other processes may read them already) but their durability is unknown.
      throw new DatastoreUnavailable(
        this.dir,
        `fdatasync of ${this.logPath} failed (${errCode(e)}): the write is visible but may not survive a crash`,
      );
    }
  }

  private needsCompaction(): boolean {
    return this.offset - this.baseSize > Math.max(this.opts.compactBytes, this.baseSize) && this.offset >= this.compactRetryAt;
  }

  /** After acknowledged writes grew the log past the threshold: compact, in the background. The
   *  snapshot is taken under the lock, written and synced without it (writers go on, appending to the
   *  old log), then installed under the lock with the records appended meanwhile — writers waited for
   *  the whole ~1 MB write and sync before (40–60 ms at 8 ADDs at once, load 4). A failure is logged and
   *  retried after another `compactBytes` of log; it never fails a write. */
  private async maybeCompact(): Promise<void> {
    if (this.compacting || !this.needsCompaction()) return;
    this.compacting = this.compactBehind()
      .catch(() => undefined) // closed, or the lock is busy: a later write tries again
      .finally(() => {
        this.compacting = undefined;
      });
  }

  private async compactBehind(): Promise<void> {
    let taken: { snap: SnapRec; at: number; ino: number } | undefined;
    await this.lock.run(() => {
      this.catchUp(true);
      if (this.corrupt || this.readOnly || !this.needsCompaction()) return;
      removeStaleTemps(this.dir, LOG_FILE);
      taken = { snap: this.s.snapshot(), at: this.offset, ino: this.ino };
    });
    if (!taken) return;
    const { snap, at, ino } = taken;
    const buf = frame(snap);
    let temp: SnapshotTemp | undefined;
    try {
      temp = await writeSnapshot(this.logPath, buf, this.opts.onCompactStep, `${process.pid}`);
      const t = temp;
      const done = await this.lock.run(async () => {
        this.catchUp(true);
        // Another process compacted or restored meanwhile (a new log file), or this one closed: drop ours.
        if (this.closed || this.ino !== ino || this.corrupt || this.offset < at) return false;
        const tail = Buffer.allocUnsafe(this.offset - at);
        for (let got = 0; got < tail.length; ) {
          const n = fs.readSync(this.fd, tail, got, tail.length - got, at + got);
          if (n === 0) throw new Error(`the log ended at ${at + got} bytes, expected ${this.offset}`);
          got += n;
        }
        await installSnapshot(t, tail, this.logPath, this.opts.onCompactStep);
        this.adoptCompacted(snap, buf.length, tail.length);
        return true;
      });
      if (!done) await dropSnapshot(t);
    } catch (e) {
      if (temp) await dropSnapshot(temp);
      this.compactRetryAt = this.offset + this.opts.compactBytes;
      if (!this.closed) this.compactionFailed(e);
    }
  }

  /** Under the lock: rewrite the log as one snapshot record (file-compact.ts). On failure the old log
   *  stays and the error is returned (logged) rather than thrown. */
  private async compactLocked(given?: SnapRec): Promise<Error | undefined> {
    const snap: SnapRec = given ?? this.s.snapshot();
    const buf = frame(snap);
    try {
      await replaceLog(this.logPath, buf, this.opts.onCompactStep);
    } catch (e) {
      this.compactionFailed(e);
      return e as Error;
    }
    this.adoptCompacted(snap, buf.length, 0);
    return undefined;
  }

  /** Under the lock, the compacted log in place (`snapBytes` of snapshot, then `tailBytes` of records
   *  appended while it was written): read on from its end. Nothing to do once closed. */
  private adoptCompacted(snap: SnapRec, snapBytes: number, tailBytes: number): void {
    if (this.closed) return;
    try {
      this.openLog();
    } catch (e) {
      this.fd = -1; // the next catch-up opens it again
      this.logger.warn({ err: errCode(e) }, 'cannot reopen the compacted datastore log');
    }
    this.offset = snapBytes + tailBytes;
    this.baseSize = snapBytes;
    this.logger.debug({ revision: snap.r, keys: snap.kv.length, bytes: snapBytes, tail: tailBytes }, 'compacted datastore log');
  }

  private compactionFailed(e: unknown): void {
    this.logger.warn(
      { err: errCode(e), log: this.logPath, bytes: this.offset },
      'datastore compaction failed: the log is kept as it is (writes go on)',
    );
  }

  // ---------------------------------------------------------------- reading

  private openLog(): void {
    this.fds.close(this.fd); // after a group's fdatasync in flight on it
    this.fd = -1;
    const f = openStoreFile(this.logPath, this.logger, true);
    this.fd = f.fd;
    this.ino = f.ino;
    this.readOnly = f.readOnly ? (f.reason ?? 'read-only') : undefined;
  }

  /** Bring the in-memory state up to the end of the log. With the lock held, a torn tail (from a
   *  writer that died mid-write) is cut off; without it, an incomplete tail is left for later.
   *  Anything out of place (the log shrank, a record out of sequence, damage before valid records)
   *  makes this process replay from scratch once; damage that is still there then is corruption. */
  private catchUp(locked: boolean): void {
    if (this.closed) return;
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(this.logPath);
    } catch {
      st = undefined;
    }
    let replaced = false;
    if (this.fd < 0 || st === undefined || st.ino !== this.ino) {
      this.openLog();
      replaced = this.s.rev > 0 || this.corrupt !== undefined;
      this.corrupt = undefined;
      this.offset = 0;
      this.baseSize = 0;
      st = fs.fstatSync(this.fd);
      // The log was deleted under us: a new, empty store.
      if (st.size === 0 && replaced) this.startOver('the datastore log was replaced by an empty one');
    } else if (this.corrupt) {
      return; // keep serving the last good state; a new log file (restore) clears it
    } else if (st.size < this.offset) {
      this.startOver(`the datastore log shrank from ${this.offset} to ${st.size} bytes`);
    }
    for (let pass = 0; ; pass++) {
      const from = this.offset;
      const problem = this.readTail(st.size, locked, replaced);
      if (!problem) return;
      if (problem.kind === 'behind' && pass === 0) {
        this.startOver(problem.detail); // replay the new log from its start, as for any store gone back
        st = fs.fstatSync(this.fd);
        continue;
      }
      if (from === 0 || pass > 0) {
        this.corrupt = new DatastoreCorrupt(this.logPath, problem.offset, problem.detail);
        this.logger.error(
          { file: this.logPath, offset: problem.offset, detail: problem.detail },
          'datastore log is corrupt: writes are refused, nothing is truncated',
        );
        return;
      }
      this.startOver(problem.detail);
      st = fs.fstatSync(this.fd);
    }
  }

  /** Read and apply what follows `offset`; report what stopped the replay, if anything. */
  private readTail(
    size: number,
    locked: boolean,
    replaced: boolean,
  ): { kind: 'corrupt' | 'sequence' | 'behind'; offset: number; detail: string } | undefined {
    if (size <= this.offset) return undefined;
    const len = size - this.offset;
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(this.fd, buf, got, len - got, this.offset + got);
      if (n === 0) break;
      got += n;
    }
    const scan = scanRecords(buf.subarray(0, got));
    const base = this.offset;
    let skipped = 0; // the last revision skipped after a snapshot behind this view
    for (const { rec, start, end } of scan.recs) {
      const at = base + start;
      if (this.s.skipThrough > 0 && rec.o !== 'snap') {
        const expect = (skipped || this.s.skipFrom) + 1;
        if (rec.r !== expect) {
          this.offset = at;
          return { kind: 'behind', offset: at, detail: `record of revision ${rec.r} after a snapshot behind this view` };
        }
        skipped = lastRevision(rec);
        if (skipped <= this.s.skipThrough) {
          this.offset = base + end; // read from the old log already
          if (skipped === this.s.skipThrough) this.s.skipThrough = 0;
          continue;
        }
        return { kind: 'behind', offset: at, detail: 'a record past this view inside one already read' };
      }
      if (at === 0 && rec.o !== 'snap' && replaced && this.s.rev > 0) {
        // A replaced log that does not open with a snapshot is a different store: start over.
        this.s.reset();
      }
      const bad = sequenceProblem(rec, at, this.s.rev);
      if (bad) {
        this.offset = at;
        return { kind: 'sequence', offset: at, detail: bad };
      }
      if (at === 0 && rec.o === 'snap') this.baseSize = end - start;
      this.s.apply(rec);
      this.offset = base + end;
    }
    if (this.s.skipThrough > 0 && !scan.stop) {
      // The new log ends before this view: the store went back in time after all (a copy put in place).
      return { kind: 'behind', offset: this.offset, detail: `the log ends before revision ${this.s.skipThrough} seen here` };
    }
    if (scan.stop?.kind === 'corrupt') {
      return { kind: 'corrupt', offset: this.offset, detail: 'a damaged record with valid records after it' };
    }
    if (locked && scan.stop && !this.readOnly) {
      this.logger.warn(
        { offset: this.offset, dropped: got - scan.end },
        'datastore log has a torn last record (a writer died mid-write): truncating it',
      );
      fs.ftruncateSync(this.fd, this.offset);
      if (this.opts.fsync) fs.fdatasyncSync(this.fd);
    }
    return undefined;
  }

  /** Drop this process's view and replay the log from its first byte. */
  private startOver(why: string): void {
    this.logger.warn(
      { file: this.logPath, revision: this.s.rev, why },
      'datastore log changed under this process: replaying it from the start',
    );
    this.s.reset();
    this.offset = 0;
    this.baseSize = 0;
  }
}

function checkValue(key: string, value: unknown): void {
  if (typeof key !== 'string' || key === '') throw new TypeError('datastore key must be a non-empty string');
  if (value === undefined || typeof value === 'function') throw new TypeError(`datastore value for "${key}" must be JSON-serializable`);
}
