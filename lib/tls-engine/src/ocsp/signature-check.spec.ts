import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { createTestCa, issueCertificate } from '../testing/pkijs-test-ca.js';
import { signatureOver } from './signature-check.js';

// A certificate's own signature is a signature over its tbsView by its issuer.
const ca = await createTestCa();
const leaf = await issueCertificate({ commonName: 'leaf.test', issuer: ca.issuer });
const other = await issueCertificate({ commonName: 'other.test' });
const { certificate } = leaf;

test('an issuer’s ECDSA signature verifies, on the fast path and again from the key cache', async () => {
  for (let i = 0; i < 2; i++) {
    assert.equal(
      await signatureOver(
        certificate.tbsView,
        certificate.signatureValue,
        ca.issuer.certificate,
        certificate.signatureAlgorithm,
      ),
      true,
    );
  }
});

test('tampered data, another key, a mismatched algorithm and a mangled signature all fail, without throwing', async () => {
  const tampered = Uint8Array.from(certificate.tbsView);
  tampered[tampered.length - 1]! ^= 1;
  const sign = (data: Uint8Array, signer: pkijs.Certificate, algorithm = certificate.signatureAlgorithm) =>
    signatureOver(data, certificate.signatureValue, signer, algorithm);
  assert.equal(await sign(tampered, ca.issuer.certificate), false, 'tampered data');
  assert.equal(await sign(certificate.tbsView, other.certificate), false, 'another key');
  const rsaOid = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.1.1.11' });
  assert.equal(
    await sign(certificate.tbsView, ca.issuer.certificate, rsaOid),
    false,
    'RSA algorithm, EC key',
  );
  const unknown = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.3.4' });
  assert.equal(
    await sign(certificate.tbsView, ca.issuer.certificate, unknown),
    false,
    'an algorithm nobody knows',
  );
  const empty = new asn1js.BitString({ valueHex: new ArrayBuffer(0) });
  assert.equal(
    await signatureOver(certificate.tbsView, empty, ca.issuer.certificate, certificate.signatureAlgorithm),
    false,
    'an empty signature',
  );
});
