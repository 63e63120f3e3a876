// OCSP fetches cannot be pointed at the internal network: a registered
// chain's AIA URL naming loopback (by address or by a host name that resolves
// there) is refused after DNS resolution, before any connection, and counted;
// the allow-list is what lets the tests' and the local fleet's loopback
// responders through. A real redis-server, a real listening socket, real gRPC.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { StapleStatus } from '@keyfleet/proto';
import { createLogger, insecureDevSecurity } from '@keyfleet/service-kit';
import {
  createTestPki,
  freePort,
  randomPrefix,
  startRedis,
  type TestPki,
  type TestRedis,
} from '@keyfleet/test-support';
import { fetchOcspOverHttp } from './fetch/http-fetch.js';
import { responderAddressPolicy } from './fetch/responder-address.js';
import { createOcspFetchServer, type OcspFetchServer } from './ocsp-fetch-server.js';
import { metricValue, stapleClient, waitFor } from './testing/service-helpers.js';

let redis: TestRedis;
let pki: TestPki;
let listener: http.Server;
let listenerPort: number;
let hits = 0;
let server: OcspFetchServer;

before(async () => {
  redis = await startRedis();
  listenerPort = await freePort();
  // Stands in for an internal service: it must never see a request.
  listener = http.createServer((_request, response) => {
    hits += 1;
    response.writeHead(500).end();
  });
  listener.on('connection', () => (hits += 1));
  await new Promise<void>((resolve) => listener.listen(listenerPort, '127.0.0.1', resolve));
  pki = createTestPki(listenerPort);
  server = await createOcspFetchServer({
    redisUrl: redis.url,
    security: insecureDevSecurity(),
    grpcAddress: '127.0.0.1:0',
    keyPrefix: randomPrefix('ssrf'),
    logger: createLogger('ocsp-fetch-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    refresh: { retryInitialMs: 200, retryMaxMs: 400 },
    // No allow-list: the production default.
  });
});

after(async () => {
  await server?.stop();
  await new Promise((resolve) => listener?.close(resolve));
  await redis?.stop();
  pki?.remove();
});

test('a chain whose responder is on loopback is refused, counted, and nothing connects', async () => {
  const api = stapleClient(server.grpcPort);
  try {
    const { certificate } = await api.register({ chainPem: pki.leaf.chainPem() });
    const record = await waitFor('a refused fetch', async () => {
      const current = (await api.get({ id: certificate!.id })).certificate;
      return current?.status === StapleStatus.FETCH_FAILING ? current : undefined;
    });
    assert.match(record.fetch?.lastError ?? '', /^forbidden_address: responder address 127\.0\.0\.1 /);
    assert.ok(
      (await metricValue(server.registry, 'keyfleet_ocsp_fetches_total', { result: 'forbidden_address' })) >=
        1,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(hits, 0, 'no connection reached the internal address');
  } finally {
    api.close();
  }
});

test('a host name that resolves to loopback is refused after resolution; the allow-list lets it through', async () => {
  const limits = {
    connectTimeoutMs: 1000,
    totalTimeoutMs: 2000,
    maxResponseBytes: 65_536,
    getMaxEncodedBytes: 255,
  };
  const request = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]);
  const refused = await fetchOcspOverHttp(`http://localhost:${listenerPort}/`, request, {
    ...limits,
    addressPolicy: responderAddressPolicy([]),
  });
  assert.ok(!refused.ok && refused.reason === 'forbidden_address', JSON.stringify(refused));
  assert.equal(hits, 0);
  const allowed = await fetchOcspOverHttp(`http://localhost:${listenerPort}/`, request, {
    ...limits,
    addressPolicy: responderAddressPolicy(['127.0.0.0/8', '::1/128']),
  });
  assert.ok(!allowed.ok && allowed.reason === 'http_error', JSON.stringify(allowed));
  assert.ok(hits > 0, 'the allow-listed responder was reached');
});

test('the forbidden ranges: metadata, private, link-local, mapped and unique-local addresses', () => {
  const policy = responderAddressPolicy(['10.1.2.0/24']);
  for (const address of [
    '127.0.0.1',
    '169.254.169.254',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    '::ffff:127.0.0.1',
    'fd00:ec2::254',
    'fe80::1',
  ]) {
    assert.ok(policy.refusal(address), address);
  }
  for (const address of ['10.1.2.3', '8.8.8.8', '2001:4860:4860::8888', '::ffff:8.8.8.8']) {
    assert.equal(policy.refusal(address), undefined, address);
  }
  assert.throws(() => responderAddressPolicy(['not-a-network']), /not an address or CIDR/);
});
