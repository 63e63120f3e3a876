import { X509Certificate } from 'node:crypto';
import * as pkijs from 'pkijs';

/** One identity a client could present: its key and its chain, leaf first. */
export interface ClientCertificateCandidate {
  /** PEM private key of the leaf. */
  key: string | Buffer;
  /** PEM: the leaf, then the intermediates up to (not necessarily including) the root. */
  chainPem: string;
  /** For logs; defaults to the leaf's subject. */
  label?: string;
}

export interface SelectedClientCertificate {
  readonly candidate: ClientCertificateCandidate;
  readonly label: string;
  /** The acceptable CA name the chain leads to. */
  readonly matchedIssuer: string;
  /** What to pass to tls.connect: the key and the WHOLE chain, so the server can build the path. */
  readonly connectOptions: { key: string | Buffer; cert: string };
}

function splitPem(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

function nameDer(name: pkijs.RelativeDistinguishedNames): Buffer {
  return Buffer.from(name.toSchema().toBER(false));
}

/**
 * DER distinguished names of CA certificates, as a CertificateRequest lists
 * them (certificate_authorities): from the PEM bundle the server trusts for
 * client certificates. Node gives a client no view of the CertificateRequest,
 * so the acceptable names come from configuration like this.
 */
export function acceptableIssuersFromPem(caPem: string): Buffer[] {
  return splitPem(caPem).map((cert) => nameDer(pkijs.Certificate.fromBER(cert.raw).subject));
}

/**
 * Picks the first candidate whose chain leads to an issuer the server
 * accepts: some certificate in the chain is issued by (or is) an acceptable
 * CA. An empty acceptable list means "any" (TLS 1.2 §7.4.4), so the first
 * candidate is taken. Returns undefined when none fits: sending a certificate
 * the server cannot chain only turns "no certificate" into "bad certificate".
 * The whole chain is sent (OpenSSL's client_cert_cb can only return the leaf:
 * the limit its manual lists under BUGS).
 */
export function selectClientCertificate(
  candidates: readonly ClientCertificateCandidate[],
  acceptableIssuers: readonly Uint8Array[],
): SelectedClientCertificate | undefined {
  const acceptable = acceptableIssuers.map((name) => Buffer.from(name));
  for (const candidate of candidates) {
    const chain = splitPem(candidate.chainPem);
    const leaf = chain[0];
    if (!leaf) continue;
    const label = candidate.label ?? leaf.subject.replace(/\n/g, ', ');
    const select = (matchedIssuer: string): SelectedClientCertificate => ({
      candidate,
      label,
      matchedIssuer,
      connectOptions: { key: candidate.key, cert: chain.map((cert) => cert.toString()).join('') },
    });
    if (acceptable.length === 0) return select('(any)');
    for (const cert of chain) {
      const parsed = pkijs.Certificate.fromBER(cert.raw);
      // Every certificate's issuer counts; an intermediate's own name counts
      // too (the server may list the intermediate itself), the leaf's does not.
      const names: [Buffer, string][] = [[nameDer(parsed.issuer), cert.issuer]];
      if (cert !== leaf) names.push([nameDer(parsed.subject), cert.subject]);
      for (const [name, text] of names) {
        if (acceptable.some((der) => der.equals(name))) return select(text.replace(/\n/g, ', '));
      }
    }
  }
  return undefined;
}
