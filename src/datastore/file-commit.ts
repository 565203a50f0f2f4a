// Group commit for the file store (see file.ts): the writes of one process queue up; one flush takes the
// write lock, catches up, decides and appends each queued write in turn (each sees the ones before it,
// so compare-and-swap is exactly as if they ran one by one), releases the lock, then makes them all
// durable with ONE fdatasync on a libuv thread — the event loop is not blocked and other processes may
// write meanwhile — and only then acknowledges them. Writes that arrive during a flush form the next
// group. A write never resolves before its bytes are synced; a write whose append failed is rejected
// alone; a failed fdatasync rejects the whole group.
import fs from 'node:fs';
import type { WriteRec } from './file-log.js';
import type { StoreLock } from './file-lock.js';

/** Most writes appended under one lock hold (bounds how long other processes wait for it). */
const MAX_GROUP = 256;

interface Pending {
  decide: () => WriteRec;
  resolve: (revision: number) => void;
  reject: (e: unknown) => void;
}

export interface CommitTarget {
  /** Under the lock: catch up with the log and throw when it must not be written. */
  begin(): void;
  /** Under the lock: append one record and apply it (throws when it was not made); returns the log fd. */
  append(rec: WriteRec): number;
  /** The bytes up to every appended record are durable (fdatasync of `fd`); rejects with the error to report. */
  sync(fd: number): Promise<void>;
  /** After a group was acknowledged (compaction, wake watchers). */
  after(): Promise<void>;
}

export class GroupCommit {
  private queue: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly lock: StoreLock,
    private readonly target: CommitTarget,
  ) {}

  /** Queue one write; resolves with its revision once it is durable. `decide` runs under the lock
   *  against the current state and returns the record, or throws (conflict, not found…). */
  write(decide: () => WriteRec): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ decide, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        let group: Pending[] = [];
        const appended: { p: Pending; revision: number }[] = [];
        let fd = -1;
        try {
          fd = await this.lock.run(() => {
            // Taken once the lock is held: writes queued while waiting for it join this group.
            group = this.queue.splice(0, MAX_GROUP);
            this.target.begin();
            let logFd = -1;
            for (const p of group) {
              try {
                const rec = p.decide();
                logFd = this.target.append(rec);
                appended.push({ p, revision: rec.r });
              } catch (e) {
                p.reject(e);
              }
            }
            return logFd;
          });
        } catch (e) {
          // The lock or the catch-up failed: nothing was appended.
          if (group.length === 0) group = this.queue.splice(0, MAX_GROUP);
          for (const p of group) p.reject(e);
          continue;
        }
        if (appended.length === 0) continue;
        try {
          if (fd >= 0) await this.target.sync(fd);
        } catch (e) {
          for (const a of appended) a.p.reject(e);
          continue;
        }
        for (const a of appended) a.p.resolve(a.revision);
        await this.target.after();
      }
    } finally {
      this.flushing = false;
    }
  }
}

/** The log's file descriptors: fdatasync on a thread, and a close that waits for syncs in flight on
 *  the fd (a compaction or a catch-up reopens the log while a group is being synced). */
export class LogFds {
  private readonly syncing = new Map<number, number>();
  private readonly closeLater = new Set<number>();
  /** fdatasync calls made (for the benchmark and tests). */
  syncs = 0;

  sync(fd: number): Promise<void> {
    this.syncing.set(fd, (this.syncing.get(fd) ?? 0) + 1);
    this.syncs++;
    return new Promise<void>((resolve, reject) => {
      fs.fdatasync(fd, (err) => {
        const n = this.syncing.get(fd)! - 1;
        if (n > 0) this.syncing.set(fd, n);
        else {
          this.syncing.delete(fd);
          if (this.closeLater.delete(fd)) this.closeNow(fd);
        }
        if (err) reject(err);
        else resolve();
      });
    });
  }

  close(fd: number): void {
    if (fd < 0) return;
    if (this.syncing.has(fd)) this.closeLater.add(fd);
    else this.closeNow(fd);
  }

  private closeNow(fd: number): void {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
  }
}
