/**
 * CLI for the dependency rule (dependency-rule.ts): exits 1 naming every path
 * by which lib/tls-engine reaches Redis, BullMQ or the services.
 */
import path from 'node:path';
import { forbiddenDependencyPaths, forbiddenImports } from './dependency-rule.js';

const root = path.resolve(import.meta.dirname, '..');
const engineDir = path.join(root, 'lib', 'tls-engine');
const problems = [...forbiddenDependencyPaths(engineDir), ...forbiddenImports(engineDir, root)];
if (problems.length > 0) {
  console.error('lib/tls-engine must not depend on Redis or the services:');
  for (const problem of problems) console.error(`  ${problem}`);
  process.exit(1);
}
console.log('dependency check: lib/tls-engine reaches no Redis package');
