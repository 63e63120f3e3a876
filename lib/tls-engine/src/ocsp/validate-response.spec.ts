import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as pkijs from 'pkijs';
import { OcspCertStatus } from '@keyfleet/proto';
import { certIdFor, type CertIdHashName } from './cert-id.js';
import { FetchResult } from './fetch-result.js';
import { defaultMaxResponseBytes, defaultSkewMs, validateOcspResponse } from './validate-response.js';
import {
  buildOcspResponse,
  createTestCa,
  issueCertificate,
  ocspStatusOnlyResponse,
  wrapBasicResponse,
  type ResponseOptions,
  type TestCa,
} from '../testing/pkijs-test-ca.js';

const minute = 60_000;
const now = Math.floor(Date.now() / 1000) * 1000;

let ca: TestCa;
const certIds: Partial<Record<CertIdHashName, pkijs.CertID>> = {};
let otherCertId: pkijs.CertID;

before(async () => {
  ca = await createTestCa();
  for (const hash of ['sha1', 'sha256'] as const) {
    certIds[hash] = certIdFor(ca.leaf.certificate, ca.issuer.certificate, hash);
  }
  const other = await issueCertificate({ commonName: 'other.test', issuer: ca.issuer });
  otherCertId = certIdFor(other.certificate, ca.issuer.certificate, 'sha1');
});

interface Case {
  readonly name: string;
  /** The response under test, from the fixtures. */
  readonly body: () => Promise<Uint8Array> | Uint8Array;
  readonly hash?: CertIdHashName;
  readonly nowMs?: number;
  readonly skewMs?: number;
  readonly maxResponseBytes?: number;
  readonly purpose?: 'store' | 'client';
  readonly expect: FetchResult;
  readonly check?: (staple: {
    certStatus: OcspCertStatus;
    nextUpdateMs: number;
    thisUpdateMs: number;
    revokedAtMs: number;
  }) => void;
}

const good = (overrides: Partial<ResponseOptions> = {}) =>
  buildOcspResponse({
    certId: certIds.sha1!,
    signer: ca.responder,
    certs: [ca.responder],
    thisUpdateMs: now - minute,
    nextUpdateMs: now + 60 * minute,
    ...overrides,
  });

