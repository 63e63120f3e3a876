import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '@keyfleet/service-kit';
import { compileOcspFetchConfig } from './ocsp-fetch-config.js';
import { compileOcspFetchOptions } from './ocsp-fetch-options.js';

const base = { REDIS_URL: 'redis://127.0.0.1:6379', KEYFLEET_INSECURE_DEV: 'true' };

describe('compileOcspFetchConfig', () => {
  test('defaults', () => {
    const { server, logLevel } = compileOcspFetchConfig(base);
    assert.equal(server.grpcAddress, '127.0.0.1:50052');
    assert.equal(server.metricsAddress, '127.0.0.1:9102');
    assert.equal(server.keyPrefix, 'kf');
    assert.equal(server.certIdHash, 'sha1');
    assert.equal(server.skewMs, 300_000);
    assert.equal(server.fetchTimeoutMs, 10_000);
    assert.equal(server.maxResponseBytes, 65_536);
    assert.equal(server.security.mode, 'insecure-dev');
    assert.equal(logLevel, 'info');
    assert.equal(server.sdsPrivateKeyPath, undefined);
  });

  test('the SDS private-key path template', () => {
    const path = '/etc/envoy/private/{certificate}.key';
    const { server } = compileOcspFetchConfig({ ...base, KEYFLEET_SDS_PRIVATE_KEY_PATH: path });
    assert.equal(server.sdsPrivateKeyPath, path);
  });

  test('overrides', () => {
    const { server } = compileOcspFetchConfig({
      ...base,
      KEYFLEET_OCSP_HASH: 'SHA256',
      KEYFLEET_OCSP_SKEW_MS: '1000',
      KEYFLEET_KEY_PREFIX: 'fleet-a',
      KEYFLEET_GRPC_ADDRESS: '0.0.0.0:7000',
      // Plain text beyond loopback needs the loudly named variable.
      KEYFLEET_INSECURE_DEV_ON_NETWORK_EVERY_CALLER_IS_ADMIN: 'true',
    });
    assert.equal(server.certIdHash, 'sha256');
    assert.equal(server.skewMs, 1000);
    assert.equal(server.keyPrefix, 'fleet-a');
    assert.equal(server.grpcAddress, '0.0.0.0:7000');
  });

  const bad: Array<[Record<string, string>, string]> = [
    [{ KEYFLEET_INSECURE_DEV: 'true' }, 'REDIS_URL'],
    [{ ...base, REDIS_URL: 'http://x' }, 'REDIS_URL'],
    [{ ...base, KEYFLEET_OCSP_HASH: 'md5' }, 'KEYFLEET_OCSP_HASH'],
    [{ ...base, KEYFLEET_OCSP_SKEW_MS: 'five' }, 'KEYFLEET_OCSP_SKEW_MS'],
    [{ ...base, KEYFLEET_OCSP_TIMEOUT_MS: '0' }, 'KEYFLEET_OCSP_TIMEOUT_MS'],
    [{ ...base, KEYFLEET_OCSP_MAX_RESPONSE_BYTES: '-1' }, 'KEYFLEET_OCSP_MAX_RESPONSE_BYTES'],
    [{ ...base, KEYFLEET_GRPC_ADDRESS: 'nope' }, 'KEYFLEET_GRPC_ADDRESS'],
    [{ ...base, KEYFLEET_METRICS_ADDRESS: 'host:99999' }, 'KEYFLEET_METRICS_ADDRESS'],
    [{ ...base, KEYFLEET_KEY_PREFIX: 'a b' }, 'KEYFLEET_KEY_PREFIX'],
    [{ ...base, KEYFLEET_INSECURE_DEV: 'maybe' }, 'KEYFLEET_INSECURE_DEV'],
    [{ REDIS_URL: base.REDIS_URL }, 'KEYFLEET_TLS_CERT'],
    [{ ...base, LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [
      { ...base, KEYFLEET_SDS_PRIVATE_KEY_PATH: 'relative/{certificate}.key' },
      'KEYFLEET_SDS_PRIVATE_KEY_PATH',
    ],
    [{ ...base, KEYFLEET_SDS_PRIVATE_KEY_PATH: '/etc/envoy/site.key' }, 'KEYFLEET_SDS_PRIVATE_KEY_PATH'],
    [{ ...base, KEYFLEET_SDS_PRIVATE_KEY_PATH: '/etc/../{certificate}' }, 'KEYFLEET_SDS_PRIVATE_KEY_PATH'],
    [{ ...base, KEYFLEET_SDS_PRIVATE_KEY_PATH: '/etc/{certificate}\n.key' }, 'KEYFLEET_SDS_PRIVATE_KEY_PATH'],
    [
      { ...base, KEYFLEET_SDS_PRIVATE_KEY_PATH: `/${'a'.repeat(600)}{certificate}` },
      'KEYFLEET_SDS_PRIVATE_KEY_PATH',
    ],
  ];
  for (const [env, variable] of bad) {
    test(`names ${variable} when it is wrong`, () => {
      assert.throws(
        () => compileOcspFetchConfig(env),
        (error: unknown) => error instanceof ConfigError && error.variable === variable,
      );
    });
  }
});

describe('compileOcspFetchOptions', () => {
  const security = compileOcspFetchConfig(base).server.security;
  test('resolves the documented defaults', () => {
    const options = compileOcspFetchOptions({ redisUrl: base.REDIS_URL, security });
    assert.equal(options.perResponderConcurrency, 8);
    assert.equal(options.getMaxEncodedBytes, 255);
    assert.equal(options.refresh.refreshAtFraction, 0.5);
    assert.equal(options.heartbeatIntervalMs, 5000);
  });
  test('rejects nonsense at start-up', () => {
    assert.throws(
      () => compileOcspFetchOptions({ redisUrl: base.REDIS_URL, security, perResponderConcurrency: 0 }),
      /perResponderConcurrency/,
    );
    assert.throws(
      () =>
        compileOcspFetchOptions({
          redisUrl: base.REDIS_URL,
          security,
          refresh: { retryInitialMs: 1000, retryMaxMs: 500 },
        }),
      /retryMaxMs/,
    );
    assert.throws(() => compileOcspFetchOptions({ redisUrl: '', security }), /redisUrl/);
  });
});
