// Test helper: one exclusive lock for the tests that write or compare the host's install paths
// (/usr/local, /opt/tabby, /etc/tabby, /etc/systemd/system, …): the Debian package test installs into
// them, the make install test checks that they did not change; tap runs files in parallel.
import fs from 'node:fs';
import { native } from '../../src/native/index.js';

const LOCK = '/run/lock/tabby-test-host-paths.lock';

/** Wait for the lock; release it with the returned function (t.teardown). */
export async function hostPathsLock(): Promise<() => void> {
  fs.mkdirSync('/run/lock', { recursive: true });
  const fd = fs.openSync(LOCK, 'a');
  await new Promise<void>((resolve, reject) => native().flockWait(fd, 'ex', (err) => (err ? reject(err) : resolve())));
  return () => {
    native().flock(fd, 'un');
    fs.closeSync(fd);
  };
}
