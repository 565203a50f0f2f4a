// The benchmark report (run by `make bench` after the benchmarks, not a benchmark itself): reads the
// benchmarks' output — `== <script>` headers, their "load average" lines and `RESULT {json}` lines —
// and writes test/bench/results/report.md (machine, anchor versions, per benchmark: time, CPU, peak
// memory, runs and spread per daemon, ratios tabby ÷ anchor) and test/bench/results/chart.svg
// (report-svg.ts). With --readme, README.md's table between `<!-- bench-report:start -->` and
// `<!-- bench-report:end -->` is rewritten from the same figures.
// A RESULT line is {bench, n, <daemon>: {receiver?, seconds, cpu?, peakRss? | rssBytes?, runs?, spread?}, …}:
// every member that is an object with numeric `seconds` is a daemon; tabby's keys start with "tabby".
// Usage: node dist/test/bench/report.js [--readme] [log…]   (default log: test/bench/results/bench.log)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderChart, shortN, type ChartBench } from './report-svg.js';

export interface Figure {
  receiver: string;
  seconds: number;
  cpu?: number;
  peakRss?: number;
  runs?: number;
  spread?: [number, number];
  withdrawSeconds?: number;
}

export interface BenchResult {
  bench: string;
  n: number;
  /** daemon key → figures; tabby's first */
  daemons: [string, Figure][];
  loads: string[];
}

/** RESULT lines of benchmark output, with the load averages printed by the script that produced them. */
export function parseOutput(text: string): BenchResult[] {
  const out: BenchResult[] = [];
  let loads: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('== ')) loads = [];
    const lm = /load average[^\d]*([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)/.exec(line);
    if (lm) loads.push(`${lm[1]} ${lm[2]} ${lm[3]}`);
    if (!line.startsWith('RESULT ')) continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line.slice(7)) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (typeof r.bench !== 'string' || typeof r.n !== 'number') continue;
    const daemons: [string, Figure][] = [];
    for (const [k, v] of Object.entries(r)) {
      if (!v || typeof v !== 'object' || typeof (v as { seconds?: unknown }).seconds !== 'number') continue;
      const f = v as Record<string, unknown>;
      daemons.push([
        k,
        {
          receiver: typeof f.receiver === 'string' ? f.receiver : k,
          seconds: f.seconds as number,
          ...(typeof f.cpu === 'number' ? { cpu: f.cpu } : {}),
          ...(typeof (f.peakRss ?? f.rssBytes) === 'number' ? { peakRss: (f.peakRss ?? f.rssBytes) as number } : {}),
          ...(typeof f.runs === 'number' ? { runs: f.runs } : {}),
          ...(Array.isArray(f.spread) ? { spread: f.spread as [number, number] } : {}),
          ...(typeof f.withdrawSeconds === 'number' ? { withdrawSeconds: f.withdrawSeconds } : {}),
        },
      ]);
    }
    daemons.sort((a, b) => Number(b[0].startsWith('tabby')) - Number(a[0].startsWith('tabby')));
    out.push({ bench: r.bench, n: r.n, daemons, loads: [...loads] });
  }
  return out;
}

/** The latest result per (bench, N), benchmarks in order of first appearance, N ascending. */
export function latest(results: readonly BenchResult[]): Map<string, BenchResult[]> {
  const by = new Map<string, Map<number, BenchResult>>();
  for (const r of results) {
    if (!by.has(r.bench)) by.set(r.bench, new Map());
    by.get(r.bench)!.set(r.n, r);
  }
  return new Map([...by].map(([b, m]) => [b, [...m.values()].sort((x, y) => x.n - y.n)]));
}

const mb = (b: number | undefined): string => (b === undefined ? '—' : (b / 1e6).toFixed(0));
const s2 = (v: number | undefined): string => (v === undefined ? '—' : v.toFixed(2));
const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b ? `${(a / b).toFixed(2)}×` : '—');

export function chartData(byBench: Map<string, BenchResult[]>): ChartBench[] {
  return [...byBench].map(([bench, rs]) => {
    const keys = [...new Set(rs.flatMap((r) => r.daemons.map(([k]) => k)))];
    keys.sort((a, b) => Number(b.startsWith('tabby')) - Number(a.startsWith('tabby')));
    return {
      title: bench,
      series: keys.map((k) => ({
        name: rs.flatMap((r) => r.daemons.filter(([x]) => x === k).map(([, f]) => f.receiver))[0] ?? k,
        points: rs.flatMap((r) =>
          r.daemons
            .filter(([x]) => x === k)
            .map(([, f]) => ({ n: r.n, seconds: f.seconds, ...(f.peakRss !== undefined ? { memory: f.peakRss } : {}) })),
        ),
      })),
    };
  });
}

