import { test } from 'node:test';
import assert from 'node:assert/strict';
import { storedCertificate as certificate } from '../testing/stored-certificate-fixture.js';
import { certificateIdOfResource, envoyStapleSecret } from './envoy-staple-secret.js';

const id = 'ab'.repeat(32);
const template = '/etc/envoy/private/{certificate}.key';
test('resource names: staple/ and exactly 64 lower-case hex', () => {
  assert.equal(certificateIdOfResource(`staple/${id}`), id);
  for (const bad of [
    `staple/${id.toUpperCase()}`,
    `staple/${id}0`,
    `staple/${id.slice(1)}`,
    `staple/${id}/x`,
    `ticket-keys/${id}`,
    'staple/',
    '',
  ]) {
    assert.equal(certificateIdOfResource(bad), undefined, bad);
  }
});

test('the chain as PEM leaf then issuer, the key as a file on the Envoy, the staple while valid', () => {
  const withStaple = envoyStapleSecret(
    `staple/${id}`,
    certificate({ der: 'ocsp', nextUpdateMs: 1000 }),
    template,
    500,
  );
  const tls = withStaple.secret.tls_certificate!;
  assert.equal(withStaple.secret.name, `staple/${id}`);
  assert.deepEqual(tls.private_key, { filename: `/etc/envoy/private/${id}.key` });
  const pem = (
    'inline_bytes' in tls.certificate_chain ? tls.certificate_chain.inline_bytes : Buffer.alloc(0)
  ).toString();
  const blocks = [
    ...pem.matchAll(/-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=\n]+)\n-----END CERTIFICATE-----\n/g),
  ];
  assert.deepEqual(
    blocks.map((block) => Buffer.from(block[1]!.replaceAll('\n', ''), 'base64')),
    [certificate().chain.leafDer, certificate().chain.issuerDer],
  );
  assert.deepEqual(tls.ocsp_staple, { inline_bytes: Buffer.from('ocsp') });
  assert.equal(withStaple.nextChangeAtMs, 1000, 'pushed again when the staple expires');

  const expired = envoyStapleSecret(
    `staple/${id}`,
    certificate({ der: 'ocsp', nextUpdateMs: 1000 }),
    template,
    1000,
  );
  assert.equal(expired.secret.tls_certificate!.ocsp_staple, undefined, 'an expired staple is withdrawn');
  assert.notEqual(expired.version, withStaple.version);
  assert.equal(expired.nextChangeAtMs, undefined);

  const none = envoyStapleSecret(`staple/${id}`, certificate(), template, 0);
  assert.equal(none.secret.tls_certificate!.ocsp_staple, undefined);
  assert.equal(none.version, expired.version, 'same bytes, same version');

  const refreshed = envoyStapleSecret(
    `staple/${id}`,
    certificate({ der: 'ocsp 2', nextUpdateMs: 2000 }),
    template,
    500,
  );
  assert.notEqual(refreshed.version, withStaple.version, 'a new staple is a new version');
});
