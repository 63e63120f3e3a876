/** Test-only helpers shared by the service's integration tests. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { TestPki } from '@keyfleet/test-support';
import type { Registry } from 'prom-client';
import {
  StapleServiceClient,
  type GetStapleResponse,
  type ListCertificatesRequest,
  type ListCertificatesResponse,
  type RegisterCertificateResponse,
  type UnregisterCertificateResponse,
  type WatchStaplesResponse,
} from '@keyfleet/proto';

/** What `openssl ocsp` says of a staple for the PKI's leaf, verified up to its root (throws when it fails). */
export function opensslCheckStaple(pki: TestPki, der: Uint8Array, fileName = 'staple.der'): string {
  const derPath = path.join(pki.dir, fileName);
  writeFileSync(derPath, der);
  return execFileSync(
    'openssl',
    [
      'ocsp',
      '-respin',
      derPath,
      '-issuer',
      pki.intermediate.certPath,
      '-cert',
      pki.leaf.certPath,
      '-CAfile',
      pki.root.certPath,
    ],
    { encoding: 'utf8', stdio: 'pipe' },
  );
}

/** Polls `check` until it returns a value other than undefined/false, or fails naming `what`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T> | T,
  timeoutMs = 20_000,
): Promise<Exclude<T, false | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as Exclude<T, false | undefined>;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `timed out waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`,
  );
}

/** The value of one series of a counter or gauge, 0 when absent. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values
    .filter((v) =>
      Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
    )
    .reduce((sum, v) => sum + v.value, 0);
}

/** Promise-returning StapleService calls over plain text (tests run insecure-dev). */
export function stapleClient(port: number) {
  const client = new StapleServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const unary = <Res>(
    invoke: (callback: (error: grpc.ServiceError | null, response: Res) => void) => unknown,
  ) =>
    new Promise<Res>((resolve, reject) => {
      invoke((error, response) => (error ? reject(error) : resolve(response)));
    });
  return {
    client,
    register: (request: { chainPem: string }) =>
      unary<RegisterCertificateResponse>((cb) => client.registerCertificate(request, cb)),
    unregister: (request: { id: string }) =>
      unary<UnregisterCertificateResponse>((cb) => client.unregisterCertificate(request, cb)),
    list: (request: ListCertificatesRequest) =>
      unary<ListCertificatesResponse>((cb) => client.listCertificates(request, cb)),
    get: (request: { id?: string; fingerprintSha256?: Buffer }) =>
      unary<GetStapleResponse>((cb) => client.getStaple(request, cb)),
    /** Opens WatchStaples and collects every message. */
    watch(ids: string[] = [], heartbeatIntervalMs = 0) {
      const messages: WatchStaplesResponse[] = [];
      const stream = client.watchStaples({ ids, nodeId: 'test-node', heartbeatIntervalMs });
      stream.on('data', (message: WatchStaplesResponse) => messages.push(message));
      stream.on('error', () => {});
      return { stream, messages };
    },
    close: () => client.close(),
  };
}
