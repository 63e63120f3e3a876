/**
 * `npm test`: every test file in the repository through node's test runner.
 *
 *   npm test                 everything
 *   npm test -- spec         only *.spec.ts (pure, no I/O)
 *   npm test -- redis e2e    *.redis.test.ts and *.e2e.test.ts
 *   npm test -- codec        files whose path contains "codec"
 *
 * Node 20's runner does not expand globs, so we find the files here.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const skipDirs = new Set(['node_modules', '.git', 'gen', 'dist']);

function findTestFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!skipDirs.has(entry.name)) found.push(...findTestFiles(path.join(dir, entry.name)));
    } else if (/\.(spec|test)\.ts$/.test(entry.name)) {
      found.push(path.relative(root, path.join(dir, entry.name)));
    }
  }
  return found;
}

const kinds: Record<string, (file: string) => boolean> = {
  spec: (file) => file.endsWith('.spec.ts'),
  redis: (file) => file.endsWith('.redis.test.ts'),
  e2e: (file) => file.endsWith('.e2e.test.ts'),
};

const filters = process.argv.slice(2);
const all = findTestFiles(root).sort();

// Every test is of one kind, so `npm test -- spec|redis|e2e` together select all of them.
const unkinded = all.filter((file) => !Object.values(kinds).some((isKind) => isKind(file)));
if (unkinded.length > 0) {
  console.error(
    `test files must end in .spec.ts (pure, no I/O), .redis.test.ts or .e2e.test.ts: ${unkinded.join(', ')}`,
  );
  process.exit(1);
}
const selected = filters.length
  ? all.filter((file) =>
      filters.some((filter) => (kinds[filter] ?? ((f: string) => f.includes(filter)))(file)),
    )
  : all;

if (selected.length === 0) {
  console.error(`no test file matches ${filters.join(' ')}`);
  process.exit(1);
}

// Integration tests mostly wait on sockets, so two cores carry more than two files.
const concurrency = process.env.TEST_CONCURRENCY ?? '3';
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...selected],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
