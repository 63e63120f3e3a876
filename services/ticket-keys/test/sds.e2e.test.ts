// Envoy's SDS on ticket-keys' port, through clients on Envoy's own protos that
// behave as Envoy's SDS subscription does: the first request names the node
// and the resource; it ACKs each response with its version and nonce, NACKs
// with error_detail, reconnects with the version it holds, and speaks Delta
// with initial_resource_versions. Over a real Redis and two replicas: the
// first response carries the ring's keys (80 bytes each, ACTIVE first); a
// rotation pushes the new key second, then first once it activates; a revoked
// key is gone within a second; a NACK is counted and the stream keeps
// serving; through a Redis outage streams keep their keys and are pushed
// again after it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import { keyNameHex } from '@keyfleet/tls-engine';
import {
  fetchSecrets,
  secretDiscoveryClient,
  secretTypeUrl,
  subscribeSecrets,
  subscribeSecretsDelta,
  unpackSecret,
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type PackedResource,
} from '@keyfleet/service-kit';
import type { RunningTicketKeysServer } from '../src/index.js';
import { connect, eventually, ringParams, startReplica, type TestClient } from './ticket-keys-harness.js';

let redis: TestRedis;
let replica: RunningTicketKeysServer;
let replicaB: RunningTicketKeysServer;
let client: TestClient;
const ring = 'envoy-edge';
const resource = `ticket-keys/${ring}`;

before(async () => {
  redis = await startRedis();
  const prefix = randomPrefix('sds');
  replica = await startReplica(redis.url, prefix);
  replicaB = await startReplica(redis.url, prefix);
  client = connect(replica.port);
  await client.putRing({ params: ringParams(ring, { rotationIntervalMs: 3_600_000, propagationMs: 1500 }) });
});

after(async () => {
  client?.close();
  await replica?.stop();
  await replicaB?.stop();
  await redis?.stop();
});

const sdsClient = (port = replica.port) => secretDiscoveryClient(`127.0.0.1:${port}`);

/** The key bytes of a packed ticket-key Secret. */
function keysIn(packed: PackedResource, name = resource): Buffer[] {
  const secret = unpackSecret(packed);
  assert.equal(secret.name, name);
  return secret.session_ticket_keys!.keys.map((key) => key.inline_bytes);
}

/** Envoy's side of one StreamSecrets stream (state of the world). */
function subscribe(name: string, nodeId: string, options: { port?: number; heldVersion?: string } = {}) {
  const sds = sdsClient(options.port);
  const subscription = subscribeSecrets(sds, {
    nodeId,
    names: [name],
    ...(options.heldVersion === undefined ? {} : { heldVersion: options.heldVersion }),
  });
  return {
    ...subscription,
    keysOf(response: DiscoveryResponse) {
      assert.equal(response.resources.length, 1);
      return keysIn(response.resources[0]!, name);
    },
    close() {
      subscription.close();
      sds.close();
    },
  };
}

/** Envoy's side of one DeltaSecrets stream. */
function deltaSubscribe(nodeId: string, first: Partial<DeltaDiscoveryRequest>) {
  const sds = sdsClient();
  const subscription = subscribeSecretsDelta(sds, nodeId, first);
  return {
    ...subscription,
    close() {
      subscription.close();
      sds.close();
    },
  };
}

const names = (keys: Buffer[]) => keys.map((key) => keyNameHex(key.subarray(0, 16)));

