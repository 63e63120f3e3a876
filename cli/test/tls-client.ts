import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** One `openssl s_client` handshake, as the e2e tests see it. */
export interface Handshake {
  readonly reused: boolean;
  /** The whole s_client output (no key material: s_client prints none by default). */
  readonly output: string;
  /** Hex key name of the ticket saved in `sessOut` (its first 16 bytes), if any. */
  readonly ticketKeyNameHex: string | undefined;
}

export interface HandshakeOptions {
  port: number;
  caFile: string;
  tlsVersion: '1.2' | '1.3';
  sessIn?: string;
  sessOut?: string;
  status?: boolean;
}

/**
 * Connects with the openssl CLI, sends one HTTP/1.0 request and reads to the
 * end (`-ign_eof`), so TLS 1.3 tickets, which arrive after the handshake, are
 * in `sessOut` before s_client exits.
 */
export async function handshake(options: HandshakeOptions): Promise<Handshake> {
  const args = [
    's_client',
    '-connect',
    `127.0.0.1:${options.port}`,
    '-servername',
    'localhost',
    `-tls${options.tlsVersion.replace('.', '_')}`,
    '-CAfile',
    options.caFile,
    '-verify_return_error',
    '-ign_eof',
    ...(options.sessIn ? ['-sess_in', options.sessIn] : []),
    ...(options.sessOut ? ['-sess_out', options.sessOut] : []),
    ...(options.status ? ['-status'] : []),
  ];
  const output = await new Promise<string>((resolve, reject) => {
    const child = execFile(
      'openssl',
      args,
      { timeout: 20_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && !stdout) reject(new Error(`s_client failed: ${stderr}`));
        else resolve(`${stdout}\n${stderr}`);
      },
    );
    child.stdin?.end('GET / HTTP/1.0\r\nHost: localhost\r\n\r\n');
  });
  return {
    reused: /^Reused, TLSv1\.[23]/m.test(output),
    output,
    ticketKeyNameHex: options.sessOut ? ticketKeyName(options.sessOut) : undefined,
  };
}

/** The key name of the ticket in a saved session (`openssl sess_id -text`). */
export function ticketKeyName(sessionFile: string): string | undefined {
  if (!existsSync(sessionFile)) return undefined;
  const text = execFileSync('openssl', ['sess_id', '-in', sessionFile, '-text', '-noout'], {
    encoding: 'utf8',
  });
  const dump = text.split(/TLS session ticket:\n/)[1];
  if (!dump) return undefined;
  const bytes: string[] = [];
  for (const line of dump.split('\n')) {
    const match = /^\s*[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){1,16})/.exec(line);
    if (!match) break;
    bytes.push(...match[1]!.trim().split(/[ -]+/));
  }
  return bytes.length >= 16 ? bytes.slice(0, 16).join('') : undefined;
}

/** Retries `probe` until it returns true or the (generous) deadline passes. */
export async function eventually(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(200);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}
