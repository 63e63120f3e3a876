// Staples over Envoy's SDS, against a real `openssl ocsp` responder, a real
// redis-server and real gRPC, through a client on Envoy's own protos: a
// registered certificate is served as `staple/<id>` with its chain, the
// private-key path for the Envoy and, once fetched, a staple openssl accepts;
// a refresh pushes a new version; bad names and an unset key path are clear
// errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  createLogger,
  fetchSecrets,
  insecureDevSecurity,
  secretDiscoveryClient,
  subscribeSecrets,
  unpackSecret,
  type DiscoveryResponse,
  type SecretDiscoveryClient,
} from '@keyfleet/service-kit';
import {
  createTestPki,
  freePort,
  randomPrefix,
  startOcspResponder,
  startRedis,
  type OcspResponder,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';
import { createOcspFetchServer, type OcspFetchServer } from './ocsp-fetch-server.js';
import { opensslCheckStaple, stapleClient, waitFor } from './testing/service-helpers.js';

let redis: TestRedis;
let pki: TestPki;
let responder: OcspResponder;
let server: OcspFetchServer;
let withoutKeyPath: OcspFetchServer;
let api: ReturnType<typeof stapleClient>;
let sds: SecretDiscoveryClient;
let leafId = '';
const keyPath = '/etc/envoy/private/{certificate}.key';

before(async () => {
  redis = await startRedis();
  pki = createTestPki(await freePort());
  responder = await startOcspResponder(pki, { nextUpdateMinutes: 1 });
  const prefix = randomPrefix('sds-staple');
  const common = {
    allowedResponderNetworks: ['127.0.0.0/8'],
    redisUrl: redis.url,
    security: insecureDevSecurity(),
    grpcAddress: '127.0.0.1:0',
    keyPrefix: prefix,
    logger: createLogger('sds-staple-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
  };
  server = await createOcspFetchServer({
    ...common,
    sdsPrivateKeyPath: keyPath,
    // openssl answers with a 60 s window: refresh about every 3 s.
    refresh: { refreshAtFraction: 0.05, jitterFraction: 0, minRefreshDelayMs: 300, safetyMarginMs: 10_000 },
  });
  withoutKeyPath = await createOcspFetchServer({ ...common, runRefreshWorker: false });
  await server.whenReady();
  await withoutKeyPath.whenReady();
  api = stapleClient(server.grpcPort);
  sds = secretDiscoveryClient(`127.0.0.1:${server.grpcPort}`);
  leafId = (await api.register({ chainPem: pki.leaf.chainPem() })).certificate!.id;
});

after(async () => {
  sds?.close();
  api?.close();
  await server?.stop();
  await withoutKeyPath?.stop();
  await responder?.stop();
  await redis?.stop();
  pki?.remove();
});

/** The tls_certificate a response carries, checked to be the one resource named. */
function tlsCertificateOf(response: DiscoveryResponse, name: string) {
  assert.equal(response.resources.length, 1);
  const secret = unpackSecret(response.resources[0]!);
  assert.equal(secret.name, name);
  const tls = secret.tls_certificate!;
  const inline = (source: typeof tls.certificate_chain | undefined) =>
    source && 'inline_bytes' in source && source.inline_bytes.length > 0 ? source.inline_bytes : undefined;
  return {
    chain: inline(tls.certificate_chain)!,
    privateKey: tls.private_key,
    staple: inline(tls.ocsp_staple),
  };
}

test('staple/<id>: the chain, the key path on the Envoy, a staple openssl accepts; a refresh pushes a new version', async () => {
  const name = `staple/${leafId}`;
  const envoy = subscribeSecrets(sds, { nodeId: 'envoy-staples', names: [name] });
  try {
    // The first response may come before the first fetch (no staple yet): wait for a stapled one.
    const stapled = await waitFor('a stapled response', () =>
      envoy.responses.find((response) => tlsCertificateOf(response, name).staple),
    );
    const { chain, privateKey, staple } = tlsCertificateOf(stapled, name);
    const leaf = new X509Certificate(chain);
    assert.equal(createHash('sha256').update(leaf.raw).digest('hex'), leafId, 'the leaf comes first');
    assert.ok(leaf.checkIssued(new X509Certificate(pki.intermediate.chainPem())), 'then its issuer');
    assert.equal(
      privateKey && 'filename' in privateKey && privateKey.filename,
      `/etc/envoy/private/${leafId}.key`,
    );

    const text = opensslCheckStaple(pki, staple!, 'sds-staple.der');
    assert.match(text, /: good/);
    envoy.ack(stapled);

    const count = envoy.responses.length;
    const refreshed = await envoy.next(count + 1, 20_000);
    assert.notEqual(refreshed.version_info, stapled.version_info);
    assert.notDeepEqual(tlsCertificateOf(refreshed, name).staple, staple, 'a newer staple');
    assert.deepEqual(tlsCertificateOf(refreshed, name).chain, chain, 'the same chain');
    assert.equal(envoy.error(), undefined);

    const metrics = await server.registry.metrics();
    assert.match(metrics, /keyfleet_sds_streams\{api="sotw"\} 1/);
    assert.match(metrics, /keyfleet_sds_pushes_total\{resource="staple\/\*"\} [2-9]/);
  } finally {
    envoy.close();
  }
});

test('a certificate registered on the other replica a moment ago is served, not NOT_FOUND', async () => {
  // Registered through the replica without a key path, subscribed at once on
  // this one: the record is in Redis before this replica's hub has heard of it.
  const other = stapleClient(withoutKeyPath.grpcPort);
  try {
    const fresh = pki.issueLeaf('sds-fresh', { dnsNames: ['sds-fresh.test'] });
    const id = (await other.register({ chainPem: fresh.chainPem() })).certificate!.id;
    const name = `staple/${id}`;
    const envoy = subscribeSecrets(sds, { nodeId: 'envoy-fresh', names: [name] });
    try {
      await waitFor('a stapled response for the new certificate', () => {
        assert.equal(envoy.error(), undefined, 'the stream is not refused');
        return envoy.responses.find((response) => tlsCertificateOf(response, name).staple);
      });
    } finally {
      envoy.close();
      // The registry holds one certificate again, as the tests after this one expect.
      await other.unregister({ id });
    }
  } finally {
    other.close();
  }
});

test('FetchSecrets answers with the same secret', async () => {
  const name = `staple/${leafId}`;
  const fetched = await fetchSecrets(sds, {
    node: { id: 'envoy-f', cluster: 'test' },
    resource_names: [name],
  });
  const { chain, privateKey } = tlsCertificateOf(fetched, name);
  assert.ok(new X509Certificate(chain));
  assert.equal(
    privateKey && 'filename' in privateKey && privateKey.filename,
    `/etc/envoy/private/${leafId}.key`,
  );
});

test('unknown certificates, malformed names and an unset key path are clear errors', async () => {
  const fetch = (client: SecretDiscoveryClient, name: string) =>
    fetchSecrets(client, { node: { id: 'envoy-e', cluster: 'test' }, resource_names: [name] });
  const rejectsWith = async (promise: Promise<unknown>, code: grpc.status, pattern: RegExp) =>
    assert.rejects(promise, (error: grpc.ServiceError) => error.code === code && pattern.test(error.details));

  await rejectsWith(fetch(sds, `staple/${'0'.repeat(64)}`), grpc.status.NOT_FOUND, /not registered/);
  for (const bad of [
    `staple/${leafId.toUpperCase()}`,
    `staple/${leafId}x`,
    'staple/../../etc',
    `ticket-keys/edge`,
  ]) {
    await rejectsWith(fetch(sds, bad), grpc.status.NOT_FOUND, /serves staple\/<certificate id>/);
  }
  await rejectsWith(
    fetch(sds, `staple/${'\u0001'.repeat(3)}`),
    grpc.status.INVALID_ARGUMENT,
    /resource name/,
  );

  const other = secretDiscoveryClient(`127.0.0.1:${withoutKeyPath.grpcPort}`);
  try {
    await rejectsWith(
      fetch(other, `staple/${leafId}`),
      grpc.status.FAILED_PRECONDITION,
      /KEYFLEET_SDS_PRIVATE_KEY_PATH/,
    );
  } finally {
    other.close();
  }
  // The registry is untouched by any of it.
  assert.equal((await api.list({})).certificates.length, 1);
});
