/**
 * The openssl CLI as a TLS client: `s_client` for single handshakes (session
 * files, staples, resumption) and `s_time` for handshake rates. Our servers
 * are proven against OpenSSL's own client, never against our own code.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { requireCommand } from './system-commands.js';

export type TlsVersion = '1.2' | '1.3';

export interface SClientOptions {
  port: number;
  host?: string;
  /** Pins the protocol version. Default: whatever both sides prefer. */
  tls?: TlsVersion;
  /** Write the session (including tickets that arrive after the handshake) to this file. */
  sessOut?: string;
  /** Offer the session in this file for resumption. */
  sessIn?: string;
  /** Ask for a staple (`-status`). */
  status?: boolean;
  /** SNI; default none sent unless given. */
  serverName?: string;
  /** Verify the server against this CA file (the verify result is in the output). */
  caFile?: string;
  /** Sent after the handshake; s_client then waits for the server to close (`-ign_eof`). Default an HTTP/1.0 GET. */
  request?: string;
  /** Kill s_client after this long. Default 15000. */
  timeoutMs?: number;
  extraArgs?: string[];
}

export interface SClientResult {
  /** stdout and stderr together. */
  readonly output: string;
  readonly exitCode: number | null;
  /** The handshake completed ("New," or "Reused," line present). */
  readonly connected: boolean;
  readonly reused: boolean;
  /** e.g. "TLSv1.3". */
  readonly protocol: string | undefined;
  /** True when s_client printed an OCSP response (a staple arrived). */
  readonly stapled: boolean;
  /** "good", "revoked", "unknown" from the staple's Cert Status line. */
  readonly stapleCertStatus: string | undefined;
  /**
   * Key name of the ticket in the session s_client printed after the
   * handshake. In TLS 1.2 that includes a ticket renewed during resumption
   * (which s_client does not write to -sess_out); TLS 1.3 tickets arrive after
   * the print, so read those from the -sess_out file.
   */
  readonly printedTicketKeyName: string | undefined;
  /** The whole ticket of that printed session, lower-case hex. */
  readonly printedTicketHex: string | undefined;
  /** TLS 1.3 NewSessionTicket messages that arrived after the handshake. */
  readonly postHandshakeTickets: number;
  /**
   * The alert the server sent, e.g. "internal error" (a failed handshake). With
   * -sess_in, s_client prints "New, TLSv1.x" from the offered session even
   * when the handshake failed, so `connected` alone does not say it worked.
   */
  readonly receivedAlert: string | undefined;
  /** The last "TLS session ticket lifetime hint: N (seconds)" printed. */
  readonly lifetimeHintSeconds: number | undefined;
}

/** Runs one `openssl s_client` connection and parses what it printed. */
export async function runSClient(options: SClientOptions): Promise<SClientResult> {
  requireCommand('openssl');
  const args = ['s_client', '-connect', `${options.host ?? '127.0.0.1'}:${options.port}`, '-ign_eof'];
  if (options.tls === '1.2') args.push('-tls1_2');
  if (options.tls === '1.3') args.push('-tls1_3');
  if (options.sessOut) args.push('-sess_out', options.sessOut);
  if (options.sessIn) args.push('-sess_in', options.sessIn);
  if (options.status) args.push('-status');
  if (options.serverName) args.push('-servername', options.serverName);
  else args.push('-noservername');
  if (options.caFile) args.push('-CAfile', options.caFile);
  args.push(...(options.extraArgs ?? []));
  const request = options.request ?? 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n';

  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stdin.on('error', () => {});
  child.stdin.end(request);
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
  const exitCode = await new Promise<number | null>((resolve) => {
    child.once('close', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  clearTimeout(timer);
  const session = /^(New|Reused), (TLSv[\d.]+)/m.exec(output);
  const certStatus = /Cert Status: (\w+)/.exec(output);
  const lifetimeHint = [...output.matchAll(/lifetime hint: (\d+)/g)].at(-1);
  return {
    output,
    exitCode,
    connected: session !== null,
    reused: session?.[1] === 'Reused',
    protocol: session?.[2],
    stapled: /OCSP Response Data:/.test(output),
    stapleCertStatus: certStatus?.[1],
    printedTicketKeyName: ticketKeyNameIn(output),
    printedTicketHex: ticketHexIn(output),
    receivedAlert: /SSL routines:[^:]*:(?:tlsv1|sslv3) alert ([a-z ]+?):/.exec(output)?.[1],
    postHandshakeTickets: (output.match(/Post-Handshake New Session Ticket arrived/g) ?? []).length,
    lifetimeHintSeconds: lifetimeHint ? Number(lifetimeHint[1]) : undefined,
  };
}

/**
 * The key name of the first "TLS session ticket:" hex dump in `text` (from
 * `openssl sess_id -text` or s_client's session print): the ticket's first 16
 * bytes in OpenSSL's and Node's format (RFC 5077 §4), lower-case hex.
 */
export function ticketKeyNameIn(text: string): string | undefined {
  const start = text.lastIndexOf('TLS session ticket:');
  if (start === -1) return undefined;
  let hex = '';
  for (const line of text.slice(start).split('\n').slice(1)) {
    const match = /^\s*[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]+)+)/i.exec(line);
    if (!match) break;
    hex += match[1]!.replace(/[^0-9a-f]/gi, '');
    if (hex.length >= 32) break;
  }
  return hex.length >= 32 ? hex.slice(0, 32).toLowerCase() : undefined;
}

/** The whole ticket of the last "TLS session ticket:" hex dump in `text`, lower-case hex. */
export function ticketHexIn(text: string): string | undefined {
  const start = text.lastIndexOf('TLS session ticket:');
  if (start === -1) return undefined;
  let hex = '';
  // "    0010 - 6e 9c ... 01-02 ... 0f   ascii": at most 16 bytes, then two spaces and the ASCII column.
  for (const line of text.slice(start).split('\n').slice(1)) {
    const match = /^\s*[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){0,15}[0-9a-f]{2})(?: {2}|\s*$)/i.exec(line);
    if (!match) break;
    hex += match[1]!.replace(/[ -]/g, '');
  }
  return hex.length > 0 ? hex.toLowerCase() : undefined;
}

