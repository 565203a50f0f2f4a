// The house rules as a test: the tree is formatted and passes the linter (Biome, biome.json), so a
// change that breaks either shows up as one failed test in `make test` with Biome's own diagnostics.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'biome.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('biome.json not found above the test');
    dir = up;
  }
  return dir;
}

t.test('biome ci: every source and test file is formatted and lint-clean', (t) => {
  const root = repoRoot();
  const r = spawnSync(join(root, 'node_modules/.bin/biome'), ['ci', '--colors=off', '--error-on-warnings', '--max-diagnostics=20'], {
    cwd: root,
    encoding: 'utf8',
  });
  t.equal(r.status, 0, `biome ci failed (run \`make fmt\` to format):\n${r.stdout}${r.stderr}`);
  t.end();
});
