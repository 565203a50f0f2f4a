// Writing the file store's snapshot (compaction and restore, see file.ts): the snapshot record goes to a
// temp file beside the log, written fully, fsync'd, its size checked, renamed over the log, and the
// directory fsync'd. On any failure the temp file is unlinked and the old log stays as it was. The
// caller holds the store's write lock, so no other compaction runs: temp files left by one that died
// midway are removed first.
import fs from 'node:fs';
import path from 'node:path';
import { writeAll } from './file-log.js';

/** Test seam for the fault suite: called at each step of a compaction (a test kills itself there). */
export type CompactStep = 'temp-open' | 'temp-written' | 'temp-synced' | 'renamed';

const isTemp = (logName: string, name: string) => name.startsWith(`.${logName}.`) && name.endsWith('.tmp');

/** Replace `logPath` with the framed snapshot `buf`, all or nothing (throws with the old log intact). */
export function replaceLog(logPath: string, buf: Buffer, step: (s: CompactStep) => void): void {
  const dir = path.dirname(logPath);
  const tmp = path.join(dir, `.${path.basename(logPath)}.${process.pid}.tmp`);
  let tfd = -1;
  try {
    removeStaleTemps(dir, path.basename(logPath));
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    tfd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    step('temp-open');
    writeAll((b, off, len) => fs.writeSync(tfd, b, off, len), buf);
    step('temp-written');
    fs.fsyncSync(tfd);
    const size = fs.fstatSync(tfd).size;
    if (size !== buf.length) throw new Error(`snapshot is ${size} bytes on disk, ${buf.length} were written`);
    fs.closeSync(tfd);
    tfd = -1;
    step('temp-synced');
    fs.renameSync(tmp, logPath);
  } catch (e) {
    if (tfd >= 0) {
      try {
        fs.closeSync(tfd);
      } catch {
        /* closed */
      }
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* not created */
    }
    throw e;
  }
  step('renamed');
  fsyncDir(dir);
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

function fsyncDir(dir: string): void {
  let dfd = -1;
  try {
    dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
  } catch {
    /* best effort */
  } finally {
    if (dfd >= 0) fs.closeSync(dfd);
  }
}
