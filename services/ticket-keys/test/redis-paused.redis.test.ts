// A Redis that stops answering without closing its connections (SIGSTOP: a
// black-holed or frozen server) under a running replica: Rotate answers
// UNAVAILABLE within its deadline instead of hanging, a new watcher gets its
// keys from the replica's cache at once, GetKeySet answers from the cache, and
// all works again once Redis resumes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { RotateResponse } from '@keyfleet/proto';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import type { RunningTicketKeysServer } from '../src/index.js';
import {
  connect,
  eventually,
  lastEpoch,
  startReplica,
  watch,
  type TestClient,
  ringParams,
} from './ticket-keys-harness.js';

let redis: TestRedis;
let replica: RunningTicketKeysServer;
let client: TestClient;
const ring = 'paused';

before(async () => {
  redis = await startRedis();
  replica = await startReplica(redis.url, randomPrefix('paused'));
  client = connect(replica.port);
  await client.putRing({ params: ringParams(ring, { rotationIntervalMs: 3_600_000 }) });
});

after(async () => {
  redis?.resume();
  client?.close();
  await replica?.stop(500);
  await redis?.stop();
});

function rotateWithin(deadlineMs: number) {
  return new Promise<{ code: grpc.status; elapsedMs: number; response?: RotateResponse }>((resolve) => {
    const startedAt = Date.now();
    client.raw.rotate(
      { ring, reason: 'paused redis' },
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error: grpc.ServiceError | null, response: RotateResponse) =>
        resolve({ code: error ? error.code : grpc.status.OK, elapsedMs: Date.now() - startedAt, response }),
    );
  });
}

test(
  'Redis paused with SIGSTOP: Rotate is UNAVAILABLE within its deadline, a new watcher gets keys from cache',
  { timeout: 60_000 },
  async () => {
    const first = watch(client, ring, 'before-pause');
    await eventually(() => lastEpoch(first) > 0);
    const held = lastEpoch(first);

    redis.pause();
    try {
      const rotation = await rotateWithin(8000);
      assert.equal(grpc.status[rotation.code], 'UNAVAILABLE', `after ${rotation.elapsedMs} ms`);
      assert.ok(rotation.elapsedMs < 5000, `answered in ${rotation.elapsedMs} ms`);

      const startedAt = Date.now();
      const late = watch(client, ring, 'during-pause');
      await eventually(() => lastEpoch(late) > 0, 3000, 'keys from the cache');
      assert.equal(lastEpoch(late), held);
      assert.ok(Date.now() - startedAt < 3000);

      const cached = await client.getKeySet({ ring, omitSecrets: true });
      assert.equal(cached.keySet!.epoch, held);
      late.cancel();
    } finally {
      redis.resume();
    }
    const after = await rotateWithin(10_000);
    assert.equal(grpc.status[after.code], 'OK');
    await eventually(
      () => lastEpoch(first) === after.response!.keySet!.epoch,
      10_000,
      'the rotation after resume',
    );
    first.cancel();
  },
);
