// The harness itself: each real peer starts, answers, and leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import {
  createTestPki,
  freePort,
  startGrpcServer,
  startOcspResponder,
  startRedis,
} from '@keyfleet/test-support';

function redisPing(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      resolve(data.toString().trim());
      socket.end();
    });
    socket.once('error', reject);
  });
}

test('redis-server starts, answers PING, survives kill and restart, and stops', async () => {
  const redis = await startRedis();
  assert.equal(await redisPing(redis.port), '+PONG');
  await redis.kill();
  await assert.rejects(redisPing(redis.port));
  await redis.restart();
  assert.equal(await redisPing(redis.port), '+PONG');
  await redis.stop();
  await assert.rejects(redisPing(redis.port));
});

test('the throwaway PKI and openssl ocsp answer good, then revoked after ca -revoke', async () => {
  const pki = createTestPki(await freePort());
  const responder = await startOcspResponder(pki);
  try {
    const query = () =>
      execFileSync(
        'openssl',
        [
          'ocsp',
          '-issuer',
          pki.intermediate.certPath,
          '-cert',
          pki.leaf.certPath,
          '-url',
          responder.url,
          '-CAfile',
          pki.root.certPath,
          '-timeout',
          '5',
        ],
        { encoding: 'utf8', stdio: 'pipe' },
      );
    const leafText = execFileSync(
      'openssl',
      ['x509', '-in', pki.leaf.certPath, '-noout', '-ext', 'authorityInfoAccess'],
      { encoding: 'utf8' },
    );
    assert.match(leafText, new RegExp(`OCSP - URI:http://127.0.0.1:${pki.ocspPort}`));
    assert.match(query(), /: good/);
    pki.revoke(pki.leaf);
    responder.refreshIndex(pki.leaf);
    assert.match(query(), /: revoked/);
  } finally {
    await responder.stop();
    pki.remove();
  }
});

test('a gRPC server binds port 0 on loopback and drains', async () => {
  const server = await startGrpcServer(() => {});
  assert.ok(server.port > 0);
  const channel = new grpc.Channel(server.address, grpc.credentials.createInsecure(), {});
  await new Promise<void>((resolve, reject) => {
    channel.getConnectivityState(true);
    const wait = () => {
      const state = channel.getConnectivityState(false);
      if (state === grpc.connectivityState.READY) return resolve();
      if (state === grpc.connectivityState.TRANSIENT_FAILURE) return reject(new Error('cannot connect'));
      channel.watchConnectivityState(state, Date.now() + 5000, (error) => (error ? reject(error) : wait()));
    };
    wait();
  });
  channel.close();
  await server.stop();
});
