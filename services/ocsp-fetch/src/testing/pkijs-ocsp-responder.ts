/**
 * Test and benchmark only: a small in-process OCSP responder built on pkijs.
 * It answers "good" for every CertID it is asked about, signing each response
 * on the spot with a delegated responder key (like a live responder, not a
 * pre-signed cache), over GET and POST. Used where thousands of certificates
 * are needed and `openssl ocsp -index` would be the bottleneck to set up.
 */
import http from 'node:http';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { buildOcspResponse, type KeyedCertificate } from './pkijs-test-ca.js';

export interface PkijsOcspResponder {
  readonly url: string;
  /** Requests answered so far. */
  readonly answered: () => number;
  stop(): Promise<void>;
}

function readRequest(request: http.IncomingMessage, body: Buffer): pkijs.OCSPRequest | undefined {
  let der: Uint8Array;
  if (request.method === 'GET') {
    const encoded = decodeURIComponent((request.url ?? '/').slice(1));
    der = new Uint8Array(Buffer.from(encoded, 'base64'));
  } else {
    der = new Uint8Array(body);
  }
  const parsed = asn1js.fromBER(der);
  if (parsed.offset === -1) return undefined;
  try {
    return new pkijs.OCSPRequest({ schema: parsed.result });
  } catch {
    return undefined;
  }
}

export async function startPkijsOcspResponder(
  signer: KeyedCertificate,
  validityMs = 3_600_000,
): Promise<PkijsOcspResponder> {
  let answered = 0;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const ocspRequest = readRequest(request, Buffer.concat(chunks));
      const certId = ocspRequest?.tbsRequest.requestList[0]?.reqCert;
      if (!certId) {
        response.writeHead(400).end();
        return;
      }
      const nowMs = Math.floor(Date.now() / 1000) * 1000;
      buildOcspResponse({
        certId,
        signer,
        certs: [signer],
        thisUpdateMs: nowMs - 60_000,
        nextUpdateMs: nowMs + validityMs,
        producedAtMs: nowMs,
      }).then(
        (der) => {
          answered++;
          response.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(der);
        },
        () => response.writeHead(500).end(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    answered: () => answered,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
