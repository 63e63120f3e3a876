import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { FetchResult, fetchFailure, type FetchFailure } from '@keyfleet/tls-engine';
import { ocspGetUrl } from '../ocsp/ocsp-request.js';
import { guardedLookup, type ResponderAddressPolicy } from './responder-address.js';

/** Transport limits for one OCSP fetch; resolved by compileOcspFetchOptions. */
export interface HttpFetchLimits {
  /** Time to establish the TCP connection. */
  readonly connectTimeoutMs: number;
  /** Time for the whole exchange, connection included. */
  readonly totalTimeoutMs: number;
  /** The body is cut off, and the fetch failed, once it exceeds this. */
  readonly maxResponseBytes: number;
  /** GET when the URL-encoded request is at most this long (RFC 5019: 255), else POST. */
  readonly getMaxEncodedBytes: number;
  /** Which resolved addresses may be fetched from (none internal unless allow-listed). Default: no check. */
  readonly addressPolicy?: ResponderAddressPolicy;
}

export type HttpFetchOutcome =
  { readonly ok: true; readonly body: Uint8Array; readonly method: 'GET' | 'POST' } | FetchFailure;

/**
 * One OCSP exchange over HTTP (RFC 6960 appendix A, RFC 5019 section 5):
 * GET with the base64 request in the path when short enough, else POST with
 * application/ocsp-request. Enforces the connect and total timeouts and the
 * size cap while reading, so a hostile responder can neither hold a worker
 * nor fill memory. Never rejects: every outcome is a value.
 */
export function fetchOcspOverHttp(
  responderUrl: string,
  requestDer: Uint8Array,
  limits: HttpFetchLimits,
): Promise<HttpFetchOutcome> {
  const getUrl = ocspGetUrl(responderUrl, requestDer, limits.getMaxEncodedBytes);
  const method = getUrl ? 'GET' : 'POST';
  let target: URL;
  try {
    target = new URL(getUrl ?? responderUrl);
  } catch {
    return Promise.resolve(fetchFailure(FetchResult.NetworkError, 'responder URL is not a valid URL'));
  }
  const transport = target.protocol === 'https:' ? https : target.protocol === 'http:' ? http : undefined;
  if (!transport) {
    return Promise.resolve(fetchFailure(FetchResult.NetworkError, `unsupported scheme ${target.protocol}`));
  }

  const policy = limits.addressPolicy;
  const host = target.hostname.replace(/^\[|\]$/g, '');
  if (policy && net.isIP(host)) {
    const refused = policy.refusal(host);
    if (refused) return Promise.resolve(fetchFailure(FetchResult.ForbiddenAddress, refused));
  }

  return new Promise((resolve) => {
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (outcome: HttpFetchOutcome) => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      if (!outcome.ok) request.destroy();
      resolve(outcome);
    };
    const request = transport.request(target, {
      method,
      // A fresh connection per fetch: responders such as `openssl ocsp` close
      // after each answer, and a reused dead socket would look like a failure.
      agent: false,
      // After DNS resolution: an internal address is refused unless allow-listed.
      ...(policy ? { lookup: guardedLookup(policy) as unknown as net.LookupFunction } : {}),
      headers: {
        accept: 'application/ocsp-response',
        ...(method === 'POST'
          ? { 'content-type': 'application/ocsp-request', 'content-length': String(requestDer.byteLength) }
          : {}),
      },
    });
    timers.push(
      setTimeout(
        () => finish(fetchFailure(FetchResult.Timeout, `no connection within ${limits.connectTimeoutMs} ms`)),
        limits.connectTimeoutMs,
      ),
      setTimeout(
        () =>
          finish(fetchFailure(FetchResult.Timeout, `no complete answer within ${limits.totalTimeoutMs} ms`)),
        limits.totalTimeoutMs,
      ),
    );
    request.once('socket', (socket) => {
      socket.once('connect', () => clearTimeout(timers[0]));
    });
    request.once('error', (error: NodeJS.ErrnoException) =>
      finish(
        error.code === 'EFORBIDDENADDRESS'
          ? fetchFailure(FetchResult.ForbiddenAddress, error.message)
          : fetchFailure(FetchResult.NetworkError, error.code ?? 'connection failed'),
      ),
    );
    request.once('response', (response) => {
      if (response.statusCode !== 200) {
        finish(fetchFailure(FetchResult.HttpError, `http ${response.statusCode ?? 'without status'}`));
        return;
      }
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > limits.maxResponseBytes) {
        finish(
          fetchFailure(FetchResult.TooLarge, `content-length ${declared} is over ${limits.maxResponseBytes}`),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.byteLength;
        if (received > limits.maxResponseBytes) {
          finish(fetchFailure(FetchResult.TooLarge, `body is over ${limits.maxResponseBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      response.once('end', () => finish({ ok: true, body: new Uint8Array(Buffer.concat(chunks)), method }));
      response.once('error', () =>
        finish(fetchFailure(FetchResult.NetworkError, 'connection broke while reading')),
      );
      response.once('aborted', () =>
        finish(fetchFailure(FetchResult.NetworkError, 'connection broke while reading')),
      );
    });
    request.end(method === 'POST' ? requestDer : undefined);
  });
}
