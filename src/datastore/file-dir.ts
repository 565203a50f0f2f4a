// Opening the file store's directory and files so that only the user running tabby can read the
// store or take its lock: the directory is 0700 and the files 0600, owned by this user. A store made
// with wider modes is tightened (logged); a directory or file owned by another user is refused —
// that user could read every key and hold the lock to stop every writer.
// Files open with O_NOFOLLOW (a symlink planted in the directory is not followed). On a read-only
// file system an existing file opens read-only: readers still work, writes are refused.
import fs from 'node:fs';
import type { Logger } from '../common/log.js';

export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

export class StoreAccessError extends Error {}

const euid = (): number | undefined => process.geteuid?.();

function checkOwner(p: string, st: fs.Stats, what: string): void {
  const me = euid();
  if (me !== undefined && st.uid !== me) {
    throw new StoreAccessError(
      `${what} ${p} belongs to uid ${st.uid}, not to this user (uid ${me}): refusing to use a store another user controls (chown it or choose another TABBY_DATASTORE_DIR)`,
    );
  }
}

/** Create the directory (0700) or check an existing one: a directory, ours, no group/other bits. */
export function prepareStoreDir(dir: string, logger: Logger): void {
  fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  const st = fs.statSync(dir);
  if (!st.isDirectory()) throw new StoreAccessError(`${dir} is not a directory`);
  checkOwner(dir, st, 'the datastore directory');
  if ((st.mode & 0o777) !== DIR_MODE) {
    try {
      fs.chmodSync(dir, DIR_MODE);
      logger.warn({ dir, mode: (st.mode & 0o777).toString(8) }, 'datastore directory was readable by others: set to 0700');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EROFS') throw e;
      logger.warn({ dir }, 'datastore directory is on a read-only file system: its mode cannot be tightened');
    }
  }
}

export interface StoreFile {
  fd: number;
  readOnly: boolean;
  ino: number;
  reason?: string;
}

/** Open (creating 0600) a file of the store; ours only; tightened to 0600; read-only where it must. */
export function openStoreFile(p: string, logger: Logger, append = false): StoreFile {
  const { O_RDWR, O_RDONLY, O_CREAT, O_APPEND, O_NOFOLLOW } = fs.constants;
  let fd: number;
  let readOnly = false;
  let reason: string | undefined;
  try {
    fd = fs.openSync(p, O_RDWR | O_CREAT | O_NOFOLLOW | (append ? O_APPEND : 0), FILE_MODE);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EROFS' && code !== 'EACCES' && code !== 'EPERM') throw e;
    fd = fs.openSync(p, O_RDONLY | O_NOFOLLOW);
    readOnly = true;
    reason = code;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new StoreAccessError(`${p} is not a regular file`);
    checkOwner(p, st, 'the datastore file');
    if ((st.mode & 0o777) !== FILE_MODE && !readOnly) {
      fs.fchmodSync(fd, FILE_MODE);
      logger.warn({ file: p, mode: (st.mode & 0o777).toString(8) }, 'datastore file was readable by others: set to 0600');
    }
    return { fd, readOnly, ino: st.ino, ...(reason ? { reason } : {}) };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}
