// Loads proto/bgp/golden/*.hex (captured from BIRD 2 and GoBGP; see its README) for codec tests.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function goldenDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const d = path.join(dir, 'proto/bgp/golden');
    if (fs.existsSync(d)) return d;
    dir = path.dirname(dir);
  }
  throw new Error('proto/bgp/golden not found');
}

/** Messages of one golden file, as Buffers. */
export function golden(name: string): Buffer[] {
  return fs
    .readFileSync(path.join(goldenDir(), name), 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => Buffer.from(l.trim(), 'hex'));
}

export function goldenFiles(): string[] {
  return fs
    .readdirSync(goldenDir())
    .filter((f) => f.endsWith('.hex'))
    .sort();
}
