import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as pkijs from 'pkijs';
import { certIdFor, certIdHashOf, type CertIdHashName } from './cert-id.js';
import { ensurePkiEngine } from './crypto-engine.js';
import { createTestCa, type TestCa } from '../testing/pkijs-test-ca.js';

let ca: TestCa;
before(async () => {
  ca = await createTestCa();
});

const webCryptoName: Record<CertIdHashName, string> = {
  sha1: 'SHA-1',
  sha256: 'SHA-256',
  sha384: 'SHA-384',
  sha512: 'SHA-512',
};

test('certIdFor builds the CertID pkijs builds for an OCSP request, for every hash', async () => {
  for (const hash of ['sha1', 'sha256', 'sha384', 'sha512'] as const) {
    const reference = new pkijs.CertID();
    await reference.createForCertificate(
      ca.leaf.certificate,
      { hashAlgorithm: webCryptoName[hash], issuerCertificate: ca.issuer.certificate },
      ensurePkiEngine(),
    );
    const built = certIdFor(ca.leaf.certificate, ca.issuer.certificate, hash);
    assert.ok(built.isEqual(reference), hash);
    assert.equal(certIdHashOf(built), hash);
    assert.deepEqual(
      Buffer.from(built.toSchema().toBER(false)),
      Buffer.from(reference.toSchema().toBER(false)),
      hash,
    );
  }
});

test('certIdFor differs for another leaf or another issuer', () => {
  const ours = certIdFor(ca.leaf.certificate, ca.issuer.certificate, 'sha1');
  assert.ok(!certIdFor(ca.responder.certificate, ca.issuer.certificate, 'sha1').isEqual(ours));
  assert.ok(!certIdFor(ca.leaf.certificate, ca.unrelated.certificate, 'sha1').isEqual(ours));
  assert.ok(!certIdFor(ca.leaf.certificate, ca.issuer.certificate, 'sha256').isEqual(ours));
});

test('certIdHashOf: an algorithm we do not compute (MD5) is undefined', () => {
  const md5 = certIdFor(ca.leaf.certificate, ca.issuer.certificate, 'sha1');
  md5.hashAlgorithm = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.2.5' });
  assert.equal(certIdHashOf(md5), undefined);
});
