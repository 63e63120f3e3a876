import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { OcspCertStatus } from '@keyfleet/proto';
import { FetchResult } from '@keyfleet/tls-engine';
import type { StoredCertificate, StoredStaple } from '../store/stored-certificate.js';
import { certificateLabel, createOcspMetrics } from './ocsp-metrics.js';

const now = 1_700_000_000_000;
const certificate = (
  id: string,
  staple?: Partial<StoredStaple>,
  extra: { ocspUrl?: string; failures?: number } = {},
) =>
  ({
    chain: {
      id: id.repeat(64 / id.length),
      leafDer: new Uint8Array(),
      issuerDer: new Uint8Array(),
      subject: '',
      issuer: '',
      serialHex: '',
      notAfterMs: now + 1e9,
      dnsNames: [],
      ocspUrl: extra.ocspUrl ?? 'http://ocsp.test',
    },
    registeredAtMs: now - 1e6,
    staple: staple
      ? {
          der: new Uint8Array([1]),
          certStatus: OcspCertStatus.GOOD,
          thisUpdateMs: now - 60_000,
          nextUpdateMs: now + 120_000,
          producedAtMs: now - 60_000,
          revokedAtMs: 0,
          fetchedAtMs: now - 30_000,
          responderUrl: 'http://ocsp.test',
          ...staple,
        }
      : undefined,
    fetch: {
      lastAttemptAtMs: 0,
      nextAttemptAtMs: 0,
      consecutiveFailures: extra.failures ?? 0,
      lastError: '',
    },
  }) satisfies StoredCertificate;

test('gauges are computed from the registry view at scrape time; counters as fetches happen', async () => {
  const registry = new Registry();
  const certificates: StoredCertificate[] = [
    certificate('a', {}),
    certificate('b', { certStatus: OcspCertStatus.REVOKED, revokedAtMs: now - 1 }),
    certificate('c', { nextUpdateMs: now - 1 }),
    certificate('d'),
    certificate('e', undefined, { failures: 3 }),
    certificate('f', undefined, { ocspUrl: '' }),
  ];
  const metrics = createOcspMetrics(registry, { certificates: () => certificates }, () => now);
  metrics.recordFetch('http://ocsp.test', FetchResult.Ok, 0.02);
  metrics.recordFetch('http://ocsp.test', FetchResult.TryLater, undefined);

  const values = async (name: string) =>
    Object.fromEntries(
      (await registry.getSingleMetric(name)!.get()).values.map((v) => [
        Object.values(v.labels).join(','),
        v.value,
      ]),
    );
  assert.deepEqual(await values('keyfleet_ocsp_certificates'), {
    good: 1,
    revoked: 1,
    unknown: 0,
    no_ocsp_url: 1,
    pending: 1,
    fetch_failing: 1,
    expired: 1,
  });
  const a = certificateLabel('a'.repeat(64));
  const b = certificateLabel('b'.repeat(64));
  assert.equal(a, 'aaaaaaaaaaaaaaaa');
  assert.deepEqual(await values('keyfleet_ocsp_staple_seconds_until_next_update'), { [a]: 120, [b]: 120 });
  assert.deepEqual(await values('keyfleet_ocsp_staple_age_seconds'), { [a]: 60, [b]: 60 });
  assert.deepEqual(await values('keyfleet_ocsp_staple_validity_seconds'), { [a]: 180, [b]: 180 });
  assert.deepEqual(await values('keyfleet_ocsp_staple_revoked'), { [a]: 0, [b]: 1 });
  assert.deepEqual(await values('keyfleet_ocsp_fetches_total'), {
    'http://ocsp.test,ok': 1,
    'http://ocsp.test,try_later': 1,
  });

  certificates.splice(0, 1); // unregistered: its series disappear
  assert.deepEqual(await values('keyfleet_ocsp_staple_revoked'), { [b]: 1 });
});