const cases: Case[] = [
  {
    name: 'a good response from a delegated responder',
    body: () => good(),
    expect: FetchResult.Ok,
    check: (s) => {
      assert.equal(s.certStatus, OcspCertStatus.GOOD);
      assert.equal(s.thisUpdateMs, now - minute);
      assert.equal(s.nextUpdateMs, now + 60 * minute);
    },
  },
  {
    name: 'signed by the issuer itself, responder id by key',
    body: () => good({ signer: ca.issuer, certs: [], responderIdByKey: true }),
    expect: FetchResult.Ok,
  },
  {
    name: 'a revoked response is a valid staple',
    body: () => good({ status: 'revoked', revokedAtMs: now - 30 * minute }),
    expect: FetchResult.Ok,
    check: (s) => {
      assert.equal(s.certStatus, OcspCertStatus.REVOKED);
      assert.equal(s.revokedAtMs, now - 30 * minute);
    },
  },
  {
    name: 'unknown status is never stored: a failure of its own',
    body: () => good({ status: 'unknown' }),
    expect: FetchResult.CertStatusUnknown,
  },
  {
    name: 'unknown status is handed to a client to reject',
    purpose: 'client',
    body: () => good({ status: 'unknown' }),
    expect: FetchResult.Ok,
    check: (s) => assert.equal(s.certStatus, OcspCertStatus.UNKNOWN),
  },
  {
    name: 'an unknown status signed by a stranger is a bad signer, not "unknown"',
    body: () => good({ status: 'unknown', signer: ca.unrelated, certs: [ca.unrelated] }),
    expect: FetchResult.UnauthorizedSigner,
  },
  {
    name: 'SHA-256 CertID when asked with SHA-256',
    hash: 'sha256',
    body: () => good({ certId: certIds.sha256! }),
    expect: FetchResult.Ok,
  },
  {
    name: 'SHA-1 CertID when asked with SHA-256',
    hash: 'sha256',
    body: () => good(),
    expect: FetchResult.CertIdMismatch,
  },
  {
    name: "another certificate's CertID",
    body: () => good({ certId: otherCertId }),
    expect: FetchResult.CertIdMismatch,
  },
  {
    name: 'other SingleResponses besides ours are fine',
    body: () => good({ extraCertIds: [otherCertId] }),
    expect: FetchResult.Ok,
  },
  {
    name: 'two SingleResponses for our CertID',
    body: () => good({ extraCertIds: [certIds.sha1!] }),
    expect: FetchResult.CertIdMismatch,
  },
  {
    name: 'signed by an unrelated key that names itself',
    body: () => good({ signer: ca.unrelated, certs: [ca.unrelated] }),
    expect: FetchResult.UnauthorizedSigner,
  },
  {
    name: 'names the issuer but is signed by another key',
    body: () => good({ signer: ca.issuer, certs: [], signingKey: ca.unrelated.privateKey }),
    expect: FetchResult.BadSignature,
  },
  {
    name: 'names the delegated responder but is signed by another key',
    body: () => good({ signingKey: ca.unrelated.privateKey }),
    expect: FetchResult.BadSignature,
  },
  {
    name: 'a delegated responder without id-kp-OCSPSigning',
    body: () => good({ signer: ca.responderWithoutOcspSigning, certs: [ca.responderWithoutOcspSigning] }),
    expect: FetchResult.UnauthorizedSigner,
  },
  {
    name: 'a delegated responder whose certificate is not in the response',
    body: () => good({ certs: [] }),
    expect: FetchResult.UnauthorizedSigner,
  },
  {
    name: 'a delegated responder whose certificate has expired',
    nowMs: Date.now() + 40 * 86_400_000,
    body: () => {
      const at = Date.now() + 40 * 86_400_000;
      return good({ thisUpdateMs: at - minute, nextUpdateMs: at + minute });
    },
    expect: FetchResult.UnauthorizedSigner,
  },
  {
    name: 'no nextUpdate',
    body: () => good({ nextUpdateMs: undefined }),
    expect: FetchResult.NoNextUpdate,
  },
  {
    name: 'nextUpdate passed beyond the skew',
    body: () => good({ thisUpdateMs: now - 120 * minute, nextUpdateMs: now - 6 * minute }),
    expect: FetchResult.Expired,
  },
  {
    name: 'nextUpdate passed within the skew is not stored',
    body: () => good({ thisUpdateMs: now - 120 * minute, nextUpdateMs: now - 4 * minute }),
    expect: FetchResult.Expired,
  },
  {
    name: 'nextUpdate exactly now is not stored',
    body: () => good({ thisUpdateMs: now - 120 * minute, nextUpdateMs: now }),
    expect: FetchResult.Expired,
  },
  {
    name: 'nextUpdate a second ahead is stored',
    body: () => good({ thisUpdateMs: now - 120 * minute, nextUpdateMs: now + 1000 }),
    expect: FetchResult.Ok,
  },
  {
    name: 'nextUpdate passed within the skew is tolerated by a client',
    purpose: 'client',
    body: () => good({ thisUpdateMs: now - 120 * minute, nextUpdateMs: now - 4 * minute }),
    expect: FetchResult.Ok,
  },
  {
    name: 'thisUpdate in the future beyond the skew',
    body: () => good({ thisUpdateMs: now + 6 * minute, nextUpdateMs: now + 60 * minute }),
    expect: FetchResult.NotYetValid,
  },
  {
    name: 'thisUpdate in the future within the skew',
    body: () => good({ thisUpdateMs: now + 4 * minute, nextUpdateMs: now + 60 * minute }),
    expect: FetchResult.Ok,
  },
  {
    name: 'thisUpdate in the future with a smaller configured skew',
    skewMs: minute,
    body: () => good({ thisUpdateMs: now + 4 * minute, nextUpdateMs: now + 60 * minute }),
    expect: FetchResult.NotYetValid,
  },
  {
    name: 'nextUpdate not after thisUpdate',
    body: () => good({ thisUpdateMs: now, nextUpdateMs: now }),
    expect: FetchResult.Malformed,
  },
  {
    name: "validity capped at the responder certificate's notAfter",
    nowMs: Date.now(),
    body: () => {
      const at = Date.now();
      return good({ thisUpdateMs: at - minute, nextUpdateMs: at + 365 * 86_400_000 });
    },
    expect: FetchResult.Ok,
    check: (s) => assert.equal(s.nextUpdateMs, ca.responder.certificate.notAfter.value.getTime()),
  },
  { name: 'tryLater', body: () => ocspStatusOnlyResponse(3), expect: FetchResult.TryLater },
  { name: 'internalError', body: () => ocspStatusOnlyResponse(2), expect: FetchResult.InternalError },
  { name: 'malformedRequest', body: () => ocspStatusOnlyResponse(1), expect: FetchResult.MalformedRequest },
  { name: 'sigRequired', body: () => ocspStatusOnlyResponse(5), expect: FetchResult.SigRequired },
  { name: 'unauthorized', body: () => ocspStatusOnlyResponse(6), expect: FetchResult.Unauthorized },
  {
    name: 'an undefined responseStatus',
    body: () => ocspStatusOnlyResponse(4),
    expect: FetchResult.Malformed,
  },
  {
    name: 'successful without responseBytes',
    body: () => ocspStatusOnlyResponse(0),
    expect: FetchResult.Malformed,
  },
  {
    name: 'a response type other than basic',
    body: async () => {
      const basic = await good();
      return wrapBasicResponse(basic, '1.3.6.1.5.5.7.48.1.99');
    },
    expect: FetchResult.UnsupportedResponseType,
  },
  {
    name: 'basic response bytes that are not a BasicOCSPResponse',
    body: () => wrapBasicResponse(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])),
    expect: FetchResult.Malformed,
  },
  { name: 'an empty body', body: () => new Uint8Array(), expect: FetchResult.Malformed },
  { name: 'an HTML error page', body: () => Buffer.from('<html>busy</html>'), expect: FetchResult.Malformed },
  {
    name: 'a truncated response',
    body: async () => (await good()).subarray(0, 100),
    expect: FetchResult.Malformed,
  },
  {
    name: 'a response with trailing bytes',
    body: async () => Buffer.concat([await good(), Buffer.from([0])]),
    expect: FetchResult.Malformed,
  },
  {
    name: 'a length field claiming gigabytes',
    body: () => new Uint8Array([0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x0a]),
    expect: FetchResult.Malformed,
  },
  {
    name: 'deeply nested sequences',
    body: () => {
      const depth = 2000;
      const bytes: number[] = [];
      for (let i = 0; i < depth; i++) bytes.push(0x30, 0x80);
      for (let i = 0; i < depth; i++) bytes.push(0x00, 0x00);
      return new Uint8Array(bytes);
    },
    expect: FetchResult.Malformed,
  },
  {
    name: 'over the size cap',
    maxResponseBytes: 200,
    body: () => good(),
    expect: FetchResult.TooLarge,
  },
];

