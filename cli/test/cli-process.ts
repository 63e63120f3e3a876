import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

const cliEntry = path.resolve(import.meta.dirname, '../src/main.ts');

/** What one `keyfleet` run printed and how it ended. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  json<T = unknown>(): T;
}

/** Runs the real CLI as a child process (node + tsx), plain-text gRPC (development mode). */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', cliEntry, ...args],
      { env: { ...process.env, KEYFLEET_INSECURE_DEV: 'true', ...env }, timeout: 60_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr, json: <T>() => JSON.parse(stdout) as T });
      },
    );
  });
}

/** Starts a long-running CLI command (watch, sync) and collects its output lines. */
export function spawnCli(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; lines: string[] } {
  const child = spawn(process.execPath, ['--import', 'tsx', cliEntry, ...args], {
    env: { ...process.env, KEYFLEET_INSECURE_DEV: 'true', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    lines.push(...complete.filter((line) => line.length > 0));
  });
  child.stderr.on('data', (chunk: Buffer) => lines.push(`stderr: ${chunk.toString('utf8').trim()}`));
  return { child, lines };
}

/** SIGTERM and wait for the exit code. */
export function stopCli(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) {
      resolve(child.exitCode);
      return;
    }
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}
