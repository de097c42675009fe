import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ReliabilityFigure } from './figures.js';

const sectionOrder = ['faults', 'database', 'process', 'instances', 'load', 'fuzz', 'security'];

/** Names the figures file before the workers start and prints the table after they finish. */
export default function setup(): () => void {
  const dir = mkdtempSync(path.join(tmpdir(), 'callme-reliability-'));
  const file = path.join(dir, 'figures.jsonl');
  writeFileSync(file, '');
  process.env.CALLME_RELIABILITY_FIGURES = file;
  return () => {
    const figures = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as ReliabilityFigure);
    rmSync(dir, { recursive: true, force: true });
    console.log(formatTable(figures));
  };
}

export function formatTable(figures: ReliabilityFigure[]): string {
  const rank = (section: string) => {
    const index = sectionOrder.indexOf(section);
    return index === -1 ? sectionOrder.length : index;
  };
  const rows = [...figures].sort((a, b) => rank(a.section) - rank(b.section));
  const cells = rows.map((f) => [f.section, f.name, `${f.value}${f.unit ? ` ${f.unit}` : ''}`, f.expected ?? '']);
  const header = ['section', 'figure', 'value', 'must be'];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `| ${c.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    '',
    'Reliability summary',
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.map(line),
    '',
  ].join('\n');
}
