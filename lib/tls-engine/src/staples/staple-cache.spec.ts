import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OcspCertStatus, StapleStatus, type CertificateRecord } from '@keyfleet/proto';
import { StapleCache } from './staple-cache.js';
import { cachedStapleOf } from './watch-staples-provider.js';

const staple = (nextUpdateMs: number) => ({
  der: new Uint8Array([1, 2, 3]),
  thisUpdateMs: 0,
  nextUpdateMs,
  certStatus: 'good' as const,
});

test('lookup: fresh before nextUpdate, expired from nextUpdate on, none when absent', () => {
  const cache = new StapleCache();
  cache.set('a', staple(1000));
  assert.equal(cache.lookup('a', 999).kind, 'fresh');
  assert.equal(cache.lookup('a', 1000).kind, 'expired');
  assert.equal(cache.lookup('b', 0).kind, 'none');
});

test('lookup: a staple without nextUpdate is never served', () => {
  const cache = new StapleCache();
  cache.set('a', staple(0));
  assert.equal(cache.lookup('a', 1).kind, 'expired');
});

test('replaceAll drops what the snapshot no longer has; set(undefined) forgets one', () => {
  const cache = new StapleCache();
  let changes = 0;
  cache.onChange(() => changes++);
  cache.set('a', staple(1000));
  cache.replaceAll([['b', staple(1000)]]);
  assert.equal(cache.lookup('a', 0).kind, 'none');
  assert.equal(cache.lookup('b', 0).kind, 'fresh');
  cache.set('b', undefined);
  assert.equal(cache.size, 0);
  assert.equal(changes, 3);
});

test('cachedStapleOf: records without a staple (pending, no OCSP URL, expired) carry none', () => {
  const base: CertificateRecord = {
    id: 'x',
    subject: '',
    issuer: '',
    serialHex: '',
    notAfterMs: 0,
    dnsNames: [],
    ocspUrl: '',
    status: StapleStatus.PENDING,
    staple: undefined,
    fetch: undefined,
    registeredAtMs: 0,
  };
  assert.equal(cachedStapleOf(base), undefined);
  const withStaple = cachedStapleOf({
    ...base,
    status: StapleStatus.REVOKED,
    staple: {
      der: Buffer.from([9]),
      certStatus: OcspCertStatus.REVOKED,
      thisUpdateMs: 1,
      nextUpdateMs: 2,
      producedAtMs: 1,
      revokedAtMs: 1,
      fetchedAtMs: 1,
      responderUrl: '',
    },
  });
  assert.equal(withStaple?.certStatus, 'revoked');
  assert.equal(withStaple?.nextUpdateMs, 2);
});
