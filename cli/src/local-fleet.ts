/**
 * The client config `npm start` writes for its local fleet, so that the CLI
 * reaches that fleet with no variable set: `<state dir>/client.json`, where
 * the state directory is KEYFLEET_STATE_DIR or the project's `.keyfleet/`.
 *
 * It only ever fills in what nothing else gives: flags and KEYFLEET_*_ADDRESS
 * win over its addresses, and its plain-text credentials apply only to the
 * very addresses it names, and only when no KEYFLEET_INSECURE_DEV or
 * KEYFLEET_CLIENT_* variable is set, so a CLI pointed at another fleet never
 * talks plain text to it because a local fleet ran once.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface LocalFleetConfig {
  readonly ticketKeys: string;
  readonly ocspFetch: string;
  /** The fleet's gRPC is plain text with every caller admin (development mode). */
  readonly insecure: true;
  /** The `npm start` process that wrote it (gone: the fleet is not running). */
  readonly pid: number;
}

const projectRoot = path.resolve(import.meta.dirname, '../..');

export function localFleetConfigPath(env: NodeJS.ProcessEnv): string {
  const stateDir = env.KEYFLEET_STATE_DIR?.trim() || path.join(projectRoot, '.keyfleet');
  return path.join(path.resolve(stateDir), 'client.json');
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The config of the local fleet that is running now, if any: a missing or
 * unreadable file, or one whose writer has exited, is none.
 */
export function readLocalFleetConfig(env: NodeJS.ProcessEnv): LocalFleetConfig | undefined {
  const file = localFleetConfigPath(env);
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<LocalFleetConfig>;
    if (
      typeof parsed.ticketKeys !== 'string' ||
      typeof parsed.ocspFetch !== 'string' ||
      parsed.insecure !== true ||
      typeof parsed.pid !== 'number' ||
      !isRunning(parsed.pid)
    ) {
      return undefined;
    }
    return {
      ticketKeys: parsed.ticketKeys,
      ocspFetch: parsed.ocspFetch,
      insecure: true,
      pid: parsed.pid,
    };
  } catch {
    return undefined;
  }
}

/** Written by `npm start` once its services listen (atomically: a reader never sees half a file). */
export function writeLocalFleetConfig(stateDir: string, config: LocalFleetConfig): string {
  const file = path.join(stateDir, 'client.json');
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o644 });
  renameSync(partial, file);
  return file;
}

/** Removed by `npm start` when it stops, unless another start has replaced it since. */
export function removeLocalFleetConfig(stateDir: string, pid: number): void {
  const file = path.join(stateDir, 'client.json');
  try {
    const current = JSON.parse(readFileSync(file, 'utf8')) as Partial<LocalFleetConfig>;
    if (current.pid === pid) rmSync(file, { force: true });
  } catch {
    // absent or unreadable: nothing of ours to remove
  }
}

const credentialVariables = [
  'KEYFLEET_INSECURE_DEV',
  'KEYFLEET_CLIENT_CA',
  'KEYFLEET_CLIENT_CERT',
  'KEYFLEET_CLIENT_KEY',
];

/** True when the environment says how to authenticate (then the local config's credentials never apply). */
export function environmentHasCredentials(env: NodeJS.ProcessEnv): boolean {
  return credentialVariables.some((name) => (env[name] ?? '').trim() !== '');
}
