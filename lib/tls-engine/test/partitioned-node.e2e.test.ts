// A TLS node cut off from the ticket-key service for longer than its ring's
// rotation interval plus decrypt window stops issuing tickets in real
// handshakes (openssl s_client as the peer), still resumes the tickets it
// issued before, and issues again once the service is back. The service is a real gRPC peer on loopback (FakeKeyService).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { TicketKeyServiceClient } from '@keyfleet/proto';
import { attach, KeySetProvider } from '@keyfleet/tls-engine';
import {
  createTestPki,
  freePort,
  makeTempDir,
  runSClient,
  sessionTicketKeyName,
  type TestPki,
} from '@keyfleet/test-support';
import { FakeKeyService, tinyKeySet } from '../src/testing/fake-key-service.js';

let pki: TestPki;
let dir: { path: string; remove(): void };
const service = new FakeKeyService();
let client: TicketKeyServiceClient;

before(async () => {
  pki = createTestPki(await freePort());
  dir = makeTempDir('partition');
  await service.start();
  client = new TicketKeyServiceClient(`127.0.0.1:${service.port}`, grpc.credentials.createInsecure());
});
after(async () => {
  client?.close();
  await service.stop();
  pki?.remove();
  dir?.remove();
});

async function until(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

for (const version of ['1.2', '1.3'] as const) {
  test(`TLS ${version}: past the bound a partitioned node issues no tickets, resumes the ones it issued, and issues again when the service returns`, async () => {
    const registry = new Registry();
    const problems: string[] = [];
    const keys = new KeySetProvider({
      ring: 'edge',
      client,
      heartbeatIntervalMs: 100,
      initialBackoffMs: 50,
      maxBackoffMs: 200,
      onProblem: (problem) => problems.push(problem),
      metrics: registry,
    });
    service.push(tinyKeySet(1, [1, 2], 3000));
    const server = tls.createServer({ cert: pki.leaf.chainPem(), key: pki.leaf.keyPem() }, (socket) =>
      socket.end('ok\n'),
    );
    server.on('tlsClientError', () => {});
    const engine = attach(server, { keys, registry });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const servicePort = service.port;
    const file = (name: string) => path.join(dir.path, `${version}-${name}.pem`);
    try {
      await until(() => keys.epoch() === 1, 'the first key set', 5000);
      const keyTwo = Buffer.alloc(16, 2).toString('hex');
      const first = await runSClient({ port, tls: version, request: '', sessOut: file('first') });
      assert.ok(first.connected, first.output);
      assert.equal(sessionTicketKeyName(file('first')), keyTwo);

      const cutAt = Date.now();
      await service.stop();
      // Within the bound (1 s rotation + 3 s window) the node still issues.
      await sleep(2500);
      const during = await runSClient({ port, tls: version, request: '', sessOut: file('during') });
      assert.ok(during.connected, during.output);
      assert.equal(sessionTicketKeyName(file('during')), keyTwo, 'still issuing inside the bound');
      assert.equal(keys.issuingStopped, false);

      await until(() => keys.issuingStopped, 'issuing to stop', 5000);
      assert.ok(
        Date.now() - cutAt >= 3800,
        `stopped ${Date.now() - cutAt} ms after the cut, before the bound`,
      );
      const cut = await runSClient({ port, tls: version, request: '', sessOut: file('cut') });
      assert.ok(cut.connected && cut.receivedAlert === undefined, cut.output);
      assert.equal(sessionTicketKeyName(file('cut')), undefined, 'no ticket is issued past the bound');
      assert.match(await registry.metrics(), /keyfleet_engine_ticket_issuing_stopped\{ring="edge"\} 1/);
      // Its 3 s lifetime has not run out: the ticket issued inside the bound still resumes.
      const resumed = await runSClient({ port, tls: version, request: '', sessIn: file('during') });
      assert.ok(resumed.reused, `a ticket issued inside the bound resumes: ${resumed.output}`);

      await service.start(servicePort);
      await until(() => !keys.issuingStopped, 'issuing to resume', 5000);
      const back = await runSClient({ port, tls: version, request: '', sessOut: file('back') });
      assert.ok(back.connected, back.output);
      assert.equal(sessionTicketKeyName(file('back')), keyTwo, 'issuing again once the service is back');
      assert.match(await registry.metrics(), /keyfleet_engine_ticket_issuing_stopped\{ring="edge"\} 0/);
      assert.ok(problems.some((problem) => problem.includes('no new tickets until it returns')));
    } finally {
      engine.detach();
      keys.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
}
