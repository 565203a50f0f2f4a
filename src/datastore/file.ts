// The embedded `file` datastore: one directory, no server, safe for many processes on one machine
// (the lab runs one tabby-node per network namespace, all sharing it).
//
// Layout of the directory:
//   datastore.log   the store itself: an append-only log, one record per line, `<crc32 hex8> <json>\n`.
//                   Records: {o:'put',r,k,v} | {o:'del',r,k} | {o:'snap',r,c,kv,h} (first line after compaction).
//                   Every write is exactly one record appended with one write(2) and fdatasync'd: the
//                   append is the commit point. A crash mid-write leaves a torn last line whose CRC or
//                   missing newline gives it away; readers ignore it and the next writer truncates it —
//                   so a half-written value is never seen.
//   datastore.lock  flock(2)ed exclusively around every write (the kernel drops it if the holder dies).
//
// Every process replays the log into memory (key → value, revision) and keeps a window of recent
// events for watch. Reads catch up by reading the bytes appended since last time (one stat + read);
// a write takes the lock, catches up, checks the CAS condition against the now-current state,
// appends, releases. Revisions are the record numbers: global, monotonic, like etcd's.
// Compaction (by the writer that pushes the log past the threshold, under the lock): a new file with
// one `snap` record (all current keys + the last `historyKeep` events) is written to a temp file,
// fsync'd and renamed over datastore.log; other processes notice the new inode and switch over.
// Watch sees other processes' writes through fs.watch on the directory plus a poll fallback.
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { native } from '../native/index.js';
import { log } from '../common/log.js';
import {
  DatastoreCompacted, DatastoreConflict, DatastoreExists, DatastoreNotFound, DatastoreUnavailable,
  type Datastore, type KVPair, type ListResult, type WatchEvent,
} from './types.js';

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
}

export const LOG_FILE = 'datastore.log';
export const LOCK_FILE = 'datastore.lock';

interface Entry { value: unknown; revision: number }
interface HistEvent { t: 'put' | 'delete'; k: string; r: number; v?: unknown; p?: unknown }
type PutRec = { o: 'put'; r: number; k: string; v: unknown };
type DelRec = { o: 'del'; r: number; k: string };
type SnapRec = { o: 'snap'; r: number; c: number; kv: [string, number, unknown][]; h: HistEvent[] };
type Rec = PutRec | DelRec | SnapRec;

const NL = 0x0a;

function frame(rec: Rec): Buffer {
  const json = JSON.stringify(rec);
  const body = Buffer.from(json, 'utf8');
  const crc = (crc32(body) >>> 0).toString(16).padStart(8, '0');
  return Buffer.concat([Buffer.from(`${crc} `, 'latin1'), body, Buffer.from('\n', 'latin1')]);
}

/** Parse one framed line (without the newline); undefined when its CRC or JSON is bad. */
function unframe(line: Buffer): Rec | undefined {
  if (line.length < 10 || line[8] !== 0x20) return undefined;
  const body = line.subarray(9);
  const want = parseInt(line.subarray(0, 8).toString('latin1'), 16);
  if (!Number.isFinite(want) || (crc32(body) >>> 0) !== want) return undefined;
  try { return JSON.parse(body.toString('utf8')) as Rec; } catch { return undefined; }
}

const clone = <T>(v: T): T => (v === undefined ? v : structuredClone(v));

export class FileDatastore implements Datastore {
  readonly kind = 'file' as const;
  readonly dir: string;
  private readonly logPath: string;
  private readonly opts: Required<FileDatastoreOptions>;
  private readonly lockFd: number;
  private fd = -1;
  private ino = -1;
  /** Bytes of the current log file consumed (always at a record boundary). */
  private offset = 0;
  /** Size of the snapshot record that opens the current file (compaction threshold is relative to it). */
  private baseSize = 0;
  private rev = 0;
  private readonly data = new Map<string, Entry>();
  /** Contiguous events (compactRev+1 .. rev]. */
  private history: HistEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private watchers = 0;
  /** Where each active watch of this process stands (history it still needs is kept). */
  private readonly watchPositions = new Set<{ next: number }>();
  private fsWatcher: fs.FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly logger;

  constructor(dir: string, opts: FileDatastoreOptions = {}) {
    this.dir = path.resolve(dir);
    this.logPath = path.join(this.dir, LOG_FILE);
    this.opts = {
      fsync: opts.fsync ?? process.env.TABBY_DATASTORE_FSYNC !== '0',
      historyKeep: opts.historyKeep ?? 256,
      compactBytes: opts.compactBytes ?? 512 * 1024,
      pollMs: opts.pollMs ?? 250,
      lockTimeoutMs: opts.lockTimeoutMs ?? 15_000,
    };
    this.logger = log('datastore', { backend: 'file', dir: this.dir });
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
      this.lockFd = fs.openSync(path.join(this.dir, LOCK_FILE), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    } catch (e) {
      throw new DatastoreUnavailable(this.dir, `cannot open the file datastore in ${this.dir}: ${(e as Error).message}`);
    }
    native(); // fail early when the addon is missing
    this.catchUp(false);
  }

