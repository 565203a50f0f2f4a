// tabby-node's V8 heap policy (src/agent/heap-policy.ts): which flags it sets, and that a flag set at
// run time really takes (V8 reads most heap flags only when the heap is created): a process that loads
// the policy and then allocates a burst keeps its young generation at 2 × 1 MB, one that does not grows it.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AGENT_V8_FLAGS, TIGHT_HEAP_MAX, flagsToSet, tightGrowth } from '../../../src/agent/heap-policy.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const policy = pathToFileURL(path.resolve(here, '../../../src/agent/heap-policy.js')).href;

t.test('flags the operator gave win; the others are set', async (t) => {
  t.same(flagsToSet(AGENT_V8_FLAGS, []), AGENT_V8_FLAGS);
  t.same(flagsToSet(AGENT_V8_FLAGS, ['--max-semi-space-size=16']), ['--heap-growing-percent=20'], 'a young-generation size of their own');
  t.same(flagsToSet(AGENT_V8_FLAGS, ['--heap_growing_percent=50', '']), ['--semi-space-growth-factor=1'], 'underscores too');
  t.same(flagsToSet(AGENT_V8_FLAGS, ['--max-old-space-size=4096', 'x']), AGENT_V8_FLAGS, 'unrelated flags leave the policy alone');
});

t.test('the old space grows in 20 % steps only while the live heap is small (with hysteresis)', async (t) => {
  t.equal(tightGrowth(100e6, true), true);
  t.equal(tightGrowth(TIGHT_HEAP_MAX + 1, true), false, 'a large table: V8 chooses (a full GC of it costs ~0.5 s)');
  t.equal(tightGrowth(TIGHT_HEAP_MAX * 0.75, false), false, 'not back at once');
  t.equal(tightGrowth(TIGHT_HEAP_MAX * 0.4, false), true, 'back once the heap is under half of it');
});

/** new space size (bytes) of a node process after a burst of short-lived allocation. */
function youngAfterBurst(nodeArgs: string[], loadPolicy: boolean): number {
  const code = `${loadPolicy ? `await import(${JSON.stringify(policy)});` : ''}
    const v8 = await import('node:v8');
    const keep = [];
    for (let i = 0; i < 3e6; i++) { const o = { a: i, b: 'x' + i }; if (i % 100 === 0) keep.push(o); }
    console.log(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);`;
  const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return Number(r.stdout.trim());
}

t.test('the young generation stays small once the policy is loaded (a flag set at run time takes)', async (t) => {
  const without = youngAfterBurst([], false);
  const withPolicy = youngAfterBurst([], true);
  const operator = youngAfterBurst(['--max-semi-space-size=16'], true);
  t.ok(without > 8e6, `without the policy the burst grows it (${(without / 1e6).toFixed(1)} MB)`);
  t.ok(withPolicy <= 4.2e6, `with the policy it stays ≤ 2 × 2 MB (${(withPolicy / 1e6).toFixed(1)} MB)`);
  t.ok(operator > 8e6, `an operator's --max-semi-space-size wins (${(operator / 1e6).toFixed(1)} MB)`);
});

t.test('tabby-node sets the policy before it loads its modules: the young generation stays 2 × 1 MB', async (t) => {
  // --version returns once every module of the agent is loaded; loading them (parsing ~200 modules)
  // grew the young generation to 2 × 4 MB when the policy was a static import among the others
  const main = path.resolve(here, '../../../src/agent/main.js');
  const report = `data:text/javascript,${encodeURIComponent(`import v8 from 'node:v8';
process.on('exit', () => process.stderr.write('NEW ' + v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size + '\\n'));`)}`;
  // through env -u: tap puts its own preload into every child's NODE_OPTIONS, which would load first
  const r = spawnSync('env', ['-u', 'NODE_OPTIONS', process.execPath, '--import', report, main, '--version'], { encoding: 'utf8' });
  t.match(r.stdout, /^tabby-node v/, 'the agent ran');
  const young = Number(/NEW (\d+)/.exec(r.stderr)?.[1]);
  t.ok(young > 0 && young <= 2.2 * 2 ** 20, `new space ${(young / 2 ** 20).toFixed(1)} MB after loading tabby-node (≤ 2.2 MB)`);
});
