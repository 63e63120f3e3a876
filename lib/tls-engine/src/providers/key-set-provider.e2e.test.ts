// KeySetProvider against a real gRPC server on loopback (FakeKeyService)
// that speaks the TicketKeyService contract from a key set the test controls.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { TicketKeyServiceClient } from '@keyfleet/proto';
import { FakeKeyService, keySet, tinyKeySet } from '../testing/fake-key-service.js';
import { KeySetProvider } from './key-set-provider.js';
import { createTicketEngine } from '../engine/ticket-engine.js';
import { TicketDecision } from '@keyfleet/proto';

async function until(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const service = new FakeKeyService();
await service.start();
const client = new TicketKeyServiceClient(`127.0.0.1:${service.port}`, grpc.credentials.createInsecure());
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  client.close();
  await service.stop();
});

function provider(registry?: Registry) {
  const problems: string[] = [];
  const created = new KeySetProvider({
    ring: 'edge',
    client,
    nodeId: 'node-a',
    heartbeatIntervalMs: 100,
    initialBackoffMs: 50,
    maxBackoffMs: 300,
    idleTimeoutMs: 1000,
    onProblem: (problem) => problems.push(problem),
    ...(registry ? { metrics: registry } : {}),
  });
  cleanups.push(() => created.close());
  return { provider: created, problems };
}

test('the stream runs only while someone listens; each applied epoch is acknowledged', async () => {
  const { provider: p } = provider();
  assert.equal(p.current(), undefined);
  await sleep(200);
  assert.equal(service.streams.size, 0, 'no listener, no stream');

  const seen: number[] = [];
  const listener = (keys: { epoch: number }) => seen.push(keys.epoch);
  p.addListener(listener);
  await until(() => p.current()?.epoch === 1, 'the first key set');
  assert.deepEqual(seen, [1]);
  assert.deepEqual(service.requests.at(-1), { ring: 'edge', nodeId: 'node-a', heartbeatIntervalMs: 100 });
  await until(() => service.acks.some((a) => a.epoch === 1 && a.nodeId === 'node-a'), 'ack of epoch 1');

  service.push(keySet(2, [1, 2]));
  await until(() => p.current()?.epoch === 2, 'epoch 2');
  await until(() => service.acks.some((a) => a.epoch === 2), 'ack of epoch 2');
  assert.deepEqual(seen, [1, 2]);

  p.removeListener(listener);
  await until(() => service.streams.size === 0, 'the stream to close');
  assert.equal(p.current()?.epoch, 2, 'the last set stays readable');
});

test('older epochs and unusable sets are ignored; the last good set is kept', async () => {
  const { provider: p, problems } = provider();
  service.push(keySet(5, [1, 2, 3]));
  p.addListener(() => {});
  await until(() => p.current()?.epoch === 5, 'epoch 5');

  service.push(keySet(4, [1, 2])); // a lagging replica
  const noSecrets = keySet(6, [3, 4]);
  noSecrets.keys[1]!.secret = Buffer.alloc(0);
  service.push(noSecrets);
  service.push(keySet(7, [3, 4], 'other-ring'));
  await sleep(300);
  assert.equal(p.current()?.epoch, 5);
  assert.ok(problems.some((m) => m.includes('ignored epoch 6')));
  assert.ok(problems.some((m) => m.includes('other-ring')));

  service.push(keySet(1, [9])); // the ring was recreated: no key in common
  await until(() => p.current()?.epoch === 1, 'the recreated ring');
  assert.ok(problems.some((m) => m.includes('recreated')));
});

test('cut off from the service, a node keeps serving from its snapshot, reports staleness, and catches up', async () => {
  const registry = new Registry();
  const { provider: p } = provider(registry);
  service.push(keySet(10, [1, 2]));
  const engine = createTicketEngine({ ring: 'edge', keys: p, metrics: registry });
  cleanups.push(() => engine.close());
  await until(() => p.current()?.epoch === 10, 'epoch 10');
  const { ticket } = engine.generate(Buffer.from('session'), Buffer.alloc(0));
  const staleness = async () => {
    const text = await registry.getSingleMetricAsString('keyfleet_engine_key_set_staleness_seconds');
    return Number(/ring="edge"} (\S+)/.exec(text)?.[1]);
  };
  assert.ok((await staleness()) < 1);
  assert.match(await registry.getSingleMetricAsString('keyfleet_engine_key_set_epoch'), /ring="edge"} 10/);

  const port = service.port;
  await service.stop();
  await sleep(1500);
  assert.equal(engine.decrypt(ticket).decision, TicketDecision.USE, 'still opens from the snapshot');
  assert.ok(engine.generate(Buffer.from('x'), Buffer.alloc(0)).ticket.length > 0, 'still seals');
  assert.ok((await staleness()) >= 1.2, 'staleness grows while cut off');

  service.current = keySet(11, [1, 2, 3]);
  await service.start(port);
  await until(() => p.current()?.epoch === 11, 'catching up after the outage');
  assert.ok((await staleness()) < 1);
  await until(() => service.acks.some((a) => a.epoch === 11), 'ack of epoch 11');
  assert.match(
    await registry.getSingleMetricAsString('keyfleet_engine_encrypting_key_info'),
    new RegExp(`ring="edge",key="${Buffer.alloc(8, 3).toString('hex')}"} 1`),
  );
});

