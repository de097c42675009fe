import { appendFileSync } from 'node:fs';

/**
 * One line of the reliability table: what was tried and what came of it.
 * `expected` states the bound the figure must meet (for example "0"); the
 * test asserting it is what makes the run fail, the table only reports.
 */
export interface ReliabilityFigure {
  /** Table section: faults, database, process, instances, load, fuzz, security. */
  section: string;
  name: string;
  value: number | string;
  unit?: string;
  expected?: string;
}

/**
 * Records a figure for the summary printed after `npm run test:reliability`.
 * Test files run in worker processes, so figures go to a JSON-lines file
 * named by the global setup; outside that run (a single file under plain
 * vitest) they are printed instead.
 */
export function recordFigure(figure: ReliabilityFigure): void {
  const file = process.env.CALLME_RELIABILITY_FIGURES;
  if (file) appendFileSync(file, `${JSON.stringify(figure)}\n`);
  else console.log(`[${figure.section}] ${figure.name}: ${figure.value}${figure.unit ? ` ${figure.unit}` : ''}`);
}
