import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OcspCertStatus, StapleStatus } from '@keyfleet/proto';
import { stapleStatusOf, toCertificateRecord } from './certificate-record.js';
import type { StoredCertificate, StoredStaple } from '../store/stored-certificate.js';

const now = 1_700_000_000_000;
const staple = (overrides: Partial<StoredStaple> = {}): StoredStaple => ({
  der: new Uint8Array([1, 2, 3]),
  certStatus: OcspCertStatus.GOOD,
  thisUpdateMs: now - 60_000,
  nextUpdateMs: now + 60_000,
  producedAtMs: now - 60_000,
  revokedAtMs: 0,
  fetchedAtMs: now - 50_000,
  responderUrl: 'http://ocsp.test',
  ...overrides,
});
const certificate = (overrides: {
  ocspUrl?: string;
  staple?: StoredStaple;
  failures?: number;
}): StoredCertificate => ({
  chain: {
    id: 'ab'.repeat(32),
    leafDer: new Uint8Array([1]),
    issuerDer: new Uint8Array([2]),
    subject: 'CN=a',
    issuer: 'CN=b',
    serialHex: '1000',
    notAfterMs: now + 86_400_000,
    dnsNames: ['a.test'],
    ocspUrl: overrides.ocspUrl ?? 'http://ocsp.test',
  },
  registeredAtMs: now - 100_000,
  staple: overrides.staple,
  fetch: {
    lastAttemptAtMs: 0,
    nextAttemptAtMs: 0,
    consecutiveFailures: overrides.failures ?? 0,
    lastError: '',
  },
});

describe('stapleStatusOf', () => {
  const cases: Array<[string, StoredCertificate, StapleStatus, boolean]> = [
    ['no OCSP URL', certificate({ ocspUrl: '' }), StapleStatus.NO_OCSP_URL, false],
    ['registered, not fetched yet', certificate({}), StapleStatus.PENDING, false],
    ['no staple and failing', certificate({ failures: 2 }), StapleStatus.FETCH_FAILING, false],
    ['good', certificate({ staple: staple() }), StapleStatus.GOOD, true],
    [
      'good while fetches fail: the last good staple is served',
      certificate({ staple: staple(), failures: 3 }),
      StapleStatus.GOOD,
      true,
    ],
    [
      'revoked',
      certificate({ staple: staple({ certStatus: OcspCertStatus.REVOKED, revokedAtMs: now - 1 }) }),
      StapleStatus.REVOKED,
      true,
    ],
    [
      'unknown (stored before unknown stopped being stored): reported, never served',
      certificate({ staple: staple({ certStatus: OcspCertStatus.UNKNOWN }) }),
      StapleStatus.UNKNOWN,
      false,
    ],
    ['past nextUpdate', certificate({ staple: staple({ nextUpdateMs: now }) }), StapleStatus.EXPIRED, false],
  ];
  for (const [name, input, status, served] of cases) {
    test(name, () => {
      assert.equal(stapleStatusOf(input, now), status);
      const record = toCertificateRecord(input, now);
      assert.equal(record.status, status);
      assert.equal(record.staple !== undefined, served, 'an expired or missing staple is never served');
      if (served) assert.deepEqual([...record.staple!.der], [1, 2, 3]);
    });
  }
});
