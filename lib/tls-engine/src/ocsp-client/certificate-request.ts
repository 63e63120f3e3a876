import net from 'node:net';
import { randomBytes } from 'node:crypto';

/**
 * What a server's TLS 1.2 flight says about client certificates: whether it
 * sent a CertificateRequest, and the DER distinguished names it lists as
 * acceptable issuers (certificate_authorities, RFC 5246 §7.4.4).
 */
export type CertificateRequestProbe =
  | { readonly kind: 'requested'; readonly acceptableIssuers: Buffer[] }
  | { readonly kind: 'not-requested' }
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'error'; readonly reason: string };

const HANDSHAKE = 0x16;
const ALERT = 0x15;
const SERVER_HELLO = 2;
const CERTIFICATE_REQUEST = 13;
const SERVER_HELLO_DONE = 14;
/** Beyond this, a flight is refused rather than buffered (a certificate chain fits easily). */
export const MAX_FLIGHT_BYTES = 256 * 1024;

/**
 * Parses the server's first flight (raw TLS records as received) up to
 * ServerHelloDone. Pure and total: truncated input is 'incomplete' (read
 * more), anything malformed or oversized is 'error', and it never throws.
 */
export function parseServerFlight(bytes: Uint8Array): CertificateRequestProbe {
  if (bytes.length > MAX_FLIGHT_BYTES) return { kind: 'error', reason: 'server flight too large' };
  // Reassemble the handshake stream from whole records.
  const chunks: Uint8Array[] = [];
  let offset = 0;
  while (offset + 5 <= bytes.length) {
    const type = bytes[offset]!;
    const length = (bytes[offset + 3]! << 8) | bytes[offset + 4]!;
    if (length > 16_384 + 2048) return { kind: 'error', reason: 'record too long' };
    if (offset + 5 + length > bytes.length) break;
    const body = bytes.subarray(offset + 5, offset + 5 + length);
    if (type === ALERT) return { kind: 'error', reason: `server sent alert ${body[1] ?? '?'}` };
    if (type !== HANDSHAKE) return { kind: 'error', reason: `unexpected record type ${type}` };
    chunks.push(body);
    offset += 5 + length;
  }
  const stream = Buffer.concat(chunks);
  let position = 0;
  let sawServerHello = false;
  let issuers: Buffer[] | undefined;
  while (position + 4 <= stream.length) {
    const type = stream[position]!;
    const length = (stream[position + 1]! << 16) | (stream[position + 2]! << 8) | stream[position + 3]!;
    if (position + 4 + length > stream.length) return { kind: 'incomplete' };
    const body = stream.subarray(position + 4, position + 4 + length);
    position += 4 + length;
    if (!sawServerHello) {
      if (type !== SERVER_HELLO)
        return { kind: 'error', reason: `expected ServerHello, got message ${type}` };
      if (body.length < 2 || body[0] !== 3 || body[1] !== 3) return { kind: 'error', reason: 'not TLS 1.2' };
      sawServerHello = true;
    } else if (type === CERTIFICATE_REQUEST) {
      const parsed = parseCertificateRequest(body);
      if (!parsed) return { kind: 'error', reason: 'malformed CertificateRequest' };
      issuers = parsed;
    } else if (type === SERVER_HELLO_DONE) {
      return issuers ? { kind: 'requested', acceptableIssuers: issuers } : { kind: 'not-requested' };
    }
  }
  return { kind: 'incomplete' };
}

/** certificate_types<1..255>, supported_signature_algorithms<2..2^16-2>, certificate_authorities<0..2^16-1>. */
function parseCertificateRequest(body: Uint8Array): Buffer[] | undefined {
  let at = 0;
  const need = (count: number) => at + count <= body.length;
  if (!need(1)) return undefined;
  const typesLength = body[at]!;
  at += 1;
  if (typesLength === 0 || !need(typesLength)) return undefined;
  at += typesLength;
  if (!need(2)) return undefined;
  const algorithmsLength = (body[at]! << 8) | body[at + 1]!;
  at += 2;
  if (!need(algorithmsLength)) return undefined;
  at += algorithmsLength;
  if (!need(2)) return undefined;
  const authoritiesLength = (body[at]! << 8) | body[at + 1]!;
  at += 2;
  if (at + authoritiesLength !== body.length) return undefined;
  const names: Buffer[] = [];
  while (at < body.length) {
    if (!need(2)) return undefined;
    const nameLength = (body[at]! << 8) | body[at + 1]!;
    at += 2;
    if (nameLength === 0 || !need(nameLength)) return undefined;
    names.push(Buffer.from(body.subarray(at, at + nameLength)));
    at += nameLength;
  }
  return names;
}

/** A TLS 1.2 ClientHello offering common ECDHE suites, so most servers answer with their full first flight. */
export function tls12ClientHello(serverName?: string): Buffer {
  const u16 = (value: number) => Buffer.from([value >> 8, value & 0xff]);
  const vector16 = (data: Buffer) => Buffer.concat([u16(data.length), data]);
  const extension = (type: number, data: Buffer) => Buffer.concat([u16(type), vector16(data)]);
  const suites = [0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0x009c, 0x009d, 0x002f, 0x0035];
  const extensions = [
    ...(serverName
      ? [
          extension(
            0x0000,
            vector16(Buffer.concat([Buffer.from([0]), vector16(Buffer.from(serverName, 'ascii'))])),
          ),
        ]
      : []),
    extension(0x000a, vector16(Buffer.concat([0x001d, 0x0017, 0x0018].map(u16)))),
    extension(0x000b, Buffer.from([1, 0])),
    extension(
      0x000d,
      vector16(
        Buffer.concat([0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601].map(u16)),
      ),
    ),
    extension(0xff01, Buffer.from([0])), // renegotiation_info, empty
  ];
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    randomBytes(32),
    Buffer.from([0]), // no session id
    vector16(Buffer.concat(suites.map(u16))),
    Buffer.from([1, 0]), // null compression
    vector16(Buffer.concat(extensions)),
  ]);
  const handshake = Buffer.concat([
    Buffer.from([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
    body,
  ]);
  return Buffer.concat([Buffer.from([HANDSHAKE, 3, 1]), u16(handshake.length), handshake]);
}

/**
 * Learns which issuers a server accepts for client certificates, which Node's
 * TLS API never shows a client: a raw TLS 1.2 ClientHello, the server's first
 * flight read up to ServerHelloDone, and the connection dropped before any
 * key exchange. In TLS 1.3 the CertificateRequest is encrypted, so a
 * 1.3-only server answers 'error' (protocol_version alert). Never throws.
 */
export function probeCertificateRequest(options: {
  host: string;
  port: number;
  serverName?: string;
  /** Default 5000. */
  timeoutMs?: number;
}): Promise<CertificateRequestProbe> {
  return new Promise((resolve) => {
    const socket = net.connect(options.port, options.host);
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (result: CertificateRequestProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'error', reason: 'timed out' }), options.timeoutMs ?? 5000);
    socket.once('connect', () => socket.write(tls12ClientHello(options.serverName)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const result = parseServerFlight(received);
      if (result.kind !== 'incomplete') finish(result);
    });
    socket.once('error', (error) => finish({ kind: 'error', reason: error.message }));
    socket.once('close', () => finish({ kind: 'error', reason: 'connection closed before ServerHelloDone' }));
  });
}
