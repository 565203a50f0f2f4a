// Small rendering helpers shared by tabbyctl commands: aligned tables, YAML, JSON.
import { stringify as yamlStringify } from 'yaml';

export type OutputFormat = 'table' | 'wide' | 'yaml' | 'json';
export const OUTPUT_FORMATS: readonly string[] = ['table', 'ps', 'wide', 'yaml', 'json'];

/** "ps" is calicoctl's name for the default table. */
export function parseOutputFormat(s: string | undefined): OutputFormat {
  const v = (s ?? 'table').toLowerCase();
  if (v === 'ps' || v === 'table') return 'table';
  if (v === 'wide' || v === 'yaml' || v === 'json') return v;
  throw new Error(`unknown output format "${s}" (use one of: yaml, json, wide, or the default table)`);
}

/** Left-aligned columns separated by at least three spaces (calicoctl/kubectl style). */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3)))
      .join('')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

export function toYaml(value: unknown): string {
  return yamlStringify(value, { lineWidth: 0 });
}

export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
