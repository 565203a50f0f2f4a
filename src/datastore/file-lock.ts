// The file store's cross-process write lock: flock(2) on datastore.lock (the kernel drops it when the
// holder dies). Writers of one process queue on a promise chain; the lock is tried without blocking
// first, then waited for on a worker thread (the kernel hands it over in turn — polling with sleeps
// starves some processes under contention), giving up after a timeout with DatastoreUnavailable.
import fs from 'node:fs';
import { native } from '../native/index.js';
import { DatastoreUnavailable } from './types.js';

export class StoreLock {
  private queue: Promise<void> = Promise.resolve();
  /** A blocking wait that timed out is still pending on its thread: the next waiter starts after it. */
  private abandonedWait: Promise<void> = Promise.resolve();

  constructor(
    private readonly fd: number,
    private readonly file: string,
    private readonly dir: string,
    private readonly timeoutMs: number,
    private readonly isClosed: () => boolean,
  ) {}

  /** Run `fn` holding the lock; this process's other holders wait until it settled. A synchronous fn has
   *  nothing of this process interleave with it; an async one (a compaction syncing its snapshot on a
   *  libuv thread) lets the event loop — readers, the rest of an ADD — run meanwhile, but no writer. */
  async run<R>(fn: () => R | Promise<R>): Promise<R> {
    this.checkOpen();
    const prev = this.queue;
    let release!: () => void;
    this.queue = new Promise<void>((r) => {
      release = r;
    });
    try {
      await prev;
      await this.abandonedWait;
      this.checkOpen();
      if (!native().flock(this.fd, 'ex')) await this.waitForLock();
      try {
        this.checkOpen();
        return await fn();
      } finally {
        native().flock(this.fd, 'un');
      }
    } finally {
      release();
    }
  }

  /** Close the lock file once queued writers (and a wait still pending on a thread) are done with it. */
  close(): void {
    const fd = this.fd;
    void this.queue
      .then(() => this.abandonedWait)
      .then(() => {
        try {
          fs.closeSync(fd);
        } catch {
          /* already closed */
        }
      });
  }

  private checkOpen(): void {
    if (this.isClosed()) throw new DatastoreUnavailable(this.dir, 'the datastore is closed');
  }

  private async waitForLock(): Promise<void> {
    const done = new Promise<Error | null>((resolve) => native().flockWait(this.fd, 'ex', resolve));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    const r = await Promise.race([done, timedOut]);
    clearTimeout(timer);
    if (r === 'timeout') {
      // The thread still waits; when it gets the lock, hand it straight back.
      this.abandonedWait = done.then((err) => {
        if (!err && !this.isClosed()) native().flock(this.fd, 'un');
      });
      throw new DatastoreUnavailable(this.dir, `could not lock ${this.file} within ${this.timeoutMs} ms (another process holds it)`);
    }
    if (r) throw new DatastoreUnavailable(this.dir, `cannot lock ${this.file}: ${r.message}`);
  }
}
