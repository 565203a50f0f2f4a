// The benchmark report: RESULT lines parsed the same whatever the benchmark, tables and the SVG chart
// computed from them (pure functions; the chart's coordinates checked against the scale).
import t from 'tap';
import { benchTables, chartData, latest, parseOutput, readmeTable } from '../../bench/report.js';
import { renderChart, xScale, shortN } from '../../bench/report-svg.js';

const OUTPUT = `== dist/test/bench/agent-ingest.js
agent-ingest: BGP → kernel; load average at start 3.10 2.50 2.00 (2 cores, shared)
RESULT {"bench":"agent-ingest","n":100000,"tabby":{"receiver":"tabby-node","seconds":1.2,"withdrawSeconds":0.9,"cpu":1.1,"peakRss":266000000},"bird":{"receiver":"BIRD 2","seconds":1.0,"withdrawSeconds":0.7,"cpu":0.8,"peakRss":16000000}}
RESULT {"bench":"agent-ingest","n":200000,"tabby":{"receiver":"tabby-node","seconds":4,"peakRss":389000000},"bird":{"receiver":"BIRD 2","seconds":3.2,"peakRss":27000000}}
RESULT not json
== dist/test/bench/rr-fanout.js
rr-fanout: load average at start 9.00 8.00 7.00
RESULT {"bench":"rr-fanout","n":100000,"clients":50,"bird":{"receiver":"BIRD 2.0.12","seconds":4,"rssBytes":20000000,"runs":2,"spread":[4,4.4]},"tabby":{"receiver":"tabby","seconds":3,"peakRss":120000000,"runs":2,"spread":[3,3.5]}}
`;

t.test('RESULT lines: daemons are the members with seconds, tabby first, with the load of their script', async (t) => {
  const rs = parseOutput(OUTPUT);
  t.equal(rs.length, 3, 'the malformed line is skipped');
  const rr = rs[2]!;
  t.equal(rr.bench, 'rr-fanout');
  t.same(
    rr.daemons.map(([k]) => k),
    ['tabby', 'bird'],
    'tabby first although BIRD came first',
  );
  t.equal(rr.daemons[1]![1].peakRss, 20_000_000, 'rssBytes is the memory when peakRss is absent');
  t.same(rr.daemons[0]![1].spread, [3, 3.5]);
  t.same(rr.loads, ['9.00 8.00 7.00'], "the rr-fanout script's load, not agent-ingest's");
  t.same(rs[0]!.loads, ['3.10 2.50 2.00']);
  const again = latest([...rs, { ...rs[2]!, daemons: [['tabby', { receiver: 'tabby', seconds: 2 }]] }]);
  t.equal(again.get('rr-fanout')!.length, 1, 'one row per (bench, N): the latest');
  t.equal(again.get('rr-fanout')![0]!.daemons[0]![1].seconds, 2);
});

t.test('tables: ratios tabby ÷ anchor for time and memory', async (t) => {
  const by = latest(parseOutput(OUTPUT));
  const md = benchTables(by);
  t.match(md, /\| 100k \| BIRD 2 \| 1\.00 \(withdraw-all 0\.70\) \| — \| — \| 0\.80 \| 16 \| 1\.20× \| 16\.63× \| 3\.10 2\.50 2\.00 \|/);
  t.match(md, /\| 100k \| BIRD 2\.0\.12 \| 4\.00 \| 2 \| 4\.00–4\.40 \| — \| 20 \| 0\.75× \| 6\.00× \|/);
  const readme = readmeTable(by);
  t.match(readme, /\| `rr-fanout` \| 100k \| 3\.00 s, 120 MB \| BIRD 2\.0\.12: 4\.00 s, 20 MB \| 0\.75×, 6\.00× \| 9\.00 8\.00 7\.00 \|/);
  t.equal(readme.split('\n').length, 2 + 3, 'header + one row per (bench, N, anchor)');
});

t.test('chart: one line per daemon, points where the scale puts them, ratios at tabby points', async (t) => {
  const data = chartData(latest(parseOutput(OUTPUT)));
  t.same(
    data.map((d) => d.title),
    ['agent-ingest', 'rr-fanout'],
  );
  t.same(
    data[0]!.series.map((s) => s.name),
    ['tabby-node', 'BIRD 2'],
  );
  const svg = renderChart(data, 'a <caption> & more');
  t.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  t.ok(svg.includes('a &lt;caption&gt; &amp; more'), 'text is escaped');
  t.equal((svg.match(/<g /g) ?? []).length, (svg.match(/<\/g>/g) ?? []).length, 'groups balanced');
  t.equal((svg.match(/<polyline /g) ?? []).length, 8, '2 benches × 2 panels × 2 daemons');
  // agent-ingest time panel: x log scale over 100k..200k in a 400-wide panel, y: 200 - v / (1.15 × 4) × 200.
  const line = /<polyline points="([^"]+)"[^>]*data-series="tabby-node"/.exec(svg)![1]!;
  const pts = line.split(' ').map((p) => p.split(',').map(Number));
  t.same(
    pts.map(([x]) => x),
    [20, 380],
    'N 100k at the left edge, 200k at the right',
  );
  t.equal(pts[1]![1], Number((200 - (4 / (4 * 1.15)) * 200).toFixed(1)), 'the largest time at 1/1.15 of the height');
  t.equal(pts[0]![1], Number((200 - (1.2 / (4 * 1.15)) * 200).toFixed(1)));
  t.ok(svg.includes('>1.20×</text>') && svg.includes('>1.25×</text>'), 'time ratios at both N');
  t.ok(svg.includes('>16.63×</text>'), 'memory ratio');
  t.ok(svg.includes('>0.75×</text>'), 'rr-fanout ratio');
  t.ok(svg.includes('stroke-dasharray'), 'anchors dashed');
});

t.test('chart scale: one N is centred; tick labels', async (t) => {
  t.equal(xScale([100_000], 400)(100_000), 200);
  t.ok(Math.abs(xScale([1000, 1_000_000], 400)(Math.sqrt(1e9)) - 200) < 1e-9, 'log scale: the geometric middle in the middle');
  t.equal(shortN(100_000), '100k');
  t.equal(shortN(1_000_000), '1M');
  t.equal(shortN(20_000), '20k');
  t.equal(shortN(123), '123');
});