  /** The oldest revision a watch can start from minus one. */
  private get compactRev(): number { return this.rev - this.history.length; }

  async revision(): Promise<number> {
    this.catchUp(false);
    return this.rev;
  }

  async get<T>(key: string): Promise<KVPair<T> | undefined> {
    this.catchUp(false);
    const e = this.data.get(key);
    return e ? { key, value: clone(e.value) as T, revision: e.revision } : undefined;
  }

  async list<T>(prefix: string): Promise<ListResult<T>> {
    this.catchUp(false);
    const items: KVPair<T>[] = [];
    for (const [key, e] of this.data) {
      if (key.startsWith(prefix)) items.push({ key, value: clone(e.value) as T, revision: e.revision });
    }
    items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { items, revision: this.rev };
  }

  async create<T>(key: string, value: T): Promise<KVPair<T>> {
    checkValue(key, value);
    return this.write(() => {
      if (this.data.has(key)) throw new DatastoreExists(key);
      return { o: 'put', r: this.rev + 1, k: key, v: value };
    }, (r) => ({ key, value, revision: r }));
  }

  async update<T>(key: string, value: T, expectedRevision: number): Promise<KVPair<T>> {
    checkValue(key, value);
    return this.write(() => {
      const e = this.data.get(key);
      if (!e) throw new DatastoreNotFound(key);
      if (e.revision !== expectedRevision) throw new DatastoreConflict(key, expectedRevision, e.revision);
      return { o: 'put', r: this.rev + 1, k: key, v: value };
    }, (r) => ({ key, value, revision: r }));
  }

  async delete(key: string, expectedRevision?: number): Promise<void> {
    await this.write(() => {
      const e = this.data.get(key);
      if (!e) throw new DatastoreNotFound(key);
      if (expectedRevision !== undefined && e.revision !== expectedRevision) throw new DatastoreConflict(key, expectedRevision, e.revision);
      return { o: 'del', r: this.rev + 1, k: key };
    }, () => undefined);
  }

