/**
 * Test-only: a PKI made in process with pkijs and node's WebCrypto, for spec
 * tests (which may not spawn openssl) and for the benchmark (which needs
 * thousands of certificates quickly). The integration tests use the real
 * `openssl` PKI from @keyfleet/test-support instead.
 */
import { createHash, webcrypto } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { ensurePkiEngine } from '../ocsp/crypto-engine.js';

export interface KeyedCertificate {
  readonly certificate: pkijs.Certificate;
  readonly der: Uint8Array;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  pem(): string;
}

export interface IssueOptions {
  readonly commonName: string;
  /** Signs the new certificate; self-signed when absent. */
  readonly issuer?: KeyedCertificate;
  /** Reuse a key pair (fast bulk issuance). */
  readonly keyPair?: CryptoKeyPair;
  readonly serial?: number;
  readonly notBeforeMs?: number;
  readonly notAfterMs?: number;
  readonly ca?: boolean;
  readonly ocspUrl?: string;
  readonly dnsNames?: readonly string[];
  readonly ocspSigning?: boolean;
}

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256' } as const;

export function toPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const lines =
    Buffer.from(der)
      .toString('base64')
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']);
}

function extension(
  extnID: string,
  critical: boolean,
  value: { toSchema(): asn1js.AsnType },
): pkijs.Extension {
  return new pkijs.Extension({
    extnID,
    critical,
    extnValue: value.toSchema().toBER(false),
    parsedValue: value,
  });
}

let nextSerial = 0x1000;

export async function issueCertificate(options: IssueOptions): Promise<KeyedCertificate> {
  ensurePkiEngine();
  const keys = options.keyPair ?? (await generateKeyPair());
  const certificate = new pkijs.Certificate();
  certificate.version = 2;
  certificate.serialNumber = new asn1js.Integer({ value: options.serial ?? nextSerial++ });
  certificate.subject.typesAndValues.push(
    new pkijs.AttributeTypeAndValue({
      type: '2.5.4.3',
      value: new asn1js.Utf8String({ value: options.commonName }),
    }),
  );
  certificate.issuer = options.issuer ? options.issuer.certificate.subject : certificate.subject;
  const now = Date.now();
  certificate.notBefore.value = new Date(options.notBeforeMs ?? now - 3_600_000);
  certificate.notAfter.value = new Date(options.notAfterMs ?? now + 30 * 86_400_000);
  await certificate.subjectPublicKeyInfo.importKey(keys.publicKey);
  const extensions: pkijs.Extension[] = [
    extension('2.5.29.19', true, new pkijs.BasicConstraints({ cA: options.ca ?? false })),
  ];
  if (options.ocspSigning) {
    extensions.push(
      extension('2.5.29.37', false, new pkijs.ExtKeyUsage({ keyPurposes: ['1.3.6.1.5.5.7.3.9'] })),
    );
  }
  if (options.dnsNames?.length) {
    extensions.push(
      extension(
        '2.5.29.17',
        false,
        new pkijs.AltName({
          altNames: options.dnsNames.map((value) => new pkijs.GeneralName({ type: 2, value })),
        }),
      ),
    );
  }
  if (options.ocspUrl) {
    extensions.push(
      extension(
        '1.3.6.1.5.5.7.1.1',
        false,
        new pkijs.InfoAccess({
          accessDescriptions: [
            new pkijs.AccessDescription({
              accessMethod: '1.3.6.1.5.5.7.48.1',
              accessLocation: new pkijs.GeneralName({ type: 6, value: options.ocspUrl }),
            }),
          ],
        }),
      ),
    );
  }
  certificate.extensions = extensions;
  await certificate.sign(options.issuer?.privateKey ?? keys.privateKey, 'SHA-256');
  const der = new Uint8Array(certificate.toSchema(true).toBER(false));
  return {
    certificate: pkijs.Certificate.fromBER(der),
    der,
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
    pem: () => toPem(der),
  };
}