/** The per-benchmark tables of report.md. */
export function benchTables(byBench: Map<string, BenchResult[]>): string {
  const out: string[] = [];
  for (const [bench, rs] of byBench) {
    out.push(`### ${bench}`, '');
    out.push('| N | daemon | time (s) | runs | spread (s) | CPU (s) | peak RSS (MB) | first row ÷ this: time | memory | load at start |');
    out.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rs) {
      const tabby = r.daemons[0]?.[1];
      for (const [k, f] of r.daemons) {
        const self = k === r.daemons[0]?.[0];
        const spread = f.spread ? `${s2(f.spread[0])}–${s2(f.spread[1])}` : '—';
        out.push(
          `| ${shortN(r.n)} | ${f.receiver} | ${s2(f.seconds)}${f.withdrawSeconds !== undefined ? ` (withdraw-all ${s2(f.withdrawSeconds)})` : ''} | ${f.runs ?? '—'} | ${spread} | ${s2(f.cpu)} | ${mb(f.peakRss)} | ${self ? '' : ratio(tabby?.seconds, f.seconds)} | ${self ? '' : ratio(tabby?.peakRss, f.peakRss)} | ${r.loads[0] ?? '—'} |`,
        );
      }
    }
    out.push('');
  }
  return out.join('\n');
}

/** README's table: one row per (benchmark, N) and anchor. */
export function readmeTable(byBench: Map<string, BenchResult[]>): string {
  const out = [
    '| benchmark | N | tabby | anchor | tabby ÷ anchor (time, memory) | load at start |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const [bench, rs] of byBench) {
    for (const r of rs) {
      const [tk, t] = r.daemons[0] ?? [];
      if (!t || !tk) continue;
      for (const [, a] of r.daemons.slice(1)) {
        out.push(
          `| \`${bench}\` | ${shortN(r.n)} | ${s2(t.seconds)} s, ${mb(t.peakRss)} MB | ${a.receiver}: ${s2(a.seconds)} s, ${mb(a.peakRss)} MB | ${ratio(t.seconds, a.seconds)}, ${ratio(t.peakRss, a.peakRss)} | ${r.loads[0] ?? '—'} |`,
        );
      }
    }
  }
  return out.join('\n');
}

function version(cmd: string, args: string[], re: RegExp): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error) return undefined;
  return re.exec(`${r.stdout}${r.stderr}`)?.[1];
}

function machine(): string[] {
  const cpus = os.cpus();
  const git = spawnSync('git', ['describe', '--always', '--dirty'], { encoding: 'utf8' }).stdout?.trim();
  const anchors = [
    ['BIRD', version('bird', ['--version'], /BIRD version ([\w.]+)/)],
    ['GoBGP', version('gobgpd', ['--version'], /version ([\w.]+)/)],
    ['FRR', version('/usr/lib/frr/bgpd', ['--version'], /version ([\w.]+)/)],
    ['iproute2', version('ip', ['-V'], /iproute2-([\w.]+)/)],
  ].filter(([, v]) => v);
  return [
    `- machine: ${cpus.length} × ${cpus[0]?.model.trim() ?? 'CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${os.release()}`,
    `- load average when the report was written: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} (the machine is shared: see each row's load)`,
    `- tabby ${git || '(not a git checkout)'}, Node.js ${process.version}`,
    `- anchors: ${anchors.map(([k, v]) => `${k} ${v}`).join(', ') || 'none found'}`,
  ];
}

function main(): void {
  const args = process.argv.slice(2);
  const readme = args.includes('--readme');
  const here = path.dirname(fileURLToPath(import.meta.url));
  const repo = path.resolve(here, '../../..');
  const logs = args.filter((a) => !a.startsWith('--'));
  if (!logs.length) logs.push(path.join(repo, 'test/bench/results/bench.log'));
  const text = logs.filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8'));
  if (!text.length) {
    console.log(`report: no benchmark output (${logs.join(', ')}); run make bench`);
    return;
  }
  const byBench = latest(text.flatMap(parseOutput));
  const dir = path.join(repo, 'test/bench/results');
  fs.mkdirSync(dir, { recursive: true });
  const when = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  fs.writeFileSync(
    path.join(dir, 'chart.svg'),
    renderChart(chartData(byBench), `tabby vs anchors, ${when}; ratios are tabby ÷ the first anchor`),
  );
  const md = [
    '# Benchmark report',
    '',
    `Written by \`make bench\` (test/bench/report.ts) at ${when} from: ${logs.map((l) => path.relative(repo, l)).join(', ')}.`,
    'Each figure is the best run of its daemon (runs and the spread of times given); tabby and the anchor ran',
    'alternately in the same run. Ratios are tabby (the first row of each N) ÷ that row: below 1 tabby is faster / smaller.',
    '',
    ...machine(),
    '',
    '![time and memory vs N](chart.svg)',
    '',
    benchTables(byBench),
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'report.md'), md);
  console.log(
    `report: ${path.relative(repo, path.join(dir, 'report.md'))}, chart.svg (${[...byBench.keys()].join(', ') || 'no RESULT lines'})`,
  );
  if (readme) {
    const f = path.join(repo, 'README.md');
    const s = fs.readFileSync(f, 'utf8');
    const a = s.indexOf('<!-- bench-report:start -->');
    const b = s.indexOf('<!-- bench-report:end -->');
    if (a >= 0 && b > a) {
      const table = `<!-- bench-report:start -->\n${readmeTable(byBench)}\n`;
      fs.writeFileSync(f, s.slice(0, a) + table + s.slice(b));
      console.log('report: README.md table rewritten');
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) main();
