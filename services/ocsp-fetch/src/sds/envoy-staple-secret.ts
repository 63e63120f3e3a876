/**
 * A registered certificate as Envoy's `tls_certificate` secret: the chain
 * (leaf then issuer, PEM, inline), the private key as a file on the Envoy's
 * own disk (keyfleet never holds private keys: the path is a template with
 * `{certificate}` replaced by the certificate id), and the current OCSP
 * staple inline while it is valid. Envoy fails a context whose staple does
 * not match its certificate, so the staple only ever travels with the chain
 * it was fetched for.
 */
import { createHash } from 'node:crypto';
import type { EnvoySecret } from '@keyfleet/service-kit';
import type { StoredCertificate } from '../store/stored-certificate.js';

/** SDS resource names for staples: `staple/<certificate id>` (64 lower-case hex). */
export const stapleResourcePrefix = 'staple/';
const resourcePattern = /^staple\/([0-9a-f]{64})$/;

/** The certificate id a resource name names, or undefined when it is not a staple resource. */
export function certificateIdOfResource(name: string): string | undefined {
  return resourcePattern.exec(name)?.[1];
}

/** The placeholder the private-key path template must hold. */
export const certificatePlaceholder = '{certificate}';

export interface EnvoyStapleSecret {
  readonly secret: EnvoySecret;
  /** Changes whenever the bytes do: digests of the chain and of the staple sent (or "none"). */
  readonly version: string;
  /** When the staple sent stops being valid: it is withdrawn then. */
  readonly nextChangeAtMs: number | undefined;
}

function pem(der: Uint8Array): string {
  const base64 = Buffer.from(der).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 16);

/**
 * The secret for one certificate at `nowMs`. The staple is sent while
 * thisUpdate ≤ now < nextUpdate (a staple outside its window is one Envoy
 * would serve and clients reject); without one Envoy serves the certificate
 * unstapled under LENIENT_STAPLING.
 */
export function envoyStapleSecret(
  resourceName: string,
  certificate: StoredCertificate,
  privateKeyPathTemplate: string,
  nowMs: number,
): EnvoyStapleSecret {
  const { chain, staple } = certificate;
  const chainPem = Buffer.from(pem(chain.leafDer) + pem(chain.issuerDer));
  const current = staple && staple.nextUpdateMs > nowMs ? staple : undefined;
  return {
    secret: {
      name: resourceName,
      tls_certificate: {
        certificate_chain: { inline_bytes: chainPem },
        private_key: { filename: privateKeyPathTemplate.replaceAll(certificatePlaceholder, chain.id) },
        ...(current ? { ocsp_staple: { inline_bytes: Buffer.from(current.der) } } : {}),
      },
    },
    version: `${digest(chainPem)}-${current ? digest(current.der) : 'none'}`,
    nextChangeAtMs: current?.nextUpdateMs,
  };
}
