// service-kit's shutdown helpers against a real redis-server: closeRedis
// QUITs a healthy connection, and cuts one that cannot answer in time (Redis
// gone, or a blocking command ahead of the QUIT) instead of hanging a shutdown.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { closeRedis, settlesWithin } from '@keyfleet/service-kit';
import { startRedis, type TestRedis } from '@keyfleet/test-support';

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
});

function connect(url = redis.url): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  client.on('error', () => undefined);
  return client;
}

async function ready(client: Redis): Promise<void> {
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
}

async function clientNames(): Promise<string[]> {
  const admin = connect();
  try {
    const list = (await admin.call('CLIENT', 'LIST')) as string;
    return list
      .split('\n')
      .map((line) => /name=(\S*)/.exec(line)?.[1] ?? '')
      .filter(Boolean);
  } finally {
    admin.disconnect();
  }
}

test('a healthy connection is closed by QUIT: Redis no longer lists it', async () => {
  const client = connect();
  await ready(client);
  await client.call('CLIENT', 'SETNAME', 'closing-healthy');
  assert.ok((await clientNames()).includes('closing-healthy'));
  await closeRedis(client, 500);
  assert.equal(client.status, 'end');
  assert.ok(!(await clientNames()).includes('closing-healthy'));
});

test('a connection stuck behind a blocking command is cut after the timeout, not waited for', async () => {
  const client = connect();
  await ready(client);
  await client.call('CLIENT', 'SETNAME', 'closing-blocked');
  void client.blpop('never-pushed', 0).catch(() => undefined);
  await sleep(100);
  const startedAt = performance.now();
  await closeRedis(client, 300);
  const ms = performance.now() - startedAt;
  assert.equal(client.status, 'end');
  assert.ok(ms >= 250 && ms < 1500, `${Math.round(ms)} ms`);
  const deadline = Date.now() + 2000;
  while ((await clientNames()).includes('closing-blocked')) {
    assert.ok(Date.now() < deadline, 'Redis still lists the cut connection');
    await sleep(50);
  }
});

test('a connection whose Redis is gone is closed at once, and does not come back with Redis', async () => {
  const own = await startRedis();
  const client = connect(own.url);
  try {
    await ready(client);
    await own.kill();
    await sleep(100);
    const startedAt = performance.now();
    await closeRedis(client, 2000);
    assert.ok(performance.now() - startedAt < 500);
    await own.restart();
    await sleep(300); // the client's retryStrategy would have reconnected within 50 ms
    assert.notEqual(client.status, 'ready');
  } finally {
    await own.stop();
  }
});

test('settlesWithin: true for work that settles either way in time, false for work that does not', async () => {
  assert.equal(await settlesWithin(Promise.resolve(1), 100), true);
  assert.equal(await settlesWithin(Promise.reject(new Error('no')), 100), true);
  assert.equal(await settlesWithin(undefined, 100), true);
  assert.equal(await settlesWithin(new Promise(() => undefined), 100), false);
});
