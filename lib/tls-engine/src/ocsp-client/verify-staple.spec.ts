import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { certIdFor } from '../ocsp/cert-id.js';
import {
  buildOcspResponse,
  createTestCa,
  type ResponseOptions,
  type TestCa,
} from '../testing/pkijs-test-ca.js';
import { verifyStaple } from './verify-staple.js';

const minute = 60_000;
const now = Math.floor(Date.now() / 1000) * 1000;
let ca: TestCa;

before(async () => {
  ca = await createTestCa();
});

const response = (overrides: Partial<ResponseOptions> = {}) =>
  buildOcspResponse({
    certId: certIdFor(ca.leaf.certificate, ca.issuer.certificate, 'sha1'),
    signer: ca.responder,
    certs: [ca.responder],
    thisUpdateMs: now - minute,
    nextUpdateMs: now + 60 * minute,
    ...overrides,
  });

const verify = async (responseDer: Uint8Array, certificateDer = ca.leaf.der) =>
  await verifyStaple({ responseDer, certificateDer, issuerDer: ca.issuer.der, nowMs: now });

test('good → accept, with the signer kind and the validated times', async () => {
  const result = await verify(await response());
  assert.equal(result.outcome, 'accept', result.reason);
  assert.equal(result.certStatus, 'good');
  assert.equal(result.signer, 'delegated');
  assert.equal(result.thisUpdateMs, now - minute);
  assert.equal(result.nextUpdateMs, now + 60 * minute);
});

test('a CertID hashed with SHA-256 or SHA-512 is matched too', async () => {
  for (const hash of ['sha256', 'sha512'] as const) {
    const certId = certIdFor(ca.leaf.certificate, ca.issuer.certificate, hash);
    const result = await verify(await response({ certId, signer: ca.issuer, certs: [] }));
    assert.equal(result.outcome, 'accept', `${hash}: ${result.reason}`);
    assert.equal(result.signer, 'issuer');
  }
});

test('revoked or unknown → reject', async () => {
  const revoked = await verify(await response({ status: 'revoked', revokedAtMs: now - 2 * minute }));
  assert.equal(revoked.outcome, 'reject');
  assert.equal(revoked.certStatus, 'revoked');
  const unknown = await verify(await response({ status: 'unknown' }));
  assert.equal(unknown.outcome, 'reject');
  assert.equal(unknown.certStatus, 'unknown');
});

test("any validator failure → error naming the validator's reason", async () => {
  const forged = await verify(await response({ signingKey: ca.unrelated.privateKey }));
  assert.equal(forged.outcome, 'error');
  assert.match(forged.reason, /bad_signature/);
  assert.equal(forged.certStatus, undefined);
  const otherLeaf = await verify(await response(), ca.responder.der);
  assert.equal(otherLeaf.outcome, 'error');
  assert.match(otherLeaf.reason, /CertID/);
});

test('empty, malformed certificates and garbage → error, never a throw', async () => {
  assert.equal((await verify(new Uint8Array())).outcome, 'error');
  const good = await response();
  assert.equal((await verify(good, new Uint8Array([0x30, 0x00]))).outcome, 'error');
  assert.equal((await verify(Buffer.from('<html>busy</html>'))).outcome, 'error');
});
