// How a file-store process learns that another process wrote: fs.watch on the directory (inotify) while
// any watch is active, plus a poll fallback (inotify limits, missed events) that compares the log's
// inode and size with what this process has read. Waiters are plain callbacks woken all at once.
import fs from 'node:fs';

export class LogNotifier {
  private readonly waiters = new Set<() => void>();
  private watchers = 0;
  private fsWatcher: fs.FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;

  /** `behind()` says whether the log on disk differs from what this process has read. */
  constructor(
    private readonly dir: string,
    private readonly logFile: string,
    private readonly pollMs: number,
    private readonly behind: () => boolean,
  ) {}

  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves on the next wake() or when the signal aborts. */
  wait(signal: AbortSignal | undefined, closed: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted || closed) {
        resolve();
        return;
      }
      const done = () => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  watchStarted(): void {
    if (this.watchers++ > 0) return;
    try {
      this.fsWatcher = fs.watch(this.dir, { persistent: false }, (_ev, name) => {
        if (name === null || name === this.logFile) this.wake();
      });
      this.fsWatcher.on('error', () => this.stop());
    } catch {
      /* inotify limits: the poll below still works */
    }
    this.pollTimer = setInterval(() => {
      if (this.waiters.size > 0 && this.behind()) this.wake();
    }, this.pollMs);
  }

  watchStopped(): void {
    if (--this.watchers > 0) return;
    this.stop();
  }

  stop(): void {
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }
}
