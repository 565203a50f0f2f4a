import type { CommandModule } from 'yargs';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The package version, read from package.json (works from src/ and dist/src/). */
export function tabbyVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++, dir = path.dirname(dir)) {
    try {
      return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      /* keep looking upward */
    }
  }
  return 'unknown';
}

export const versionCommand: CommandModule = {
  command: 'version',
  describe: 'print the tabbyctl version',
  handler: () => {
    process.stdout.write(`Client Version:    v${tabbyVersion()}\n`);
  },
};
