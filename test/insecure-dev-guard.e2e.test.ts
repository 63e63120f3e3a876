// The development flag never silently wins over mTLS, as the real service
// processes see it: KEYFLEET_INSECURE_DEV together with TLS variables, or on an
// address that is not loopback, exits 2 naming the problem, before anything
// listens; only the loudly named second variable lets it listen beyond loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import {
  freePort,
  makeTempDir,
  startProcess,
  startRedis,
  waitForListening,
  type TestRedis,
} from '@keyfleet/test-support';

const root = path.resolve(import.meta.dirname, '..');
const mains = {
  'ticket-keys': path.join(root, 'services/ticket-keys/src/main.ts'),
  'ocsp-fetch': path.join(root, 'services/ocsp-fetch/src/main.ts'),
};
let redis: TestRedis;
const stateDir = makeTempDir('dev-guard');

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
  stateDir.remove();
});

const baseEnv = () => ({
  ...process.env,
  REDIS_URL: redis.url,
  KEYFLEET_STATE_DIR: stateDir.path,
  KEYFLEET_INSECURE_DEV: 'true',
  KEYFLEET_TLS_CERT: '',
  KEYFLEET_TLS_KEY: '',
  KEYFLEET_TLS_CLIENT_CA: '',
  KEYFLEET_ROLES_FILE: '',
  KEYFLEET_INSECURE_DEV_ON_NETWORK_EVERY_CALLER_IS_ADMIN: '',
});

function run(service: keyof typeof mains, env: Record<string, string | undefined>) {
  return spawnSync(process.execPath, ['--import', 'tsx', mains[service]], {
    env: { ...baseEnv(), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

for (const service of Object.keys(mains) as (keyof typeof mains)[]) {
  test(`${service}: the dev flag with a TLS variable set exits 2 naming both`, async () => {
    const result = run(service, {
      KEYFLEET_TLS_CERT: '/etc/keyfleet/tls/tls.crt',
      KEYFLEET_GRPC_ADDRESS: `127.0.0.1:${await freePort()}`,
      KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
    });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /KEYFLEET_INSECURE_DEV.*KEYFLEET_TLS_CERT/);
  });

  test(`${service}: the dev flag on 0.0.0.0 exits 2 naming the variable that would allow it`, async () => {
    const result = run(service, {
      KEYFLEET_GRPC_ADDRESS: `0.0.0.0:${await freePort()}`,
      KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
    });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /not loopback/);
    assert.match(result.stderr, /KEYFLEET_INSECURE_DEV_ON_NETWORK_EVERY_CALLER_IS_ADMIN=true/);
  });

  test(`${service}: with the loudly named variable it listens on 0.0.0.0`, { timeout: 60_000 }, async () => {
    const grpcPort = await freePort();
    const child = startProcess(process.execPath, ['--import', 'tsx', mains[service]], {
      env: {
        ...baseEnv(),
        KEYFLEET_GRPC_ADDRESS: `0.0.0.0:${grpcPort}`,
        KEYFLEET_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
        KEYFLEET_INSECURE_DEV_ON_NETWORK_EVERY_CALLER_IS_ADMIN: 'true',
      },
    });
    try {
      await waitForListening(grpcPort, 45_000).catch((error: unknown) => {
        throw new Error(`did not start: ${child.output()}`, { cause: error });
      });
    } finally {
      await child.stop();
    }
  });
}