/** `openssl sess_id -text` of a session file; undefined when the file does not exist. */
function sessionText(sessionFile: string): string | undefined {
  requireCommand('openssl');
  if (!existsSync(sessionFile)) return undefined;
  return execFileSync('openssl', ['sess_id', '-in', sessionFile, '-noout', '-text'], { encoding: 'utf8' });
}

/**
 * The key name a session file's ticket was sealed under; undefined when the
 * file does not exist or holds no ticket.
 */
export function sessionTicketKeyName(sessionFile: string): string | undefined {
  const text = sessionText(sessionFile);
  return text === undefined ? undefined : ticketKeyNameIn(text);
}

/** The whole ticket in a session file, lower-case hex; undefined without a file or a ticket. */
export function sessionTicketHex(sessionFile: string): string | undefined {
  const text = sessionText(sessionFile);
  return text === undefined ? undefined : ticketHexIn(text);
}

export interface STimeOptions {
  port: number;
  host?: string;
  /** Measure resumed handshakes (`-reuse`) instead of full ones (`-new`). */
  reuse: boolean;
  /** `-time`: seconds to run. */
  seconds: number;
  tls?: TlsVersion;
}

export interface STimeResult {
  readonly connections: number;
  /** What s_time printed: whole seconds, too coarse for a rate (2 s runs print 2 or 3). */
  readonly realSeconds: number;
  /** The s_time process's wall time, measured here with a monotonic clock. */
  readonly wallSeconds: number;
  /** connections / wallSeconds. */
  readonly connectionsPerSecond: number;
  /** Connections s_time marked as resumed ('r' in its progress line); with -reuse, all but the first. */
  readonly reusedConnections: number;
  readonly output: string;
}

/**
 * Runs `openssl s_time` and parses "N connections in S real seconds"; the
 * rate divides by the wall time measured here, since S is whole seconds.
 */
export async function runSTime(options: STimeOptions): Promise<STimeResult> {
  requireCommand('openssl');
  const args = [
    's_time',
    '-connect',
    `${options.host ?? '127.0.0.1'}:${options.port}`,
    options.reuse ? '-reuse' : '-new',
    '-time',
    String(options.seconds),
  ];
  if (options.tls === '1.2') args.push('-tls1_2');
  if (options.tls === '1.3') args.push('-tls1_3');
  const started = process.hrtime.bigint();
  const child = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise<void>((resolve) => child.once('close', () => resolve()));
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const lines = [...output.matchAll(/(\d+) connections in (\d+(?:\.\d+)?) real seconds/g)];
  const last = lines.at(-1);
  if (!last) throw new Error(`openssl s_time printed no rate:\n${output}`);
  const connections = Number(last[1]);
  const realSeconds = Number(last[2]);
  const progress = output.split('\n').filter((line) => /^[r*.]+$/.test(line.trim()));
  const reusedConnections = progress
    .join('')
    .split('')
    .filter((char) => char === 'r').length;
  return {
    connections,
    realSeconds,
    wallSeconds,
    connectionsPerSecond: connections / wallSeconds,
    reusedConnections,
    output,
  };
}
