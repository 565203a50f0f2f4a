// Route latency stamps: completed by the first kernel apply that started after them, first stamp kept.
import t from 'tap';
import { RouteLatency } from '../../../src/agent/route-latency.js';

t.test('update → kernel and withdraw → removed', async (t) => {
  let now = 0;
  const seen: [string, number][] = [];
  const l = new RouteLatency((k, s) => seen.push([k, s]), () => now);
  l.onBest('10.0.1.0/26');          // t=0
  now = 100; l.onBest('10.0.1.0/26'); // changed again: keeps t=0
  now = 150; l.onBest('10.0.2.0/26');
  now = 200; l.onApplied(0.1);      // apply ran 100..200: carries the stamps taken at or before 100
  t.same(seen, [['add', 0.2]]);
  t.equal(l.pending, 1);
  now = 300; l.onWithdrawn('10.0.1.0/26');
  now = 400; l.onApplied(0.05);     // started at 350: both pending stamps done
  t.same(seen, [['add', 0.2], ['add', 0.25], ['withdraw', 0.1]]);
  t.equal(l.pending, 0);
  l.onBest('10.0.3.0/26'); l.onWithdrawn('10.0.3.0/26');
  t.equal(l.pending, 1, 'a withdraw cancels the pending add');
});
