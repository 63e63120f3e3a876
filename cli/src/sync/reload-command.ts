import { execFile } from 'node:child_process';

/** What happened when the terminator was told to reload. */
export interface ReloadResult {
  readonly ok: boolean;
  /** Its stderr and stdout, trimmed, for the log (never key material: the files are not printed). */
  readonly output: string;
}

/**
 * Runs the configured reload command (`nginx -s reload`, `kill -HUP 1`,
 * `systemctl reload haproxy`) without a shell, so file names with spaces or
 * quotes cannot turn into other commands.
 */
export function runReloadCommand(argv: readonly string[], timeoutMs = 30_000): Promise<ReloadResult> {
  const [command, ...args] = argv;
  if (!command) return Promise.resolve({ ok: true, output: '' });
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const output = `${stderr}${stdout}`.trim();
      resolve({ ok: !error, output: error ? `${error.message} ${output}`.trim() : output });
    });
  });
}

/**
 * Reloads after files changed, and once a reload failed, again at every
 * later apply until one succeeds, changed files or not: the files on disk are
 * new, the terminator still runs the old ones. Undefined: nothing to reload
 * (no command, or nothing changed and nothing owed).
 */
export function reloadOnChange(
  argv: readonly string[],
): (changedFiles: readonly string[]) => Promise<ReloadResult | undefined> {
  let owed = false;
  return async (changedFiles) => {
    if (argv.length === 0 || (changedFiles.length === 0 && !owed)) return undefined;
    const result = await runReloadCommand(argv);
    owed = !result.ok;
    return result;
  };
}

/**
 * A reload command as given on the command line: a JSON array of strings
 * (`["sh","-c","kill -HUP $(cat /run/nginx.pid)"]`) taken as it is, or else
 * words split on whitespace (no shell quoting).
 */
export function parseCommandLine(text: string): string[] {
  if (text.trimStart().startsWith('[')) {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === 'string')) {
      throw new Error('a reload command in JSON is an array of strings');
    }
    return parsed;
  }
  return text.split(/\s+/).filter((part) => part.length > 0);
}
