// The service as a process: a bad variable stops start-up naming it; a good start
// serves gRPC and /metrics, creates the bootstrap ring, writes a 0600 dev KEK,
// and SIGTERM stops it cleanly.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import {
  freePort,
  makeTempDir,
  startProcess,
  startRedis,
  waitForListening,
  type TestRedis,
} from '@keyfleet/test-support';
import { connect, eventually } from './ticket-keys-harness.js';

const mainPath = path.resolve(import.meta.dirname, '../src/main.ts');
let redis: TestRedis;
let stateDir: { path: string; remove(): void };

before(async () => {
  redis = await startRedis();
  stateDir = makeTempDir('tk-state');
});
after(async () => {
  await redis.stop();
  stateDir.remove();
});

test('a bad variable stops start-up with a message naming it', () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', mainPath], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      KEYFLEET_INSECURE_DEV: 'true',
      KEYFLEET_GRPC_ADDRESS: 'not-an-address',
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /KEYFLEET_GRPC_ADDRESS/);
  const noRedis = spawnSync(process.execPath, ['--import', 'tsx', mainPath], {
    env: { ...process.env, REDIS_URL: '', KEYFLEET_INSECURE_DEV: 'true' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.notEqual(noRedis.status, 0);
  assert.match(noRedis.stderr, /REDIS_URL/);
});

test('starts, serves the bootstrap ring and /metrics, stops on SIGTERM', { timeout: 60_000 }, async () => {
  const grpcPort = await freePort();
  const metricsPort = await freePort();
  const service = startProcess(process.execPath, ['--import', 'tsx', mainPath], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      KEYFLEET_INSECURE_DEV: 'true',
      KEYFLEET_STATE_DIR: stateDir.path,
      KEYFLEET_GRPC_ADDRESS: `127.0.0.1:${grpcPort}`,
      KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      KEYFLEET_KEY_PREFIX: 'proc',
    },
  });
  try {
    await waitForListening(metricsPort, 30_000);
    assert.equal(statSync(path.join(stateDir.path, 'kek')).mode & 0o777, 0o600);
    const client = connect(grpcPort);
    const keySet = (await client.getKeySet({ ring: 'default', omitSecrets: true })).keySet!;
    assert.equal(keySet.ring, 'default');
    assert.equal(keySet.keys.length, 1);
    client.close();
    await eventually(
      async () => {
        const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return (
          body.includes('keyfleet_redis_up 1') &&
          body.includes('keyfleet_key_set_epoch{ring="default"} 1') &&
          body.includes('keyfleet_keys{ring="default",state="active"} 1') &&
          body.includes(
            'keyfleet_grpc_requests_total{service="keyfleet.v1.TicketKeyService",method="GetKeySet",code="OK"} 1',
          )
        );
      },
      15_000,
      'metrics',
    );
    const output = service.output();
    assert.ok(!/"secret"\s*:\s*"[^[]/.test(output), 'no secret in logs');
  } finally {
    await service.stop(10_000);
  }
  assert.equal(service.child.exitCode, 0, service.output().slice(-2000));
  assert.match(service.output(), /"msg":"stopped"/);
});
