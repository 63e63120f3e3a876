/**
 * `npm run bench` runs every bench/*.bench.ts; `npm run bench -- NAME …` only
 * those whose file name (without .bench.ts) is named. Each exports
 * `default async function run(): Promise<BenchFigure[]>`; every figure is
 * printed as one JSON line on stdout. Progress and failures go to stderr; the
 * exit code is 1 when any benchmark failed.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchFigure } from './bench-figure.js';

const benchDir = import.meta.dirname;
const available = readdirSync(benchDir)
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.slice(0, -'.bench.ts'.length))
  .sort();
const requested = process.argv.slice(2).filter((arg) => arg !== '--');
const unknown = requested.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(1);
}
const selected = requested.length > 0 ? requested : available;

let failed = false;
for (const name of selected) {
  console.error(`bench ${name}…`);
  try {
    const module = (await import(pathToFileURL(path.join(benchDir, `${name}.bench.ts`)).href)) as {
      default: () => Promise<BenchFigure[]>;
    };
    for (const result of await module.default()) {
      const { bench, metric, value, unit, baseline, ratio } = result;
      console.log(JSON.stringify({ bench, metric, value, unit, baseline, ratio }));
    }
  } catch (error) {
    failed = true;
    console.error(`bench ${name} failed:`, error instanceof Error ? (error.stack ?? error.message) : error);
  }
}
process.exit(failed ? 1 : 0);
