// Writing the file store's snapshot (compaction and restore, see file.ts): the snapshot record goes to a
// temp file beside the log, written fully, fsync'd, its size checked, renamed over the log, and the
// directory fsync'd. On any failure the temp file is unlinked and the old log stays as it was. The
// caller holds the store's write lock, so no other compaction runs: temp files left by one that died
// midway are removed first.
import fs from 'node:fs';
import path from 'node:path';

/** Test seam for the fault suite: called at each step of a compaction (a test kills itself there). */
export type CompactStep = 'temp-open' | 'temp-written' | 'temp-synced' | 'renamed';

const isTemp = (logName: string, name: string) => name.startsWith(`.${logName}.`) && name.endsWith('.tmp');

/** Replace `logPath` with the framed snapshot `buf`, all or nothing (rejects with the old log intact).
 *  The writes, the fsyncs and the rename run on libuv's threads: a snapshot is ~1 MB (its history holds
 *  every recent block write), and syncing it on tabby-node's event loop stopped every ADD in flight for
 *  the disk's flush (tens of ms under load). The caller holds the write lock throughout. */
export async function replaceLog(logPath: string, buf: Buffer, step: (s: CompactStep) => void): Promise<void> {
  const dir = path.dirname(logPath);
  const tmp = path.join(dir, `.${path.basename(logPath)}.${process.pid}.tmp`);
  let tf: fs.promises.FileHandle | undefined;
  try {
    removeStaleTemps(dir, path.basename(logPath));
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    tf = await fs.promises.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    step('temp-open');
    for (let off = 0; off < buf.length; ) {
      const { bytesWritten } = await tf.write(buf, off, buf.length - off);
      if (bytesWritten <= 0) throw new Error(`short write of the snapshot at byte ${off}`);
      off += bytesWritten;
    }
    step('temp-written');
    await tf.sync();
    const size = (await tf.stat()).size;
    if (size !== buf.length) throw new Error(`snapshot is ${size} bytes on disk, ${buf.length} were written`);
    await tf.close();
    tf = undefined;
    step('temp-synced');
    await fs.promises.rename(tmp, logPath);
  } catch (e) {
    await tf?.close().catch(() => undefined);
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw e;
  }
  step('renamed');
  await fsyncDir(dir);
}

/** Temp files of compactions that died midway (the caller holds the lock: nobody else compacts now). */
function removeStaleTemps(dir: string, logName: string): void {
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
