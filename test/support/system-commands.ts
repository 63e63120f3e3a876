/**
 * Tests and the start command need a few programs from the system's packages.
 * When one is missing we stop at once with the exact command that installs it,
 * instead of failing later with a spawn error nobody can act on.
 */
import { spawnSync } from 'node:child_process';

/** Debian package that provides each program the tests run. */
export const systemPackageFor: Readonly<Record<string, string>> = {
  'redis-server': 'redis-server',
  openssl: 'openssl',
  ss: 'iproute2',
  nginx: 'nginx',
  haproxy: 'haproxy',
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
