import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ErrorCode, KeyfleetError } from '@keyfleet/service-kit';
import { parseCertificateChain } from './certificate-chain.js';
import {
  createTestCa,
  issueCertificate,
  toPem,
  type KeyedCertificate,
  type TestCa,
} from '../testing/pkijs-test-ca.js';

let ca: TestCa;
let noOcsp: KeyedCertificate;
let impostorIssuer: KeyedCertificate;

before(async () => {
  ca = await createTestCa('http://ocsp.example.test:8080/path');
  impostorIssuer = await issueCertificate({ commonName: 'pkijs test issuer', issuer: ca.root, ca: true });
  noOcsp = await issueCertificate({
    commonName: 'no-ocsp.test',
    issuer: ca.issuer,
    dnsNames: ['no-ocsp.test'],
  });
});

describe('parseCertificateChain', () => {
  test('reads id, names, serial, expiry, DNS names and the OCSP URL', async () => {
    const chain = await parseCertificateChain(ca.leaf.pem() + ca.issuer.pem() + ca.root.pem());
    assert.equal(chain.id, createHash('sha256').update(ca.leaf.der).digest('hex'));
    assert.equal(chain.subject, 'CN=leaf.test');
    assert.equal(chain.issuer, 'CN=pkijs test issuer');
    assert.equal(
      chain.serialHex,
      Buffer.from(ca.leaf.certificate.serialNumber.valueBlock.valueHexView).toString('hex'),
    );
    assert.equal(chain.notAfterMs, ca.leaf.certificate.notAfter.value.getTime());
    assert.deepEqual(chain.dnsNames, ['leaf.test', 'www.leaf.test']);
    assert.equal(chain.ocspUrl, 'http://ocsp.example.test:8080/path');
    assert.deepEqual(Buffer.from(chain.issuerDer), Buffer.from(ca.issuer.der));
  });

  test('a certificate without an OCSP URL is fine and says so', async () => {
    const chain = await parseCertificateChain(noOcsp.pem() + ca.issuer.pem());
    assert.equal(chain.ocspUrl, '');
  });

  const leafBody = () => ca.leaf.pem().split('\n').slice(1, -2).join('\n');
  const hostile: Array<[string, () => string, RegExp]> = [
    ['empty input', () => '', /no PEM block/],
    ['no PEM at all', () => 'hello world', /no PEM block/],
    ['only the leaf', () => ca.leaf.pem(), /no issuer certificate/],
    [
      'garbage base64',
      () => '-----BEGIN CERTIFICATE-----\n!!!notbase64***\n-----END CERTIFICATE-----\n',
      /not valid base64/,
    ],
    [
      'base64 of length not a multiple of 4',
      () => '-----BEGIN CERTIFICATE-----\nAAAAA\n-----END CERTIFICATE-----\n',
      /not valid base64/,
    ],
    [
      'truncated DER',
      () => toPem(ca.leaf.der.subarray(0, ca.leaf.der.length - 40)) + ca.issuer.pem(),
      /leaf certificate is not one complete DER value/,
    ],
    [
      'DER with trailing bytes',
      () => toPem(Buffer.concat([ca.leaf.der, Buffer.from([0, 0])])) + ca.issuer.pem(),
      /leaf certificate/,
    ],
    [
      'an outer length that disagrees with the contents',
      () => toPem(ca.leaf.der.map((b, i) => (i === 3 ? b ^ 0x08 : b))) + ca.issuer.pem(),
      /leaf certificate is not one complete DER value/,
    ],
    [
      'a valid DER value that is not a certificate',
      () => toPem(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05])) + ca.issuer.pem(),
      /leaf certificate/,
    ],
    [
      'a private key first',
      () => toPem(new Uint8Array([0x30, 0x00]), 'PRIVATE KEY') + ca.issuer.pem(),
      /"PRIVATE KEY", expected CERTIFICATE/,
    ],
    [
      'a 10 MB input',
      () => `-----BEGIN CERTIFICATE-----\n${'A'.repeat(10 * 1024 * 1024)}\n-----END CERTIFICATE-----\n`,
      /larger than 65536/,
    ],
    ['issuer and leaf swapped', () => ca.issuer.pem() + ca.leaf.pem(), /issuer name/],
    ['a leaf not issued by the given issuer', () => ca.leaf.pem() + ca.unrelated.pem(), /issuer name/],
    [
      'a leaf whose issuer name matches but whose key does not',
      () => ca.leaf.pem() + impostorIssuer.pem(),
      /does not verify with the issuer's key/,
    ],
    [
      'mismatched BEGIN/END labels',
      () => `-----BEGIN CERTIFICATE-----\n${leafBody()}\n-----END X-----\n`,
      /no PEM block/,
    ],
  ];
  for (const [name, input, message] of hostile) {
    test(`rejects ${name} with INVALID_ARGUMENT`, async () => {
      await assert.rejects(parseCertificateChain(input()), (error: unknown) => {
        assert.ok(error instanceof KeyfleetError);
        assert.equal(error.code, ErrorCode.InvalidArgument);
        assert.match(error.message, /^chain_pem: /);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
