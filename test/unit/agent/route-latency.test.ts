// Route latency stamps: a batch is completed by the first kernel apply that started after it.
import t from 'tap';
import { RouteLatency } from '../../../src/agent/route-latency.js';

t.test('update → kernel and withdraw → removed, per batch', async (t) => {
  let now = 0;
  const seen: [string, number][] = [];
  const l = new RouteLatency(
    (k, s) => seen.push([k, s]),
    () => now,
  );
  l.onBatch(true, false); // t=0
  now = 150;
  l.onBatch(true, true); // t=150
  now = 200;
  l.onApplied(0.1); // apply ran 100..200: carries only the batch of t=0
  t.same(seen, [['add', 0.2]]);
  t.equal(l.size, 1);
  now = 400;
  l.onApplied(0.05); // started at 350
  t.same(seen, [
    ['add', 0.2],
    ['add', 0.25],
    ['withdraw', 0.25],
  ]);
  t.equal(l.size, 0);
  l.onBatch(false, false);
  t.equal(l.size, 0, 'an empty batch is not stamped');
});
