import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OcspCertStatus, StapleStatus, type CertificateRecord } from '@keyfleet/proto';
import { parseShowTlsKeys } from './haproxy-runtime-api.js';
import { stapleDestinations } from './staple-destinations.js';
import { OCSP_TRY_LATER_DER, servableStaple } from './staple-files.js';

const key = (byte: number) => Buffer.alloc(80, byte).toString('base64');

test('show tls-keys: parsed oldest first; junk, gaps and hostile lines give nothing to trust', () => {
  const listing = `# id secret\n# 0 (/etc/haproxy/t.keys)\n0.0 ${key(1)}\n0.1 ${key(2)}\n0.2 ${key(3)}\n\n`;
  assert.deepEqual(parseShowTlsKeys(listing), [key(1), key(2), key(3)]);
  assert.deepEqual(parseShowTlsKeys("'show tls-keys' unable to locate referenced filename\n"), []);
  assert.deepEqual(parseShowTlsKeys(`0.0 ${key(1)}\n0.2 ${key(3)}\n`), [], 'a gap');
  assert.deepEqual(parseShowTlsKeys(`0.0 ${key(1)}; rm -rf /\n`), [], 'not base64');
  assert.deepEqual(parseShowTlsKeys('x'.repeat(100_000)), []);
  assert.deepEqual(parseShowTlsKeys(''), []);
});

test('staple destinations: only well-formed certificate ids become file names', () => {
  const destinations = stapleDestinations({ stapleDir: '/var/run/keyfleet' });
  const id = 'ab'.repeat(32);
  assert.deepEqual(destinations.pathsFor(id), [`/var/run/keyfleet/${id}.der`]);
  for (const hostile of [
    '../../etc/passwd',
    `${id}/../x`,
    id.toUpperCase(),
    '',
    'ab'.repeat(33),
    `${id}\n`,
  ]) {
    assert.deepEqual(destinations.pathsFor(hostile), [], JSON.stringify(hostile));
  }
});

function record(overrides: Partial<CertificateRecord>, nextUpdateMs: number): CertificateRecord {
  return {
    id: 'ab'.repeat(32),
    subject: '',
    issuer: '',
    serialHex: '',
    notAfterMs: 0,
    dnsNames: [],
    ocspUrl: '',
    status: StapleStatus.GOOD,
    staple: {
      der: Buffer.from([0x30, 0x01, 0x00]),
      certStatus: OcspCertStatus.GOOD,
      thisUpdateMs: 0,
      nextUpdateMs,
      producedAtMs: 0,
      revokedAtMs: 0,
      fetchedAtMs: 0,
      responderUrl: '',
    },
    fetch: undefined,
    registeredAtMs: 0,
    ...overrides,
  };
}

test('servable staple: valid and revoked ones are served; expired, missing or empty never', () => {
  assert.deepEqual(servableStaple(record({}, 1000), 999), Buffer.from([0x30, 0x01, 0x00]));
  assert.ok(
    servableStaple(record({ status: StapleStatus.REVOKED }, 1000), 0),
    'REVOKED is the truth: served',
  );
  assert.equal(servableStaple(record({}, 1000), 1000), undefined, 'at nextUpdate it is expired');
  assert.equal(servableStaple(record({ status: StapleStatus.EXPIRED }, 1000), 0), undefined);
  assert.equal(servableStaple(record({ staple: undefined, status: StapleStatus.PENDING }, 0), 0), undefined);
  const empty = record({}, 1000);
  empty.staple!.der = Buffer.alloc(0);
  assert.equal(servableStaple(empty, 0), undefined);
});

test('the tryLater placeholder is a well-formed OCSPResponse with responseStatus 3', () => {
  // SEQUENCE { ENUMERATED 3 }
  assert.deepEqual([...OCSP_TRY_LATER_DER], [0x30, 0x03, 0x0a, 0x01, 0x03]);
});