test('initial keys, a rotation pushed second then first at activation, ACKs counted, a NACK counted and survived', async () => {
  const envoy = subscribe(`ticket-keys/${ring}`, 'envoy-a');
  try {
    const first = await envoy.next(1);
    assert.equal(first.type_url, secretTypeUrl);
    const initial = envoy.keysOf(first);
    assert.ok(initial.length >= 1 && initial.every((key) => key.length === 80), 'keys are 80 bytes');
    const active = (await client.getKeySet({ ring, omitSecrets: true })).keySet!;
    envoy.ack(first);

    const rotated = await client.rotate({ ring, reason: 'sds test', expectedEpoch: active.epoch });
    const published = keyNameHex(rotated.publishedKeyName);
    const pending = await envoy.next(2);
    assert.notEqual(pending.version_info, first.version_info);
    assert.deepEqual(
      names(envoy.keysOf(pending)).slice(0, 2),
      [names(initial)[0], published],
      'the PENDING key second',
    );
    envoy.ack(pending);

    const activated = await envoy.next(3, 5000);
    assert.equal(names(envoy.keysOf(activated))[0], published, 'first once it activates');
    assert.ok(active.epoch < rotated.keySet!.epoch);

    // A NACK: counted, the stream stays and serves the next change.
    envoy.nack(activated, pending.version_info);
    await sleep(200);
    const metrics = await replica.registry.getSingleMetricAsString('keyfleet_sds_nacks_total');
    assert.match(metrics, new RegExp(`keyfleet_sds_nacks_total\\{resource="ticket-keys/${ring}"\\} 1`));
    assert.equal(envoy.error(), undefined);

    const status = await client.listRings({});
    const ringStatus = status.rings.find((r) => r.params?.ring === ring)!;
    assert.ok(ringStatus.watchers >= 1, 'the Envoy counts as a watcher');
    const convergence = await replica.registry.getSingleMetricAsString('keyfleet_sds_convergence_seconds');
    assert.match(
      convergence,
      new RegExp(`keyfleet_sds_convergence_seconds_count\\{resource="${resource}"\\} [1-9]`),
      'the ACKed rotation was timed from push to last ACK',
    );
  } finally {
    envoy.close();
  }
});

test('bad subscriptions end the stream with a clear status', async () => {
  const unknownRing = subscribe('ticket-keys/no-such-ring', 'envoy-b');
  try {
    await assert.rejects(
      unknownRing.next(1, 3000),
      (error: grpc.ServiceError) => error.code === grpc.status.NOT_FOUND,
    );
  } finally {
    unknownRing.close();
  }
  const foreign = subscribe('tls-cert/site', 'envoy-c');
  try {
    await assert.rejects(foreign.next(1, 3000), (error: grpc.ServiceError) =>
      /ticket-keys\/<ring>/.test(error.details),
    );
  } finally {
    foreign.close();
  }
});

test('FetchSecrets answers the named resources once, with the stream’s bytes and version', async () => {
  const sds = sdsClient();
  const fetch = (request: Partial<DiscoveryRequest>) => fetchSecrets(sds, request);
  try {
    const resource = `ticket-keys/${ring}`;
    const fetched = await fetch({ node: { id: 'envoy-f', cluster: 'test' }, resource_names: [resource] });
    assert.equal(fetched.resources.length, 1);
    const secret = unpackSecret(fetched.resources[0]!);
    assert.equal(secret.name, resource);
    const active = (await client.getKeySet({ ring, omitSecrets: true })).keySet!;
    assert.match(fetched.version_info, new RegExp(`^${active.epoch}-[0-9a-f]{16}$`));
    assert.ok(secret.session_ticket_keys!.keys.every((key) => key.inline_bytes.length === 80));
    await assert.rejects(
      fetch({ resource_names: [] }),
      (error: grpc.ServiceError) => error.code === grpc.status.INVALID_ARGUMENT,
    );
    await assert.rejects(
      fetch({ resource_names: ['ticket-keys/no-such-ring'] }),
      (error: grpc.ServiceError) => error.code === grpc.status.NOT_FOUND,
    );
  } finally {
    sds.close();
  }
});

/** Rotates and waits until the new key encrypts; returns its hex name and the one it replaced. */
async function rotateAndActivate(): Promise<{ active: string; previous: string }> {
  const before = (await client.getKeySet({ ring, omitSecrets: true })).keySet!;
  const previous = keyNameHex(before.keys.find((key) => key.state === 1)?.name ?? before.keys[0]!.name);
  const rotated = await client.rotate({ ring, reason: 'sds test', expectedEpoch: before.epoch });
  const active = keyNameHex(rotated.publishedKeyName);
  const fetched = async () => {
    const sds = sdsClient();
    try {
      return await fetchSecrets(sds, { resource_names: [resource] });
    } finally {
      sds.close();
    }
  };
  await eventually(
    async () => names(keysIn((await fetched()).resources[0]!))[0] === active,
    10_000,
    'the rotated key to activate',
  );
  return { active, previous };
}

