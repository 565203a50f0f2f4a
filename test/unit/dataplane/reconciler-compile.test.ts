// What the optimising compiler needs for the reconciler's pass. TurboFan compiles a hot function on a
// worker thread with its own memory (zones, from malloc, freed when it is done); the whole pass as one
// function (dump, sorting the dirty keys, both batches, failures) was compiled at ~3.6 MB for 40–60 ms,
// and again in a withdraw-all (its remove branch never ran in the ingest before: a deoptimisation) —
// which added to the agent's RSS peak. In small parts each hot loop is compiled on its own. Measured in
// a child with compiles made one at a time (--no-concurrent-recompilation), so each one's memory is the
// zone total while it runs (--trace-zone-stats), through the route path of a 200k ingest and withdraw-all.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { routePath } from '../../helpers/route-path-child.js';

const N = 200_000;

const code = `
${routePath()}
const hops = Array.from({ length: 1000 }, () => Object.freeze(['10.0.0.2']));
for (let i = 0; i < ${N}; i++) {
  tab.update4((11 << 24) + (i << 8), 24, hops[i % 1000], '10.0.0.2');
  if (i % 5000 === 4999) await rr.apply();
}
for (let i = 0; i < ${N}; i++) {
  tab.remove4((11 << 24) + (i << 8), 24);
  if (i % 5000 === 4999) await rr.apply();
}
await rr.apply();
console.log('LEFT ' + tab.size);
`;

/** Per optimising compile (one at a time): its function and the most zone memory while it ran. */
function compiles(out: string): { name: string; bytes: number }[] {
  const jobs: { name: string; bytes: number }[] = [];
  let cur: { name: string; bytes: number } | undefined;
  for (const l of out.split('\n')) {
    const m = /^\[compiling method 0x[0-9a-f]+ <JSFunction ([^ >]*)/.exec(l);
    if (m) jobs.push((cur = { name: m[1] || '(anonymous)', bytes: 0 }));
    else if (l.startsWith('{"type": "v8-zone-trace"') && cur)
      cur.bytes = Math.max(cur.bytes, (JSON.parse(l) as { stats: { allocated: number } }).stats.allocated);
    else if (l.startsWith('[completed optimizing')) cur = undefined;
  }
  return jobs;
}

t.test('the reconciler pass of a 200k ingest and withdraw-all is compiled in small parts', async (t) => {
  const r = spawnSync(
    'env',
    [
      '-u',
      'NODE_OPTIONS',
      process.execPath,
      '--no-concurrent-recompilation',
      '--trace-opt',
      '--trace-zone-stats',
      '--zone-stats-tolerance=131072',
      '--input-type=module',
      '-e',
      code,
    ],
    { encoding: 'utf8', timeout: 300_000, maxBuffer: 256 << 20 },
  );
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^LEFT 0$/m, 'every route added and withdrawn');
  const jobs = compiles(r.stdout);
  t.ok(jobs.length > 10, `${jobs.length} optimising compiles seen`);
  const ours = jobs.filter((j) => ['pass', 'resync', 'classify', 'settleRemoves', 'settleApplies', 'moveDown'].includes(j.name));
  const top = [...ours].sort((a, b) => b.bytes - a.bytes).slice(0, 4);
  const largest = [...jobs].sort((a, b) => b.bytes - a.bytes)[0]!;
  t.comment(
    `reconciler pass compiles: ${top.map((j) => `${j.name} ${(j.bytes / 1e6).toFixed(2)} MB`).join(', ')}; largest of all: ${largest.name} ${(largest.bytes / 1e6).toFixed(2)} MB`,
  );
  t.ok(ours.length > 0, 'the pass is hot enough to be optimised');
  // before: the pass as one function, 3.6 MB (and 2.7 MB on a recompile); in parts ≤ 0.9 MB each
  const max = top[0]?.bytes ?? 0;
  t.ok(max < 2e6, `the largest compile of the pass's code ${(max / 1e6).toFixed(2)} MB < 2 MB`);
});
