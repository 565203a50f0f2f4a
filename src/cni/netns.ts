// Is a path a network namespace? The CNI_NETNS a runtime passes must be one (a bind-mounted
// /var/run/netns/X or /proc/PID/ns/net); anything else — a plain file, a directory, another
// namespace type — is CNI error 3 before anything is allocated.
import fs from 'node:fs';

/** statfs(2) f_type of the nsfs pseudo file system (linux/magic.h NSFS_MAGIC). */
const NSFS_MAGIC = 0x6e736673;

/** A namespace file (nsfs); when the path is a /proc magic link, its target must read "net:[inode]"
 *  (a bind mount of another namespace type cannot be told apart without entering it). */
export function isNetworkNamespace(p: string): boolean {
  if (!p) return false;
  try {
    if (fs.statfsSync(p).type !== NSFS_MAGIC) return false;
    const st = fs.lstatSync(p);
    return !st.isSymbolicLink() || /^net:\[\d+\]$/.test(fs.readlinkSync(p));
  } catch {
    return false;
  }
}