describe('validateOcspResponse', () => {
  for (const testCase of cases) {
    test(testCase.name, async () => {
      const der = await testCase.body();
      const result = await validateOcspResponse({
        der,
        certId: certIds[testCase.hash ?? 'sha1']!,
        issuer: ca.issuer.certificate,
        nowMs: testCase.nowMs ?? now,
        skewMs: testCase.skewMs ?? defaultSkewMs,
        maxResponseBytes: testCase.maxResponseBytes ?? defaultMaxResponseBytes,
        ...(testCase.purpose ? { purpose: testCase.purpose } : {}),
      });
      assert.equal(
        result.ok ? FetchResult.Ok : result.reason,
        testCase.expect,
        result.ok ? '' : result.detail,
      );
      if (result.ok) {
        assert.deepEqual(Buffer.from(result.staple.der), Buffer.from(der));
        testCase.check?.(result.staple);
      } else {
        assert.ok(result.detail.length > 0);
      }
    });
  }

  test('random bytes never throw and never validate', async () => {
    for (let i = 0; i < 200; i++) {
      const length = Math.floor(Math.random() * 300);
      const der = new Uint8Array(length).map(() => Math.floor(Math.random() * 256));
      if (i % 2 === 0 && length > 0) der[0] = 0x30;
      const result = await validateOcspResponse({
        der,
        certId: certIds.sha1!,
        issuer: ca.issuer.certificate,
        nowMs: now,
        skewMs: defaultSkewMs,
        maxResponseBytes: defaultMaxResponseBytes,
      });
      assert.equal(result.ok, false);
    }
  });

  test('no single-byte change anywhere in a good response validates', async () => {
    const der = await good();
    let rejected = 0;
    for (let i = 0; i < der.length; i++) {
      const mutated = Uint8Array.from(der);
      mutated[i] = mutated[i]! ^ 0x41;
      const result = await validateOcspResponse({
        der: mutated,
        certId: certIds.sha1!,
        issuer: ca.issuer.certificate,
        nowMs: now,
        skewMs: defaultSkewMs,
        maxResponseBytes: defaultMaxResponseBytes,
      });
      assert.equal(result.ok, false, `byte ${i} of ${der.length}`);
      rejected++;
    }
    assert.equal(rejected, der.length);
  });
});

