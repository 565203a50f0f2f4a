// Does this kernel have IPIP? (a throw-away ipip link in a throw-away namespace)
import { spawnSync } from 'node:child_process';
import { runTag } from '../../helpers/run-tag.js';

let cached: boolean | undefined;
export function kernelHasIpipSync(): boolean {
  if (cached !== undefined) return cached;
  const ns = `${runTag()}agip`;
  spawnSync('ip', ['netns', 'add', ns]);
  const r = spawnSync('ip', ['-n', ns, 'link', 'add', 'tbprobe', 'type', 'ipip']);
  spawnSync('ip', ['netns', 'del', ns]);
  cached = r.status === 0;
  return cached;
}
