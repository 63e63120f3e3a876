import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, KeyfleetError, type CallContext } from '@keyfleet/service-kit';
import type { StoredCertificate } from '../store/stored-certificate.js';
import type { StapleChange } from '../stream/staple-hub.js';
import { storedCertificate } from '../testing/stored-certificate-fixture.js';
import { stapleSecretSource } from './staple-secret-source.js';

const id = 'cd'.repeat(32);
const name = `staple/${id}`;
const context = {} as CallContext;

/** A hub that has not heard of the certificate yet, and a store that may hold it. */
function setup(inStore: StoredCertificate | undefined) {
  const cache = new Map<string, StoredCertificate>();
  const listeners = new Set<(change: StapleChange) => void>();
  const source = stapleSecretSource({
    hub: {
      cached: (key) => cache.get(key),
      subscribe: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    },
    store: { get: (key) => Promise.resolve(key === id ? inStore : undefined) },
    privateKeyPathTemplate: '/etc/envoy/private/{certificate}.key',
    clock: () => 0,
  });
  const hubReceives = (certificate: StoredCertificate) => {
    cache.set(id, certificate);
    for (const listener of listeners) listener({ type: 'updated', certificate });
  };
  return { source, hubReceives };
}

test('a certificate in Redis that the hub has not loaded yet resolves, and is served once the hub has it', async () => {
  const record = storedCertificate({ der: 'ocsp', nextUpdateMs: 1000 }, id);
  const { source, hubReceives } = setup(record);
  const resource = await source.resolve(name, context);
  assert.equal(resource.current(), undefined, 'nothing to send before the hub has it');
  let changes = 0;
  resource.listen(() => changes++);
  hubReceives(record);
  assert.equal(changes, 1, 'the stream hears of it');
  assert.equal(resource.current()?.secret.name, name);
  assert.equal(resource.current(), resource.current(), 'one build shared by every ask');
});

test('a certificate neither the hub nor Redis holds is NOT_FOUND', async () => {
  const { source } = setup(undefined);
  await assert.rejects(
    source.resolve(name, context),
    (error: unknown) => error instanceof KeyfleetError && error.code === ErrorCode.NotFound,
  );
});
