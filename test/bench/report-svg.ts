// The benchmark report's chart, a pure function: benchmarks in, SVG text out (no plotting library).
// One row per benchmark, two panels — time and peak memory against N (log scale when N varies) —
// one line per daemon (tabby solid, anchors dashed), and at each of tabby's points its ratio to
// the first anchor (e.g. "1.25×").

export interface ChartPoint {
  n: number;
  seconds: number;
  /** bytes; undefined when not measured */
  memory?: number;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
}

export interface ChartBench {
  title: string;
  /** tabby's series first, then the anchors */
  series: ChartSeries[];
}

const W = 960;
const PANEL_W = 400;
const PANEL_H = 200;
const ROW_H = 290;
const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A round tick label: 100000 → "100k", 1000000 → "1M". */
export function shortN(n: number): string {
  if (n >= 1e6 && n % 1e5 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 100 === 0) return `${n / 1e3}k`;
  return String(n);
}

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Positions of the N values on [0, width]: log scale, evenly spread when only one N. */
export function xScale(ns: readonly number[], width: number): (n: number) => number {
  const lo = Math.min(...ns);
  const hi = Math.max(...ns);
  if (!(hi > lo)) return () => width / 2;
  const a = Math.log(lo);
  const b = Math.log(hi);
  return (n) => 20 + ((Math.log(n) - a) / (b - a)) * (width - 40);
}

function panel(
  x0: number,
  y0: number,
  label: string,
  unit: string,
  series: ChartSeries[],
  value: (p: ChartPoint) => number | undefined,
  ratioOf?: (p: ChartPoint) => string | undefined,
): string {
  const ns = [...new Set(series.flatMap((s) => s.points.map((p) => p.n)))].sort((a, b) => a - b);
  const vals = series.flatMap((s) => s.points.map(value)).filter((v): v is number => v !== undefined && Number.isFinite(v));
  const max = vals.length ? Math.max(...vals) * 1.15 || 1 : 1;
  const sx = xScale(ns, PANEL_W);
  const sy = (v: number): number => PANEL_H - (v / max) * PANEL_H;
  const out: string[] = [];
  out.push(`<g transform="translate(${x0},${y0})">`);
  out.push(`<text x="0" y="-8" class="panel">${escapeXml(label)} (${escapeXml(unit)})</text>`);
  out.push(`<rect x="0" y="0" width="${PANEL_W}" height="${PANEL_H}" class="frame"/>`);
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    out.push(`<text x="-6" y="${(sy(v) + 4).toFixed(1)}" class="tick" text-anchor="end">${fmt(v)}</text>`);
    if (i > 0 && i < 4) out.push(`<line x1="0" x2="${PANEL_W}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" class="grid"/>`);
  }
  for (const n of ns) out.push(`<text x="${sx(n).toFixed(1)}" y="${PANEL_H + 16}" class="tick" text-anchor="middle">${shortN(n)}</text>`);
  out.push(`<text x="${PANEL_W / 2}" y="${PANEL_H + 32}" class="tick" text-anchor="middle">N</text>`);
  series.forEach((s, i) => {
    const pts = s.points
      .map((p) => ({ p, v: value(p) }))
      .filter((q): q is { p: ChartPoint; v: number } => q.v !== undefined && Number.isFinite(q.v))
      .sort((a, b) => a.p.n - b.p.n);
    if (!pts.length) return;
    const color = COLORS[i % COLORS.length]!;
    const dash = i === 0 ? '' : ' stroke-dasharray="6 3"';
    const coords = pts.map((q) => `${sx(q.p.n).toFixed(1)},${sy(q.v).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${coords}" fill="none" stroke="${color}" stroke-width="2"${dash} data-series="${escapeXml(s.name)}"/>`);
    for (const q of pts) {
      out.push(`<circle cx="${sx(q.p.n).toFixed(1)}" cy="${sy(q.v).toFixed(1)}" r="3.5" fill="${color}"/>`);
      const r = i === 0 && ratioOf ? ratioOf(q.p) : undefined;
      if (r) out.push(`<text x="${(sx(q.p.n) + 6).toFixed(1)}" y="${(sy(q.v) - 6).toFixed(1)}" class="ratio">${escapeXml(r)}</text>`);
    }
  });
  out.push('</g>');
  return out.join('\n');
}

/** The whole chart: one row of two panels per benchmark, a legend per row. */
export function renderChart(benches: readonly ChartBench[], caption = ''): string {
  const h = 40 + benches.length * ROW_H + (caption ? 20 : 0);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif">`);
  out.push(
    '<style>.panel{font-size:13px;font-weight:bold}.tick{font-size:11px;fill:#444}.ratio{font-size:11px;fill:#d62728}' +
      '.frame{fill:none;stroke:#888}.grid{stroke:#ddd}.title{font-size:15px;font-weight:bold}.legend{font-size:12px}</style>',
  );
  out.push(`<rect width="${W}" height="${h}" fill="white"/>`);
  if (caption) out.push(`<text x="10" y="18" class="tick">${escapeXml(caption)}</text>`);
  benches.forEach((b, row) => {
    const y = 40 + (caption ? 20 : 0) + row * ROW_H;
    out.push(`<text x="10" y="${y - 12}" class="title">${escapeXml(b.title)}</text>`);
    // Ratio of tabby (first series) to the first anchor at the same N.
    const anchor = b.series[1];
    const ratio =
      (get: (p: ChartPoint) => number | undefined) =>
      (p: ChartPoint): string | undefined => {
        const q = anchor?.points.find((x) => x.n === p.n);
        const a = q && get(q);
        const v = get(p);
        return a && v !== undefined ? `${(v / a).toFixed(2)}×` : undefined;
      };
    out.push(
      panel(
        60,
        y + 20,
        'time',
        's',
        b.series,
        (p) => p.seconds,
        ratio((p) => p.seconds),
      ),
    );
    out.push(
      panel(
        W - PANEL_W - 20,
        y + 20,
        'peak memory',
        'MB',
        b.series,
        (p) => (p.memory === undefined ? undefined : p.memory / 1e6),
        ratio((p) => p.memory),
      ),
    );
    let lx = 60;
    b.series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length]!;
      out.push(
        `<line x1="${lx}" x2="${lx + 20}" y1="${y + PANEL_H + 62}" y2="${y + PANEL_H + 62}" stroke="${color}" stroke-width="2"${i ? ' stroke-dasharray="6 3"' : ''}/>`,
      );
      out.push(`<text x="${lx + 26}" y="${y + PANEL_H + 66}" class="legend">${escapeXml(s.name)}</text>`);
      lx += 40 + 7 * s.name.length;
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
