// test/run.sh runs test files in parallel, and each names what it creates in the kernel and /tmp after
// its run tag (test/helpers/run-tag.ts): two files running at once must get different tags, whatever
// TABBY_TEST_RUN the caller has (one tag for the whole run made cni/plugin and cni/resident add the same
// namespace at once: `ip netns add …: File exists`).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { runTag } from '../../helpers/run-tag.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** This environment without what tap gives its test processes: run.sh runs as from a shell. */
const outsideTap = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(_?TAP|_TAPJS|NODE_OPTIONS$|TS_NODE)/.test(k)));

t.test('test/run.sh gives each test file a run tag of its own', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}tags-`));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync(path.join(ROOT, 'test/run.sh'), ['helpers/run-tag-probe'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...outsideTap(), TABBY_TEST_RUN: 'shared', TABBY_RUN_TAG_DIR: dir, TABBY_TEST_LOG: path.join(dir, 'run.tap') },
  });
  t.equal(r.status, 0, 'the probes ran', { log: `${r.stdout}${r.stderr}` });
  t.match(r.stdout, /^2 passed, 0 failed, 0 skipped$/m);
  const tags = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.tag'))
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
  t.equal(tags.length, 2, 'both probes wrote their tag');
  t.not(tags[0], tags[1], `two files, two tags (${tags.join(', ')})`);
  t.ok(
    tags.every((tag) => /^tb[0-9a-z]{1,5}$/.test(tag)),
    `each tag is short enough for a 15-character interface name with a suffix (${tags.join(', ')})`,
  );
});
