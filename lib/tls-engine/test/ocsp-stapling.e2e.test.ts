// Stapling through attach(): a WatchStaples stream (a real gRPC peer) feeds the
// staple cache, and openssl s_client -status shows what the server staples.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import {
  OcspCertStatus,
  StapleServiceClient,
  StapleServiceService,
  StapleStatus,
  type CertificateRecord,
  type WatchStaplesRequest,
  type WatchStaplesResponse,
} from '@keyfleet/proto';
import {
  createTestPki,
  fetchOcspResponse,
  freePort,
  runSClient,
  startGrpcServer,
  startOcspResponder,
  type IssuedCertificate,
  type OcspResponder,
  type TestGrpcServer,
  type TestPki,
} from '@keyfleet/test-support';
import { attach, certificateId, WatchStaplesProvider, type AttachedTlsEngine } from '@keyfleet/tls-engine';

let pki: TestPki;
let responder: OcspResponder;
let grpcServer: TestGrpcServer;
let client: StapleServiceClient;
let provider: WatchStaplesProvider;
let server: https.Server;
let port: number;
let engine: AttachedTlsEngine;
let mustStapleLeaf: IssuedCertificate;
let plainLeaf: IssuedCertificate;
const registry = new Registry();

// The fake StapleService: records by id, and the streams currently open.
const records = new Map<string, CertificateRecord>();
const streams = new Set<grpc.ServerWritableStream<WatchStaplesRequest, WatchStaplesResponse>>();

function idOf(cert: IssuedCertificate): string {
  return certificateId(new X509Certificate(readFileSync(cert.certPath)).raw);
}

// openssl 3.0's responder rereads its index one request late (certificates
// issued after it started): a throwaway query first.
const fetchStaple = (cert: IssuedCertificate): Buffer => fetchOcspResponse(pki, cert, { refreshIndex: true });

function publish(
  cert: IssuedCertificate,
  der: Buffer | undefined,
  nextUpdateMs: number,
  status: OcspCertStatus,
): void {
  const id = idOf(cert);
  const record: CertificateRecord = {
    id,
    subject: cert.name,
    issuer: 'intermediate',
    serialHex: '',
    notAfterMs: 0,
    dnsNames: [],
    ocspUrl: pki.ocspUrl,
    status: der ? StapleStatus.GOOD : StapleStatus.PENDING,
    staple: der
      ? {
          der,
          certStatus: status,
          thisUpdateMs: Date.now() - 1000,
          nextUpdateMs,
          producedAtMs: Date.now() - 1000,
          revokedAtMs: 0,
          fetchedAtMs: Date.now(),
          responderUrl: pki.ocspUrl,
        }
      : undefined,
    fetch: undefined,
    registeredAtMs: Date.now(),
  };
  records.set(id, record);
  for (const stream of streams) stream.write({ updated: record });
}

async function servedCount(result: string): Promise<number> {
  const metric = await registry.getSingleMetric('keyfleet_engine_staples_served_total')!.get();
  return metric.values.find((value) => value.labels.result === result)?.value ?? 0;
}

/** The stream delivers asynchronously: poll s_client until the expected answer (generous deadline). */
async function sClientUntil(
  serverName: string | undefined,
  predicate: (result: Awaited<ReturnType<typeof runSClient>>) => boolean,
) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const result = await runSClient({
      port,
      tls: '1.3',
      status: true,
      ...(serverName ? { serverName } : {}),
    });
    if (predicate(result) || Date.now() > deadline) return result;
    await sleep(200);
  }
}

