import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '@keyfleet/service-kit';
import { compileTicketKeysConfig } from './ticket-keys-config.js';

const dev = { REDIS_URL: 'redis://127.0.0.1:6380', KEYFLEET_INSECURE_DEV: 'true' };

test('development defaults', () => {
  const config = compileTicketKeysConfig(dev);
  assert.equal(config.grpcAddress, '127.0.0.1:50051');
  assert.equal(config.metricsHost, '127.0.0.1');
  assert.equal(config.metricsPort, 9101);
  assert.equal(config.keyPrefix, 'kf');
  assert.ok('generateInDir' in config.kek && config.kek.generateInDir.endsWith('.keyfleet'));
  assert.deepEqual(config.bootstrapRings, ['default'], 'the README start command relies on it');
  assert.equal(config.security.mode, 'insecure-dev');
});

test('bootstrap rings are a comma list', () => {
  const config = compileTicketKeysConfig({ ...dev, KEYFLEET_BOOTSTRAP_RINGS: 'default, edge ,' });
  assert.deepEqual(config.bootstrapRings, ['default', 'edge']);
  assert.deepEqual(compileTicketKeysConfig({ ...dev, KEYFLEET_BOOTSTRAP_RINGS: 'none' }).bootstrapRings, []);
});

const bad: [string, Record<string, string>][] = [
  ['REDIS_URL', { KEYFLEET_INSECURE_DEV: 'true' }],
  ['REDIS_URL', { ...dev, REDIS_URL: 'http://x' }],
  ['KEYFLEET_GRPC_ADDRESS', { ...dev, KEYFLEET_GRPC_ADDRESS: 'nope' }],
  ['KEYFLEET_METRICS_ADDRESS', { ...dev, KEYFLEET_METRICS_ADDRESS: '1.2.3.4:99999' }],
  ['KEYFLEET_KEY_PREFIX', { ...dev, KEYFLEET_KEY_PREFIX: 'a{b}' }],
  ['KEYFLEET_KEK_FILE', { REDIS_URL: 'redis://x:1' }],
  ['KEYFLEET_INSECURE_DEV', { ...dev, KEYFLEET_INSECURE_DEV: 'maybe' }],
  ['KEYFLEET_BOOTSTRAP_RINGS', { ...dev, KEYFLEET_BOOTSTRAP_RINGS: 'Default' }],
  ['LOG_LEVEL', { ...dev, LOG_LEVEL: 'loud' }],
  ['KEYFLEET_TLS_CERT', { REDIS_URL: 'redis://x:1', KEYFLEET_KEK_FILE: '/k' }],
];

for (const [variable, env] of bad) {
  test(`a bad ${variable} stops start-up naming it`, () => {
    assert.throws(
      () => compileTicketKeysConfig(env),
      (error: unknown) => error instanceof ConfigError && error.variable === variable,
    );
  });
}
