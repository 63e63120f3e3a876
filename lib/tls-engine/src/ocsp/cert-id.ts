import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

/** The CertID hash algorithms a response may use (RFC 6960 4.1.1; RFC 5019 requires SHA-1). */
export type CertIdHashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const oidByHash: Readonly<Record<CertIdHashName, string>> = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
};
const hashByOid: ReadonlyMap<string, CertIdHashName> = new Map(
  Object.entries(oidByHash).map(([hash, oid]) => [oid, hash as CertIdHashName]),
);

/** The hash a CertID names, or undefined when it is none we compute. */
export function certIdHashOf(certId: pkijs.CertID): CertIdHashName | undefined {
  return hashByOid.get(certId.hashAlgorithm.algorithmId);
}

/**
 * The CertID (RFC 6960 4.1.1) of `leaf` under `issuer` with `hash`: the hash
 * of the issuer's DER subject, the hash of its subjectPublicKey bits, and the
 * leaf's serial. Synchronous (node's hashes), so a matcher can build one per
 * hash algorithm a response happens to use. Throws on unencodable input.
 */
export function certIdFor(
  leaf: pkijs.Certificate,
  issuer: pkijs.Certificate,
  hash: CertIdHashName,
): pkijs.CertID {
  const digest = (bytes: ArrayBuffer | Uint8Array) =>
    createHash(hash)
      .update(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes)
      .digest();
  return new pkijs.CertID({
    hashAlgorithm: new pkijs.AlgorithmIdentifier({
      algorithmId: oidByHash[hash],
      algorithmParams: new asn1js.Null(),
    }),
    issuerNameHash: new asn1js.OctetString({ valueHex: digest(issuer.subject.toSchema().toBER(false)) }),
    issuerKeyHash: new asn1js.OctetString({
      valueHex: digest(issuer.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView),
    }),
    serialNumber: leaf.serialNumber,
  });
}