describe('validateOcspResponse given a leaf instead of a CertID (a TLS client)', () => {
  const validateForLeaf = async (der: Uint8Array, leaf = ca.leaf.certificate) =>
    await validateOcspResponse({
      der,
      certId: { leaf },
      issuer: ca.issuer.certificate,
      nowMs: now,
      skewMs: defaultSkewMs,
      maxResponseBytes: defaultMaxResponseBytes,
    });

  for (const hash of ['sha1', 'sha256', 'sha384', 'sha512'] as const) {
    test(`matches a ${hash} CertID, whichever the responder used`, async () => {
      const result = await validateForLeaf(
        await good({ certId: certIdFor(ca.leaf.certificate, ca.issuer.certificate, hash) }),
      );
      assert.ok(result.ok, result.ok ? '' : result.detail);
      assert.equal(result.signer, 'delegated');
    });
  }

  test('names the issuer as signer when the issuer signed', async () => {
    const result = await validateForLeaf(await good({ signer: ca.issuer, certs: [] }));
    assert.ok(result.ok, result.ok ? '' : result.detail);
    assert.equal(result.signer, 'issuer');
  });

  test("another leaf's response is a CertID mismatch, with any hash", async () => {
    const other = await issueCertificate({ commonName: 'third.test', issuer: ca.issuer });
    for (const hash of ['sha1', 'sha256'] as const) {
      const result = await validateForLeaf(
        await good({ certId: certIdFor(other.certificate, ca.issuer.certificate, hash) }),
      );
      assert.equal(result.ok ? FetchResult.Ok : result.reason, FetchResult.CertIdMismatch, hash);
    }
  });

  test('the same response checked for another leaf is a CertID mismatch', async () => {
    const result = await validateForLeaf(await good(), ca.responder.certificate);
    assert.equal(result.ok ? FetchResult.Ok : result.reason, FetchResult.CertIdMismatch);
  });

  test('a CertID hashed with an algorithm we do not compute (MD5) matches nothing', async () => {
    const md5 = certIdFor(ca.leaf.certificate, ca.issuer.certificate, 'sha1');
    md5.hashAlgorithm = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.2.5' });
    const result = await validateForLeaf(await good({ certId: md5 }));
    assert.equal(result.ok ? FetchResult.Ok : result.reason, FetchResult.CertIdMismatch);
  });

  test('two SingleResponses for our leaf under different hashes are ambiguous', async () => {
    const result = await validateForLeaf(await good({ extraCertIds: [certIds.sha256!] }));
    assert.equal(result.ok ? FetchResult.Ok : result.reason, FetchResult.CertIdMismatch);
  });
});
