/**
 * Tests and the start command need a few programs from the system's packages.
 * When one is missing we stop at once with the exact command that installs it,
 * instead of failing later with a spawn error nobody can act on.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** Debian package that provides each program the tests run. */
export const systemPackageFor: Readonly<Record<string, string>> = {
  'redis-server': 'redis-server',
  openssl: 'openssl',
  ss: 'iproute2',
  nginx: 'nginx',
  haproxy: 'haproxy',
  promtool: 'prometheus',
  prometheus: 'prometheus',
};

export function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Throws with the install command when `command` is not on PATH. */
export function requireCommand(command: string): void {
  if (hasCommand(command)) return;
  const pkg = systemPackageFor[command] ?? command;
  throw new Error(
    `${command} is not installed. Install it with:\n  sudo apt-get update && sudo apt-get install -y ${pkg}`,
  );
}

const pinnedToolsScript = path.resolve(import.meta.dirname, '../../scripts/pinned-tools.mjs');

/**
 * The path of a tool pinned in scripts/pinned-tools.json (kustomize, envoy),
 * fetched or built into the project's cache on first use and found there
 * afterwards; throws with pinned-tools' message when it cannot be had.
 */
export function pinnedTool(name: 'kustomize' | 'envoy'): string {
  const result = spawnSync(process.execPath, [pinnedToolsScript, name], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr.trim() || `pinned-tools ${name} failed`);
  return result.stdout.trim();
}
