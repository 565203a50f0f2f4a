// The lab's ping plan: every pair up to the limit; beyond it a sample in which every pod sends and
// answers equally often with distinct destinations — and mapLimit keeps its bound and order.
import t from 'tap';
import { planPairs, mapLimit } from '../../../src/lab/probe.js';

const pods = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `p${i}`, ip: `10.0.0.${i}` }));

t.test('all pairs when few', async (t) => {
  const p = planPairs(pods(4), 400);
  t.equal(p.pairs.length, 12);
  t.notOk(p.sampled);
  t.equal(new Set(p.pairs.map((x) => `${x.from}>${x.to}`)).size, 12);
  t.equal(planPairs(pods(30), 0).pairs.length, 870, '0 = all');
});

t.test('a spread sample beyond the limit', async (t) => {
  const p = planPairs(pods(100), 400);
  t.ok(p.sampled);
  t.equal(p.total, 9900);
  t.equal(p.pairs.length, 400);
  const sent = new Map<string, number>();
  const got = new Map<string, number>();
  for (const x of p.pairs) {
    t.not(x.from, x.to);
    sent.set(x.from, (sent.get(x.from) ?? 0) + 1);
    got.set(x.to, (got.get(x.to) ?? 0) + 1);
  }
  t.same([...new Set(sent.values())], [4], 'every pod sends 4');
  t.same([...new Set(got.values())], [4], 'every pod is pinged 4 times');
  t.equal(new Set(p.pairs.map((x) => `${x.from}>${x.to}`)).size, 400, 'no pair twice');
});

t.test('mapLimit: bound and order', async (t) => {
  let inFlight = 0;
  let peak = 0;
  const r = await mapLimit([5, 1, 4, 2, 3, 0], 3, async (x) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((res) => setTimeout(res, x * 3));
    inFlight--;
    return x * 10;
  });
  t.same(r, [50, 10, 40, 20, 30, 0]);
  t.equal(peak, 3);
});