test('partitioned past rotation interval + decrypt window, a node stops issuing, still opens, and resumes when the service returns', async () => {
  const registry = new Registry();
  const { provider: p, problems } = provider(registry);
  service.push(tinyKeySet(40, [1, 2]));
  const engine = createTicketEngine({ ring: 'edge', keys: p, metrics: registry });
  cleanups.push(() => engine.close());
  await until(() => p.current()?.epoch === 40, 'epoch 40');
  assert.equal(p.issuingBoundMs(), 2000);
  const stopped = async () => {
    const text = await registry.getSingleMetricAsString('keyfleet_engine_ticket_issuing_stopped');
    return Number(/ring="edge"} (\S+)/.exec(text)?.[1]);
  };
  assert.equal(await stopped(), 0);
  // Heartbeats every 100 ms keep a connected node issuing well past the bound.
  await sleep(2500);
  assert.equal(p.issuingStopped, false);
  const { ticket } = engine.generate(Buffer.from('session'), Buffer.alloc(0));

  const port = service.port;
  const cutAt = Date.now();
  await service.stop();
  await until(() => p.issuingStopped, 'issuing to stop', 5000);
  const stoppedAfterMs = Date.now() - cutAt;
  assert.ok(stoppedAfterMs >= 1900, `stopped after ${stoppedAfterMs} ms, not before the 2000 ms bound`);
  assert.throws(() => engine.generate(Buffer.from('x'), Buffer.alloc(0)), /no ACTIVE key/);
  assert.equal(p.schedule()?.activeAt(Date.now()), undefined);
  assert.equal(await stopped(), 1);
  assert.doesNotMatch(
    await registry.getSingleMetricAsString('keyfleet_engine_encrypting_key_info'),
    /ring="edge"/,
    'no encrypting key is exported',
  );
  assert.ok(problems.some((m) => m.includes('no new tickets until it returns')));
  assert.equal(
    engine.decrypt(ticket).decision,
    TicketDecision.USE_RENEW,
    'a ticket issued before the cut still opens (its key now retired)',
  );
  await sleep(1100);
  assert.equal(
    engine.decrypt(ticket).decision,
    TicketDecision.IGNORE_RENEW,
    'one decrypt window after issuing ended, it no longer opens',
  );

  await service.start(port);
  await until(() => !p.issuingStopped, 'issuing to resume');
  assert.ok(engine.generate(Buffer.from('x'), Buffer.alloc(0)).ticket.length > 0, 'seals again');
  assert.equal(await stopped(), 0);
  assert.ok(problems.some((m) => m.includes('issuing again')));
});

test('a heartbeat naming a newer epoch than the one held reopens the stream and catches up', async () => {
  const { provider: p, problems } = provider();
  service.push(keySet(30, [1, 2]));
  p.addListener(() => {});
  await until(() => p.current()?.epoch === 30, 'epoch 30');
  const streamsBefore = service.requests.length;
  // The server now holds 31 but this stream never got it; only heartbeats say so.
  service.current = keySet(31, [1, 2, 3]);
  await until(() => p.current()?.epoch === 31, 'catching up through a new stream');
  assert.ok(service.requests.length > streamsBefore, 'a new WatchKeySet call was made');
  assert.ok(problems.some((m) => m.includes('is behind (server epoch 31, held 30)')));
});

test('applyKeySet feeds a provider without any service', () => {
  const p = new KeySetProvider({ ring: 'edge', nodeId: 'static' });
  assert.equal(p.applyKeySet(keySet(1, [1])), true);
  assert.equal(p.applyKeySet(keySet(1, [1])), false, 'same epoch again');
  assert.equal(p.current()?.schedule.keys.length, 1);
  assert.throws(() => new KeySetProvider({ ring: 'edge', nodeId: '' }), /nodeId/);
  assert.throws(() => new KeySetProvider({ ring: '' }), /ring is required/);
});
