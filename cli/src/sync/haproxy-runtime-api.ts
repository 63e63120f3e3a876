import net from 'node:net';

/**
 * HAProxy's runtime API over its `stats socket` (level admin): one command
 * per connection, answered and then closed by HAProxy. Only what the sync
 * needs: list and push ticket keys, replace an OCSP response.
 */
export interface HaproxyRuntimeApi {
  command(line: string): Promise<string>;
  /** The ring of `keyFile` as HAProxy holds it: base64 lines, oldest first. */
  showTicketKeys(keyFile: string): Promise<string[]>;
  /** Appends a key as ULTIMATE; the previous ultimate key starts encrypting. */
  pushTicketKey(keyFile: string, base64Key: string): Promise<void>;
  /** Replaces the staple of the certificate the response's CertID names. */
  setOcspResponse(der: Uint8Array): Promise<void>;
}

export function haproxyRuntimeApi(socketPath: string, timeoutMs = 5000): HaproxyRuntimeApi {
  const command = (line: string) =>
    new Promise<string>((resolve, reject) => {
      if (/[\r\n;]/.test(line)) {
        reject(new Error('a runtime API command is one line without ";"'));
        return;
      }
      const socket = net.createConnection(socketPath);
      let answer = '';
      socket.setTimeout(timeoutMs, () =>
        socket.destroy(new Error(`HAProxy at ${socketPath} did not answer`)),
      );
      socket.on('connect', () => socket.end(`${line}\n`));
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
      socket.on('error', reject);
      socket.on('close', () => resolve(answer));
    });
  // Errors are answered in plain text; the words differ by command, success does not.
  const expect = async (line: string, success: RegExp, what: string) => {
    const answer = await command(line);
    if (!success.test(answer)) throw new Error(`HAProxy refused ${what}: ${answer.trim().slice(0, 200)}`);
  };
  return {
    command,
    async showTicketKeys(keyFile) {
      const lines = parseShowTlsKeys(await command(`show tls-keys ${keyFile}`));
      if (lines.length === 0) throw new Error(`HAProxy lists no ticket keys for ${keyFile}`);
      return lines;
    },
    pushTicketKey: (keyFile, base64Key) =>
      expect(`set ssl tls-key ${keyFile} ${base64Key}`, /TLS ticket key updated/, 'a ticket key'),
    setOcspResponse: (der) =>
      expect(
        `set ssl ocsp-response ${Buffer.from(der).toString('base64')}`,
        /OCSP Response updated/,
        'an OCSP response',
      ),
  };
}

/**
 * Parses `show tls-keys <file>`: lines `<ref>.<slot> <base64>`, oldest first
 * (slot 1 encrypts). Anything else (comments, errors, junk) is ignored, and a
 * listing with gaps, out-of-range slots or non-base64 keys yields nothing, so
 * the caller pushes the whole ring rather than trusting half of it.
 */
export function parseShowTlsKeys(answer: string): string[] {
  const slots = new Map<number, string>();
  for (const line of answer.split('\n')) {
    const match = /^\d+\.(\d+) ([A-Za-z0-9+/]+={0,2})$/.exec(line.trim());
    if (match) slots.set(Number(match[1]), match[2]!);
  }
  const lines: string[] = [];
  for (let slot = 0; slot < slots.size; slot++) {
    const line = slots.get(slot);
    if (line === undefined) return [];
    lines.push(line);
  }
  return lines;
}