export interface ResponseOptions {
  readonly certId: pkijs.CertID;
  readonly signer: KeyedCertificate;
  /** Sign with this key instead of the signer's (a forged signature). */
  readonly signingKey?: CryptoKey;
  /** Certificates carried in the response (a delegated responder's). */
  readonly certs?: readonly KeyedCertificate[];
  readonly responderIdByKey?: boolean;
  readonly status?: 'good' | 'revoked' | 'unknown';
  readonly revokedAtMs?: number;
  readonly thisUpdateMs: number;
  /** Absent: no nextUpdate at all. */
  readonly nextUpdateMs?: number;
  readonly producedAtMs?: number;
  /** More SingleResponses after ours (for other or duplicate CertIDs). */
  readonly extraCertIds?: readonly pkijs.CertID[];
}

function certStatusBlock(status: 'good' | 'revoked' | 'unknown', revokedAtMs: number): asn1js.AsnType {
  if (status === 'revoked') {
    return new asn1js.Constructed({
      idBlock: { tagClass: 3, tagNumber: 1 },
      value: [new asn1js.GeneralizedTime({ valueDate: new Date(revokedAtMs) })],
    });
  }
  return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: status === 'good' ? 0 : 2 } });
}

/** A successful OCSPResponse (DER) with a signed basic response. */
export async function buildOcspResponse(options: ResponseOptions): Promise<Uint8Array> {
  ensurePkiEngine();
  const basic = new pkijs.BasicOCSPResponse();
  const signerCertificate = options.signer.certificate;
  basic.tbsResponseData.responderID = options.responderIdByKey
    ? new asn1js.OctetString({
        valueHex: createHash('sha1')
          .update(signerCertificate.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView)
          .digest(),
      })
    : signerCertificate.subject;
  basic.tbsResponseData.producedAt = new Date(options.producedAtMs ?? options.thisUpdateMs);
  const single = (certID: pkijs.CertID) =>
    new pkijs.SingleResponse({
      certID,
      certStatus: certStatusBlock(options.status ?? 'good', options.revokedAtMs ?? options.thisUpdateMs),
      thisUpdate: new Date(options.thisUpdateMs),
      ...(options.nextUpdateMs === undefined ? {} : { nextUpdate: new Date(options.nextUpdateMs) }),
    });
  basic.tbsResponseData.responses = [options.certId, ...(options.extraCertIds ?? [])].map(single);
  if (options.certs?.length) basic.certs = options.certs.map((c) => c.certificate);
  await basic.sign(options.signingKey ?? options.signer.privateKey, 'SHA-256');
  return wrapBasicResponse(new Uint8Array(basic.toSchema().toBER(false)));
}

export function wrapBasicResponse(basicDer: Uint8Array, responseType = '1.3.6.1.5.5.7.48.1.1'): Uint8Array {
  const response = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: 0 }),
    responseBytes: new pkijs.ResponseBytes({
      responseType,
      response: new asn1js.OctetString({ valueHex: basicDer }),
    }),
  });
  return new Uint8Array(response.toSchema().toBER(false));
}

/** An OCSPResponse with only a responseStatus (tryLater = 3, unauthorized = 6, ...). */
export function ocspStatusOnlyResponse(responseStatus: number): Uint8Array {
  return new Uint8Array(
    new asn1js.Sequence({ value: [new asn1js.Enumerated({ value: responseStatus })] }).toBER(false),
  );
}

/** Root → issuing CA → leaf, plus a delegated responder, one without OCSPSigning, and an unrelated signer. */
export interface TestCa {
  readonly root: KeyedCertificate;
  readonly issuer: KeyedCertificate;
  readonly leaf: KeyedCertificate;
  readonly responder: KeyedCertificate;
  readonly responderWithoutOcspSigning: KeyedCertificate;
  readonly unrelated: KeyedCertificate;
}

export async function createTestCa(ocspUrl = 'http://127.0.0.1:9/ocsp'): Promise<TestCa> {
  const root = await issueCertificate({ commonName: 'pkijs test root', ca: true });
  const issuer = await issueCertificate({ commonName: 'pkijs test issuer', issuer: root, ca: true });
  return {
    root,
    issuer,
    leaf: await issueCertificate({
      commonName: 'leaf.test',
      issuer,
      dnsNames: ['leaf.test', 'WWW.Leaf.Test'],
      ocspUrl,
    }),
    responder: await issueCertificate({ commonName: 'pkijs test responder', issuer, ocspSigning: true }),
    responderWithoutOcspSigning: await issueCertificate({
      commonName: 'pkijs responder without eku',
      issuer,
    }),
    unrelated: await issueCertificate({ commonName: 'pkijs unrelated signer', ca: true }),
  };
}
