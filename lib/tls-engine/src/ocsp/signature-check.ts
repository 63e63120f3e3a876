import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type * as asn1js from 'asn1js';
import type * as pkijs from 'pkijs';
import { ensurePkiEngine } from './crypto-engine.js';

/**
 * Checks a signature over `data` by `signer`'s key. The algorithms responders
 * use (ECDSA and RSA PKCS #1 v1.5 with SHA-1/256/384/512, Ed25519) go to
 * node's crypto.verify with a key object imported once per public key: the
 * responder's key is the same in every response for weeks, and importing it
 * through WebCrypto on every fetch was the largest single cost of a refresh.
 * Any other algorithm (RSA-PSS with its parameters, …) goes through pkijs's
 * WebCrypto engine as before. A throw (mangled parameters, a key that does not
 * import) is a failed check.
 */
export async function signatureOver(
  data: Uint8Array,
  signature: asn1js.BitString,
  signer: pkijs.Certificate,
  algorithm: pkijs.AlgorithmIdentifier,
): Promise<boolean> {
  try {
    const fast = nodeAlgorithms[algorithm.algorithmId];
    if (fast) {
      const key = publicKeyOf(signer);
      if (fast.keyType !== key.asymmetricKeyType) return false;
      const sig = signature.valueBlock.valueHexView;
      return fast.keyType === 'ec'
        ? verify(fast.hash, data, { key, dsaEncoding: 'der' }, sig)
        : verify(fast.hash, data, key, sig);
    }
    return await ensurePkiEngine().verifyWithPublicKey(
      data,
      signature,
      signer.subjectPublicKeyInfo,
      algorithm,
    );
  } catch {
    return false;
  }
}

/** Signature algorithm OID → the hash node verifies with and the key type it needs. */
const nodeAlgorithms: Record<string, { hash: string | null; keyType: string }> = {
  '1.2.840.10045.4.1': { hash: 'sha1', keyType: 'ec' },
  '1.2.840.10045.4.3.2': { hash: 'sha256', keyType: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', keyType: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', keyType: 'ec' },
  '1.2.840.113549.1.1.5': { hash: 'sha1', keyType: 'rsa' },
  '1.2.840.113549.1.1.11': { hash: 'sha256', keyType: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', keyType: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', keyType: 'rsa' },
  '1.3.101.112': { hash: null, keyType: 'ed25519' },
};

/** Imported keys by their SubjectPublicKeyInfo DER; a handful of responders and issuers in practice. */
const importedKeys = new Map<string, KeyObject>();
const importedKeysLimit = 256;

function publicKeyOf(certificate: pkijs.Certificate): KeyObject {
  const spki = Buffer.from(certificate.subjectPublicKeyInfo.toSchema().toBER(false));
  const id = spki.toString('base64');
  let key = importedKeys.get(id);
  if (!key) {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    if (importedKeys.size >= importedKeysLimit) importedKeys.delete(importedKeys.keys().next().value!);
    importedKeys.set(id, key);
  }
  return key;
}