  async *watch<T>(prefix: string, fromRevision: number, signal?: AbortSignal): AsyncIterable<WatchEvent<T>> {
    this.catchUp(false);
    let next = fromRevision <= 0 ? this.rev + 1 : fromRevision;
    const pos = { next };
    this.watchStarted();
    this.watchPositions.add(pos);
    try {
      while (!signal?.aborted && !this.closed) {
        if (next <= this.compactRev) throw new DatastoreCompacted(prefix, next, this.compactRev + 1);
        const start = next - (this.compactRev + 1);
        const batch: WatchEvent<T>[] = [];
        for (let i = Math.max(0, start); i < this.history.length; i++) {
          const h = this.history[i]!;
          if (!h.k.startsWith(prefix)) continue;
          batch.push(toEvent<T>(h));
        }
        const end = this.rev + 1;
        for (const ev of batch) {
          if (signal?.aborted || this.closed) return;
          next = ev.revision + 1;
          pos.next = next;
          yield ev;
        }
        next = Math.max(next, end);
        pos.next = next;
        if (this.rev + 1 > next) continue; // more arrived while the consumer ran
        await this.waitForChange(signal);
        this.catchUp(false);
      }
    } finally {
      this.watchPositions.delete(pos);
      this.watchStopped();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopFsWatch();
    for (const w of [...this.waiters]) w();
    // Writers already queued (or a lock wait still pending on a worker thread) use the lock fd:
    // close it after them.
    const lockFd = this.lockFd;
    void this.lockQueue.then(() => this.abandonedWait).then(() => { try { fs.closeSync(lockFd); } catch { /* already closed */ } });
    if (this.fd >= 0) { try { fs.closeSync(this.fd); } catch { /* already closed */ } this.fd = -1; }
  }

  /** Rewrite the log now as one snapshot keeping the last `keepEvents` events for watchers
   *  (default historyKeep); older watch positions then get DatastoreCompacted. */
  async compact(keepEvents = this.opts.historyKeep): Promise<void> {
    await this.locked(() => {
      this.catchUp(true);
      this.history = keepEvents > 0 ? this.history.slice(-keepEvents) : [];
      this.compactLocked();
    });
  }

  // ---------------------------------------------------------------- writing

  /** Run `fn` holding the cross-process lock. Writers of this instance queue on a promise chain;
   *  the lock is tried without blocking first, then waited for on a worker thread (the kernel hands
   *  it over in turn — polling with sleeps starves some processes under contention). */
  private async locked<R>(fn: () => R): Promise<R> {
    if (this.closed) throw new DatastoreUnavailable(this.dir, 'the datastore is closed');
    const prev = this.lockQueue;
    let release!: () => void;
    this.lockQueue = new Promise<void>((r) => { release = r; });
    try {
      await prev;
      await this.abandonedWait;
      if (this.closed) throw new DatastoreUnavailable(this.dir, 'the datastore is closed');
      if (!native().flock(this.lockFd, 'ex')) await this.waitForLock();
      try {
        if (this.closed) throw new DatastoreUnavailable(this.dir, 'the datastore is closed');
        return fn();
      } finally {
        native().flock(this.lockFd, 'un');
      }
    } finally {
      release();
    }
  }

  private lockQueue: Promise<void> = Promise.resolve();
  /** A blocking wait that timed out is still pending on its thread: the next waiter starts after it. */
  private abandonedWait: Promise<void> = Promise.resolve();

  private async waitForLock(): Promise<void> {
    const done = new Promise<Error | null>((resolve) => native().flockWait(this.lockFd, 'ex', resolve));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), this.opts.lockTimeoutMs); });
    const r = await Promise.race([done, timedOut]);
    clearTimeout(timer);
    if (r === 'timeout') {
      // The thread still waits; when it gets the lock, hand it straight back.
      this.abandonedWait = done.then((err) => {
        if (!err && !this.closed) native().flock(this.lockFd, 'un');
      });
      throw new DatastoreUnavailable(this.dir, `could not lock ${path.join(this.dir, LOCK_FILE)} within ${this.opts.lockTimeoutMs} ms (another process holds it)`);
    }
    if (r) throw new DatastoreUnavailable(this.dir, `cannot lock ${path.join(this.dir, LOCK_FILE)}: ${r.message}`);
  }

  /** Take the lock, catch up, decide, append, release. The critical section is synchronous,
   *  so no other code of this process interleaves with it. */
  private async write<R>(decide: () => PutRec | DelRec, result: (revision: number) => R): Promise<R> {
    const rev = await this.locked(() => {
      this.catchUp(true);
      const rec = decide();
      this.append(rec);
      return rec.r;
    });
    this.wake();
    return result(rev);
  }

  /** Under the lock: append one record, make it durable, apply it, maybe compact. */
  private append(rec: PutRec | DelRec): void {
    const buf = frame(rec);
    let written = 0;
    while (written < buf.length) written += fs.writeSync(this.fd, buf, written, buf.length - written);
    if (this.opts.fsync) fs.fdatasyncSync(this.fd);
    this.offset += buf.length;
    this.apply(rec);
    if (this.offset - this.baseSize > Math.max(this.opts.compactBytes, this.baseSize)) this.compactLocked();
  }

  /** Under the lock: rewrite the log as one snapshot record (temp file + fsync + rename + fsync dir). */
  private compactLocked(): void {
    this.trimHistory(this.opts.historyKeep);
    const snap: SnapRec = {
      o: 'snap', r: this.rev, c: this.compactRev,
      kv: [...this.data].map(([k, e]) => [k, e.revision, e.value]),
      h: this.history,
    };
    const buf = frame(snap);
    const tmp = path.join(this.dir, `.${LOG_FILE}.${process.pid}.tmp`);
    const tfd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeSync(tfd, buf);
      fs.fsyncSync(tfd);
    } finally {
      fs.closeSync(tfd);
    }
    fs.renameSync(tmp, this.logPath);
    this.fsyncDir();
    this.openLog();
    this.offset = buf.length;
    this.baseSize = buf.length;
    this.logger.debug({ revision: this.rev, keys: this.data.size, bytes: buf.length }, 'compacted datastore log');
  }

  private fsyncDir(): void {
    let dfd = -1;
    try { dfd = fs.openSync(this.dir, 'r'); fs.fsyncSync(dfd); } catch { /* best effort */ } finally { if (dfd >= 0) fs.closeSync(dfd); }
  }

  // ---------------------------------------------------------------- reading

  private openLog(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = fs.openSync(this.logPath, fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o644);
    this.ino = fs.fstatSync(this.fd).ino;
  }

  /** Bring the in-memory state up to the end of the log. With the lock held, a torn tail
   *  (from a writer that died mid-write) is cut off; without it, an incomplete tail is left for later. */
  private catchUp(locked: boolean): void {
    if (this.closed) return;
    let st: fs.Stats | undefined;
    try { st = fs.statSync(this.logPath); } catch { st = undefined; }
    let reopened = false;
    if (this.fd < 0 || st === undefined || st.ino !== this.ino) {
      this.openLog();
      this.offset = 0;
      this.baseSize = 0;
      st = fs.fstatSync(this.fd);
      reopened = this.rev > 0;
      // The log was deleted under us: a new, empty store.
      if (st.size === 0 && reopened) this.reset();
    } else if (st.size < this.offset) {
      this.logger.warn({ size: st.size, offset: this.offset }, 'datastore log shrank: reloading');
      this.offset = 0;
      this.baseSize = 0;
    }
    if (st.size === this.offset) return;
    const len = st.size - this.offset;
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(this.fd, buf, got, len - got, this.offset + got);
      if (n === 0) break;
      got += n;
    }
    let pos = 0;
    while (pos < got) {
      const nl = buf.indexOf(NL, pos);
      if (nl < 0 || nl >= got) break;
      const rec = unframe(buf.subarray(pos, nl));
      if (!rec) break;
      // A replaced log that does not open with a snapshot is a different store: start over.
      if (reopened && pos === 0 && rec.o !== 'snap') this.reset();
      this.apply(rec, this.offset + pos === 0 ? nl + 1 : 0);
      pos = nl + 1;
    }
    this.offset += pos;
    if (locked && pos < got) {
      this.logger.warn({ offset: this.offset, dropped: got - pos }, 'datastore log has a torn last record (a writer died mid-write): truncating it');
      fs.ftruncateSync(this.fd, this.offset);
      if (this.opts.fsync) fs.fdatasyncSync(this.fd);
    }
  }

  private reset(): void {
    this.data.clear();
    this.history = [];
    this.rev = 0;
  }

  private apply(rec: Rec, snapSize = 0): void {
    if (rec.o === 'snap') {
      if (snapSize) this.baseSize = snapSize;
      if (this.rev >= rec.c && this.rev <= rec.r) {
        // We were inside the kept window: replay only the events we have not seen.
        for (const h of rec.h) if (h.r > this.rev) this.applyEvent(h);
      } else {
        this.data.clear();
        for (const [k, r, v] of rec.kv) this.data.set(k, { value: v, revision: r });
        this.history = rec.h.slice();
        this.rev = rec.r;
        this.wake();
      }
      return;
    }
    if (rec.r !== this.rev + 1) {
      // Never expected (records are appended under the lock in order); reload rather than diverge.
      this.logger.error({ record: rec.r, have: this.rev }, 'datastore log out of sequence');
    }
    if (rec.o === 'put') this.applyEvent({ t: 'put', k: rec.k, r: rec.r, v: rec.v });
    else this.applyEvent({ t: 'delete', k: rec.k, r: rec.r });
  }

  /** Keep the last `keep` events — and every event a watcher of this process has not delivered yet. */
  private trimHistory(keep: number): void {
    let drop = this.history.length - keep;
    for (const pos of this.watchPositions) drop = Math.min(drop, pos.next - (this.compactRev + 1));
    if (drop > 0) this.history = this.history.slice(drop);
  }

  private applyEvent(h: HistEvent): void {
    const prev = this.data.get(h.k);
    const ev: HistEvent = prev === undefined ? h : { ...h, p: prev.value };
    if (h.t === 'put') this.data.set(h.k, { value: h.v, revision: h.r });
    else this.data.delete(h.k);
    this.rev = h.r;
    this.history.push(ev);
    if (this.history.length > this.opts.historyKeep * 2) this.trimHistory(this.opts.historyKeep);
    this.wake();
  }

  // ---------------------------------------------------------------- change notification

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private waitForChange(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted || this.closed) { resolve(); return; }
      const done = () => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private watchStarted(): void {
    if (this.watchers++ > 0) return;
    try {
      this.fsWatcher = fs.watch(this.dir, { persistent: false }, (_ev, name) => {
        if (name === null || name === LOG_FILE) this.wake();
      });
      this.fsWatcher.on('error', () => this.stopFsWatch());
    } catch { /* inotify limits: the poll below still works */ }
    this.pollTimer = setInterval(() => {
      if (this.waiters.size === 0) return;
      try {
        const st = fs.statSync(this.logPath);
        if (st.ino !== this.ino || st.size !== this.offset) this.wake();
      } catch { this.wake(); }
    }, this.opts.pollMs);
  }

  private watchStopped(): void {
    if (--this.watchers > 0) return;
    this.stopFsWatch();
  }

  private stopFsWatch(): void {
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }
}

function toEvent<T>(h: HistEvent): WatchEvent<T> {
  const previous = h.p === undefined ? {} : { previous: clone(h.p) as T };
  return h.t === 'put'
    ? { type: 'put', key: h.k, value: clone(h.v) as T, revision: h.r, ...previous }
    : { type: 'delete', key: h.k, revision: h.r, ...previous };
}

function checkValue(key: string, value: unknown): void {
  if (typeof key !== 'string' || key === '') throw new TypeError('datastore key must be a non-empty string');
  if (value === undefined || typeof value === 'function') throw new TypeError(`datastore value for "${key}" must be JSON-serializable`);
}
