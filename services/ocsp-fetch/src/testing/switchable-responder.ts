/**
 * Test-only: an HTTP front on the port a test PKI's AIA URL names. It
 * forwards to a real `openssl ocsp` behind it, or misbehaves on demand in the
 * ways openssl cannot (HTTP 500, garbage, an oversized body, silence,
 * tryLater), and records every request so tests can count fetches per
 * certificate (without a nonce, a certificate's GET path is always the same).
 */
import http from 'node:http';

export type ResponderMode =
  'proxy' | 'http500' | 'garbage' | 'oversize' | 'oversizeChunked' | 'hang' | 'tryLater';

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly atMs: number;
}

export interface SwitchableResponder {
  readonly url: string;
  mode: ResponderMode;
  readonly requests: RecordedRequest[];
  stop(): Promise<void>;
}

/** OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED tryLater(3) } */
const tryLaterDer = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x03]);

export async function startSwitchableResponder(
  port: number,
  backendUrl: string,
): Promise<SwitchableResponder> {
  const backend = new URL(backendUrl);
  const state: SwitchableResponder = {
    url: `http://127.0.0.1:${port}`,
    mode: 'proxy',
    requests: [],
    stop: async () => {},
  };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      state.requests.push({ method: request.method ?? '', path: request.url ?? '', atMs: Date.now() });
      const reply = (status: number, body: Buffer) =>
        response
          .writeHead(status, {
            'content-type': 'application/ocsp-response',
            'content-length': body.byteLength,
          })
          .end(body);
      switch (state.mode) {
        case 'http500':
          return reply(500, Buffer.from('internal error'));
        case 'garbage':
          return reply(200, Buffer.from('this is not DER at all, it is a friendly HTML page'));
        case 'oversize':
          return reply(200, Buffer.alloc(70_000, 0x30));
        case 'oversizeChunked': {
          // No content-length: the cap must hold while reading.
          response.writeHead(200, { 'content-type': 'application/ocsp-response' });
          const chunk = Buffer.alloc(16_384, 0x30);
          let sent = 0;
          const pump = () => {
            while (sent < 20 && !response.destroyed) {
              sent++;
              if (!response.write(chunk)) return void response.once('drain', pump);
            }
            response.end();
          };
          return pump();
        }
        case 'tryLater':
          return reply(200, tryLaterDer);
        case 'hang':
          return; // never answers
        case 'proxy': {
          const upstream = http.request(
            {
              host: backend.hostname,
              port: backend.port,
              method: request.method,
              path: request.url,
              headers: { 'content-type': request.headers['content-type'] ?? 'application/ocsp-request' },
              agent: false,
            },
            (answer) => {
              response.writeHead(answer.statusCode ?? 502, answer.headers);
              answer.pipe(response);
            },
          );
          upstream.on('error', () => reply(502, Buffer.from('bad gateway')));
          upstream.end(Buffer.concat(chunks));
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  state.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
