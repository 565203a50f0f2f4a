// Writing the file store's snapshot (compaction and restore, see file.ts): the snapshot record goes to a
// temp file beside the log, written fully, fsync'd, its size checked, renamed over the log, and the
// directory fsync'd. On any failure the temp file is unlinked and the old log stays as it was. Restore
// and an explicit compact do it all under the store's write lock (temp files left by one that died midway
// are removed first); the compaction after writes writes its snapshot without the lock and installs it
// under the lock with the records appended meanwhile (file.ts).
import fs from 'node:fs';
import path from 'node:path';

/** Test seam for the fault suite: called at each step of a compaction (a test kills itself there; a
 *  promise returned at 'temp-written' is awaited before the snapshot is synced). */
export type CompactStep = 'temp-open' | 'temp-written' | 'temp-synced' | 'renamed';
export type CompactStepHook = (s: CompactStep) => unknown;

const isTemp = (logName: string, name: string) => name.startsWith(`.${logName}.`) && name.endsWith('.tmp');

/** Replace `logPath` with the framed snapshot `buf`, all or nothing (rejects with the old log intact).
 *  The writes, the fsyncs and the rename run on libuv's threads: a snapshot is ~1 MB (its history holds
 *  every recent block write), and syncing it on tabby-node's event loop stopped every ADD in flight for
 *  the disk's flush (tens of ms under load). The caller holds the write lock throughout. */
export async function replaceLog(logPath: string, buf: Buffer, step: CompactStepHook): Promise<void> {
  removeStaleTemps(path.dirname(logPath), path.basename(logPath));
  const t = await writeSnapshot(logPath, buf, step, `${process.pid}`);
  await installSnapshot(t, Buffer.alloc(0), logPath, step);
}

/** A snapshot written beside the log, not yet in its place. */
export interface SnapshotTemp {
  path: string;
  file: fs.promises.FileHandle;
  size: number;
}

/** The snapshot written (not synced) to a temp file of its own name beside the log. Needs no lock: a
 *  compaction of another process may remove it (its temp files look stale), and installSnapshot then
 *  fails with the old log intact. */
export async function writeSnapshot(logPath: string, buf: Buffer, step: CompactStepHook, name: string): Promise<SnapshotTemp> {
  const tmp = path.join(path.dirname(logPath), `.${path.basename(logPath)}.${name}.tmp`);
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const file = await fs.promises.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    step('temp-open');
    await writeFully(file, buf);
    await step('temp-written');
    return { path: tmp, file, size: buf.length };
  } catch (e) {
    await dropSnapshot({ path: tmp, file, size: 0 });
    throw e;
  }
}

/** Under the lock: `tail` (the log's records after the snapshot's revision) appended, all of it synced
 *  and its size checked, renamed over the log, the directory synced. On failure the temp file goes and
 *  the old log stays. */
export async function installSnapshot(t: SnapshotTemp, tail: Buffer, logPath: string, step: CompactStepHook): Promise<void> {
  try {
    await writeFully(t.file, tail);
    await t.file.sync();
    const size = (await t.file.stat()).size;
    if (size !== t.size + tail.length) throw new Error(`snapshot is ${size} bytes on disk, ${t.size + tail.length} were written`);
    await t.file.close();
    step('temp-synced');
    await fs.promises.rename(t.path, logPath);
  } catch (e) {
    await dropSnapshot(t);
    throw e;
  }
  step('renamed');
  await fsyncDir(path.dirname(logPath));
}

/** A snapshot that will not be installed: closed and removed. */
export async function dropSnapshot(t: SnapshotTemp): Promise<void> {
  await t.file.close().catch(() => undefined);
  await fs.promises.unlink(t.path).catch(() => undefined);
}

async function writeFully(file: fs.promises.FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    const { bytesWritten } = await file.write(buf, off, buf.length - off);
    if (bytesWritten <= 0) throw new Error(`short write of the snapshot at byte ${off}`);
    off += bytesWritten;
  }
}

/** Temp files of compactions that died midway (the caller holds the lock; one another process is writing
 *  without it is removed too, and that compaction then fails harmlessly). */
export function removeStaleTemps(dir: string, logName: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (!isTemp(logName, name)) continue;
    try {
      fs.unlinkSync(path.join(dir, name));
    } catch {
      /* a directory, or gone */
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let d: fs.promises.FileHandle | undefined;
  try {
    d = await fs.promises.open(dir, 'r');
    await d.sync();
  } catch {
    /* best effort */
  } finally {
    await d?.close().catch(() => undefined);
  }
}
