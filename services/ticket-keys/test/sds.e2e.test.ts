// Envoy's SDS on ticket-keys' port, through a client on Envoy's own protos that
// behaves as Envoy's SDS subscription does: the first request names the node
// and the resource; it ACKs each response with its version and nonce, NACKs
// with error_detail. Over a real Redis: the first response carries the ring's
// keys (80 bytes each, ACTIVE first); a rotation pushes the new key second,
// then first once it activates; a NACK is counted and the stream keeps serving.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { randomPrefix, startRedis, type TestRedis } from '@keyfleet/test-support';
import { keyNameHex } from '@keyfleet/tls-engine';
import {
  secretDiscoveryServiceDefinition,
  secretTypeUrl,
  unpackSecret,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from '../src/sds/envoy-api.js';
import type { RunningTicketKeysServer } from '../src/index.js';
import { connect, ringParams, startReplica, type TestClient } from './ticket-keys-harness.js';

let redis: TestRedis;
let replica: RunningTicketKeysServer;
let client: TestClient;
const ring = 'envoy-edge';

before(async () => {
  redis = await startRedis();
  replica = await startReplica(redis.url, randomPrefix('sds'));
  client = connect(replica.port);
  await client.putRing({ params: ringParams(ring, { rotationIntervalMs: 3_600_000, propagationMs: 1500 }) });
});

after(async () => {
  client?.close();
  await replica?.stop();
  await redis?.stop();
});

/** A client of Envoy's SecretDiscoveryService, built from Envoy's protos. */
function sdsClient() {
  const Client = grpc.makeGenericClientConstructor(
    secretDiscoveryServiceDefinition(),
    'SecretDiscoveryService',
  );
  return new Client(
    `127.0.0.1:${replica.port}`,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    StreamSecrets(): grpc.ClientDuplexStream<Partial<DiscoveryRequest>, DiscoveryResponse>;
    FetchSecrets(
      request: Partial<DiscoveryRequest>,
      callback: (error: grpc.ServiceError | null, response: DiscoveryResponse) => void,
    ): void;
  };
}

/** Envoy's side of one StreamSecrets stream. */
function subscribe(resource: string, nodeId: string) {
  const sds = sdsClient();
  const call = sds.StreamSecrets();
  const responses: DiscoveryResponse[] = [];
  let error: grpc.ServiceError | undefined;
  call.on('data', (response: DiscoveryResponse) => responses.push(response));
  call.on('error', (e: grpc.ServiceError) => (error = e));
  call.write({ node: { id: nodeId, cluster: 'test' }, resource_names: [resource], type_url: secretTypeUrl });
  const keysOf = (response: DiscoveryResponse) => {
    assert.equal(response.resources.length, 1);
    const secret = unpackSecret(response.resources[0]!);
    assert.equal(secret.name, resource);
    return secret.session_ticket_keys!.keys.map((key) => key.inline_bytes);
  };
  return {
    responses,
    error: () => error,
    keysOf,
    ack(response: DiscoveryResponse) {
      call.write({
        version_info: response.version_info,
        response_nonce: response.nonce,
        resource_names: [resource],
        type_url: secretTypeUrl,
      });
    },
    nack(response: DiscoveryResponse, lastGood: string) {
      call.write({
        version_info: lastGood,
        response_nonce: response.nonce,
        resource_names: [resource],
        type_url: secretTypeUrl,
        error_detail: { code: 3, message: 'test NACK' },
      });
    },
    async next(count: number, timeoutMs = 10_000): Promise<DiscoveryResponse> {
      const deadline = Date.now() + timeoutMs;
      while (responses.length < count) {
        if (error) throw error;
        if (Date.now() > deadline) throw new Error(`no response ${count} within ${timeoutMs} ms`);
        await sleep(20);
      }
      return responses[count - 1]!;
    },
    close() {
      call.cancel();
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
  const fetch = (request: Partial<DiscoveryRequest>) =>
    new Promise<DiscoveryResponse>((resolve, reject) =>
      sds.FetchSecrets(request, (error, response) => (error ? reject(error) : resolve(response))),
    );
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