test('a revoked key is gone from every stream within a second, on both replicas; a reconnect with the current version is sent nothing', async () => {
  const { previous } = await rotateAndActivate();
  const onA = subscribe(resource, 'envoy-ra');
  const onB = subscribe(resource, 'envoy-rb', { port: replicaB.port });
  try {
    const [firstA, firstB] = [await onA.next(1), await onB.next(1)];
    assert.equal(firstA.version_info, firstB.version_info, 'both replicas serve the same version');
    assert.ok(names(onA.keysOf(firstA)).includes(previous), 'the replaced key still decrypts');
    onA.ack(firstA);
    onB.ack(firstB);

    await client.revokeKey({ ring, keyName: Buffer.from(previous, 'hex'), reason: 'sds revoke test' });
    const revokedAt = Date.now();
    const [afterA, afterB] = await Promise.all([onA.next(2, 1000), onB.next(2, 1000)]);
    const took = Date.now() - revokedAt;
    assert.ok(took < 1000, `pushed within a second of RevokeKey's return (${took} ms)`);
    assert.ok(!names(onA.keysOf(afterA)).includes(previous), 'gone on replica A');
    assert.ok(!names(onB.keysOf(afterB)).includes(previous), 'gone on replica B');

    // Envoy reconnects holding the current version: nothing to send until the next change.
    onB.close();
    const again = subscribe(resource, 'envoy-rb', { port: replicaB.port, heldVersion: afterB.version_info });
    try {
      await sleep(500);
      assert.equal(again.responses.length, 0, 'no response for the version the client holds');
      assert.equal(again.error(), undefined);
      const { active } = await rotateAndActivate();
      const pushed = await again.next(1);
      assert.ok(names(again.keysOf(pushed)).includes(active), 'the next change is pushed');
    } finally {
      again.close();
    }
  } finally {
    onA.close();
    onB.close();
  }
});

test('Delta: subscribe by name, a reconnect names what it holds, only changes are sent, ACKs by nonce, unsubscribe stops pushes', async () => {
  const delta = deltaSubscribe('envoy-delta', { resource_names_subscribe: [resource] });
  try {
    const first = await delta.next(1);
    assert.equal(first.type_url, secretTypeUrl);
    assert.equal(first.resources.length, 1);
    assert.equal(first.resources[0]!.name, resource);
    assert.ok(keysIn(first.resources[0]!.resource).every((key) => key.length === 80));
    delta.ack(first);

    // A second stream reconnecting with that version is sent nothing for it.
    const reconnected = deltaSubscribe('envoy-delta-2', {
      initial_resource_versions: { [resource]: first.resources[0]!.version },
    });
    try {
      const { active } = await rotateAndActivate();
      const changed = await delta.next(3); // the PENDING key, then its activation
      assert.equal(names(keysIn(changed.resources[0]!.resource))[0], active);
      assert.equal(reconnected.responses.length >= 1, true, 'the reconnected stream hears the change');
      assert.notEqual(reconnected.responses[0]!.resources[0]!.version, first.resources[0]!.version);
      delta.ack(changed);

      const watching = (await client.listRings({})).rings.find((r) => r.params?.ring === ring)!.watchers;
      delta.send({ resource_names_unsubscribe: [resource] });
      await eventually(
        async () =>
          (await client.listRings({})).rings.find((r) => r.params?.ring === ring)!.watchers < watching,
        5000,
        'the unsubscribed Delta stream to stop counting as a watcher',
      );
      const count = delta.responses.length;
      await rotateAndActivate();
      await sleep(300);
      assert.equal(delta.responses.length, count, 'nothing pushed after unsubscribe');
      assert.equal(delta.error(), undefined);
    } finally {
      reconnected.close();
    }

    const unknown = deltaSubscribe('envoy-delta-3', {
      resource_names_subscribe: ['ticket-keys/no-such-ring'],
    });
    try {
      await assert.rejects(
        unknown.next(1, 3000),
        (error: grpc.ServiceError) => error.code === grpc.status.NOT_FOUND,
      );
    } finally {
      unknown.close();
    }
  } finally {
    delta.close();
  }
});

test('through a Redis outage a stream keeps its keys; the push resumes after it', async () => {
  const envoy = subscribe(resource, 'envoy-outage');
  try {
    const first = await envoy.next(1);
    envoy.ack(first);
    redis.pause();
    try {
      await sleep(1500);
      assert.equal(envoy.error(), undefined, 'the stream survives the outage');
      assert.equal(envoy.responses.length, 1, 'and is sent nothing new (its keys stay)');
    } finally {
      redis.resume();
    }
    await eventually(
      async () => (await replica.registry.getSingleMetricAsString('keyfleet_redis_up')).includes(' 1'),
      15_000,
      'Redis to be up again',
    );
    const { active } = await rotateAndActivate();
    await eventually(
      () => envoy.responses.some((response) => names(envoy.keysOf(response))[0] === active),
      10_000,
      'the rotation after the outage to reach the stream',
    );
  } finally {
    envoy.close();
  }
});
