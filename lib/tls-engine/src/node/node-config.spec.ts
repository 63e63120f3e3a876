import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileEngineNodeConfig, ConfigError } from './node-config.js';

const minimal = { KEYFLEET_CERT_CHAIN: '/c.pem', KEYFLEET_KEY: '/k.pem', KEYFLEET_INSECURE_DEV: 'true' };

test('defaults: loopback 8443, ring default, local services, no metrics, no upstream', () => {
  const config = compileEngineNodeConfig(minimal);
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8443 });
  assert.equal(config.ring, 'default');
  assert.equal(config.ticketKeysAddress, '127.0.0.1:50051');
  assert.equal(config.ocspFetchAddress, '127.0.0.1:50052');
  assert.equal(config.metrics, undefined);
  assert.equal(config.upstream, undefined);
  assert.equal(config.strictMustStaple, false);
  assert.equal(config.shutdownGraceMs, 3000);
  assert.deepEqual(config.connection, { insecure: true });
});

test('values: listen, metrics, upstream (IPv6 too), stapling off, strict, mTLS', () => {
  const config = compileEngineNodeConfig({
    KEYFLEET_CERT_CHAIN: '/c.pem',
    KEYFLEET_KEY: '/k.pem',
    KEYFLEET_LISTEN: '0.0.0.0:443',
    KEYFLEET_METRICS_ADDRESS: '127.0.0.1:9464',
    KEYFLEET_UPSTREAM: '[::1]:8080',
    KEYFLEET_OCSP_FETCH_ADDRESS: 'off',
    KEYFLEET_STRICT_MUST_STAPLE: 'yes',
    KEYFLEET_RING: 'edge-1',
    KEYFLEET_NODE_ID: 'pod-7',
    KEYFLEET_CLIENT_CA: '/ca',
    KEYFLEET_CLIENT_CERT: '/cert',
    KEYFLEET_CLIENT_KEY: '/key',
  });
  assert.deepEqual(config.listen, { host: '0.0.0.0', port: 443 });
  assert.deepEqual(config.metrics, { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(config.upstream, { host: '::1', port: 8080 });
  assert.equal(config.ocspFetchAddress, undefined);
  assert.equal(config.strictMustStaple, true);
  assert.equal(config.ring, 'edge-1');
  assert.equal(config.nodeId, 'pod-7');
  assert.deepEqual(config.connection, { caPath: '/ca', certPath: '/cert', keyPath: '/key' });
});

const bad: [string, Record<string, string>][] = [
  ['KEYFLEET_CERT_CHAIN', { KEYFLEET_CERT_CHAIN: '' }],
  ['KEYFLEET_KEY', { KEYFLEET_KEY: '  ' }],
  ['KEYFLEET_LISTEN', { KEYFLEET_LISTEN: 'localhost' }],
  ['KEYFLEET_LISTEN', { KEYFLEET_LISTEN: '127.0.0.1:70000' }],
  ['KEYFLEET_METRICS_ADDRESS', { KEYFLEET_METRICS_ADDRESS: ':' }],
  ['KEYFLEET_UPSTREAM', { KEYFLEET_UPSTREAM: 'host:port' }],
  ['KEYFLEET_TICKET_KEYS_ADDRESS', { KEYFLEET_TICKET_KEYS_ADDRESS: 'nowhere' }],
  ['KEYFLEET_OCSP_FETCH_ADDRESS', { KEYFLEET_OCSP_FETCH_ADDRESS: 'x:y:z' }],
  ['KEYFLEET_RING', { KEYFLEET_RING: 'Upper' }],
  ['KEYFLEET_RING', { KEYFLEET_RING: 'a'.repeat(64) }],
  ['KEYFLEET_NODE_ID', { KEYFLEET_NODE_ID: 'tab\there' }],
  ['KEYFLEET_STRICT_MUST_STAPLE', { KEYFLEET_STRICT_MUST_STAPLE: 'maybe' }],
  ['KEYFLEET_SHUTDOWN_GRACE_MS', { KEYFLEET_SHUTDOWN_GRACE_MS: '-1' }],
  ['KEYFLEET_SHUTDOWN_GRACE_MS', { KEYFLEET_SHUTDOWN_GRACE_MS: '1e9' }],
  ['KEYFLEET_CLIENT_CA', { KEYFLEET_INSECURE_DEV: 'false' }],
];
for (const [variable, overrides] of bad) {
  test(`a bad ${variable} (${JSON.stringify(Object.values(overrides)[0])}) is a ConfigError naming it`, () => {
    assert.throws(
      () => compileEngineNodeConfig({ ...minimal, ...overrides }),
      (error: unknown) => error instanceof ConfigError && error.message.startsWith(variable),
    );
  });
}
