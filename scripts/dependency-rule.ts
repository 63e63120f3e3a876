/**
 * A TLS node installs only what a node needs: lib/tls-engine must not reach
 * Redis, ioredis, BullMQ or the services' kit, neither through its
 * package.json (transitively, as npm would install it) nor through an import
 * in its source. Exits 1 naming every path that breaks the rule.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';

const forbidden = [
  /^ioredis$/,
  /^bullmq$/,
  /^redis$/,
  /^@redis\//,
  /^@keyfleet\/service-kit$/,
  /^@keyfleet\/ticket-keys$/,
  /^@keyfleet\/ocsp-fetch$/,
];
const isForbidden = (name: string) => forbidden.some((pattern) => pattern.test(name));

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Where node would find `name` from `fromDir`, walking up node_modules folders. */
function resolvePackageDir(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === path.dirname(dir)) return undefined;
  }
}

export function forbiddenDependencyPaths(packageDir: string): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const walk = (dir: string, trail: string[]) => {
    const manifest = readManifest(dir);
    const deps = { ...manifest.dependencies, ...manifest.optionalDependencies };
    for (const name of Object.keys(deps)) {
      const chain = [...trail, name];
      if (isForbidden(name)) {
        problems.push(chain.join(' → '));
        continue;
      }
      const resolved = resolvePackageDir(name, dir);
      if (!resolved || seen.has(resolved)) continue;
      seen.add(resolved);
      walk(resolved, chain);
    }
  };
  walk(packageDir, [readManifest(packageDir).name]);
  return problems;
}

export function forbiddenImports(sourceDir: string, root = sourceDir): string[] {
  const problems: string[] = [];
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') visit(file);
      } else if (/\.(ts|js|mjs|cjs)$/.test(entry.name)) {
        const text = readFileSync(file, 'utf8');
        for (const match of text.matchAll(
          /(?:from\s+|import\s+|import\s*\(\s*|require\s*\(\s*|export\s+\*\s+from\s+)['"]([^'"]+)['"]/g,
        )) {
          const specifier = match[1] ?? '';
          const packageName = specifier.startsWith('@')
            ? specifier.split('/').slice(0, 2).join('/')
            : (specifier.split('/')[0] ?? '');
          if (isForbidden(packageName)) problems.push(`${path.relative(root, file)} imports ${specifier}`);
        }
      }
    }
  };
  visit(sourceDir);
  return problems;
}