before(async () => {
  pki = createTestPki(await freePort());
  responder = await startOcspResponder(pki);
  mustStapleLeaf = pki.issueLeaf('muststaple', { dnsNames: ['must.test'], mustStaple: true });
  plainLeaf = pki.issueLeaf('plain', { dnsNames: ['plain.test'] });
  grpcServer = await startGrpcServer((s) =>
    s.addService(StapleServiceService, {
      watchStaples: (call: grpc.ServerWritableStream<WatchStaplesRequest, WatchStaplesResponse>) => {
        streams.add(call);
        call.write({ snapshot: { certificates: [...records.values()] } });
        call.on('cancelled', () => streams.delete(call));
        call.on('close', () => streams.delete(call));
      },
    }),
  );
  client = new StapleServiceClient(grpcServer.address, grpc.credentials.createInsecure());
  provider = new WatchStaplesProvider({ client, nodeId: 'stapling-test' });
  server = https.createServer({ cert: pki.leaf.chainPem(), key: pki.leaf.keyPem() }, (_request, response) =>
    response.end('ok\n'),
  );
  engine = attach(server, { staples: provider, strictMustStaple: true, registry });
  server.addContext('must.test', { cert: mustStapleLeaf.chainPem(), key: mustStapleLeaf.keyPem() });
  server.addContext('plain.test', { cert: plainLeaf.chainPem(), key: plainLeaf.keyPem() });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

after(async () => {
  engine?.detach();
  provider?.close();
  client?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await grpcServer?.stop();
  await responder?.stop();
  pki?.remove();
});

test('the staple the provider holds is stapled: openssl s_client -status shows it good', async () => {
  publish(pki.leaf, fetchStaple(pki.leaf), Date.now() + 600_000, OcspCertStatus.GOOD);
  const before = await servedCount('stapled');
  const result = await sClientUntil(undefined, (r) => r.stapled);
  assert.ok(result.stapled, result.output);
  assert.equal(result.stapleCertStatus, 'good');
  assert.ok((await servedCount('stapled')) > before);
  assert.equal(streams.size, 1, 'one stream while the server listens');
});

test('a certificate without a staple gets none, and the handshake goes on', async () => {
  const result = await runSClient({ port, tls: '1.3', status: true, serverName: 'plain.test' });
  assert.ok(result.connected, result.output);
  assert.equal(result.stapled, false);
  assert.match(result.output, /OCSP response: no response sent/);
  assert.ok((await servedCount('none')) > 0);
});

test('an expired staple is never served', async () => {
  publish(plainLeaf, fetchStaple(plainLeaf), Date.now() - 1, OcspCertStatus.GOOD);
  const before = await servedCount('expired');
  const deadline = Date.now() + 15_000;
  while (provider.lookup(idOf(plainLeaf), Date.now()).kind !== 'expired' && Date.now() < deadline)
    await sleep(50);
  const result = await runSClient({ port, tls: '1.3', status: true, serverName: 'plain.test' });
  assert.ok(result.connected, result.output);
  assert.equal(result.stapled, false);
  assert.ok((await servedCount('expired')) > before);
});

test('strict mode: a must-staple certificate without a staple fails the handshake; with one it staples', async () => {
  const refused = await runSClient({ port, tls: '1.3', status: true, serverName: 'must.test' });
  assert.equal(refused.connected, false, refused.output);
  assert.ok((await servedCount('refused')) > 0);
  // A client that does not ask for a staple is not refused (no OCSPRequest is raised).
  const noStatus = await runSClient({ port, tls: '1.3', serverName: 'must.test' });
  assert.ok(noStatus.connected, noStatus.output);
  publish(mustStapleLeaf, fetchStaple(mustStapleLeaf), Date.now() + 600_000, OcspCertStatus.GOOD);
  const stapled = await sClientUntil('must.test', (r) => r.stapled);
  assert.ok(stapled.connected && stapled.stapled, stapled.output);
});

test('after the leaf is revoked and the staple refreshed, the revoked response is stapled', async () => {
  pki.revoke(pki.leaf);
  responder.refreshIndex(pki.leaf);
  publish(pki.leaf, fetchStaple(pki.leaf), Date.now() + 600_000, OcspCertStatus.REVOKED);
  const result = await sClientUntil(undefined, (r) => r.stapleCertStatus === 'revoked');
  assert.equal(result.stapleCertStatus, 'revoked', result.output);
});

test('the stream runs only while someone listens: detach closes it', async () => {
  assert.equal(streams.size, 1);
  engine.detach();
  const deadline = Date.now() + 10_000;
  while (streams.size > 0 && Date.now() < deadline) await sleep(50);
  assert.equal(streams.size, 0);
});
