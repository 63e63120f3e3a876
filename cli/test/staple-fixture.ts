import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { OcspCertStatus, StapleStatus, type CertificateRecord } from '@keyfleet/proto';
import type { IssuedCertificate, TestPki } from '@keyfleet/test-support';
import { certificateIdOfPem } from '../src/sync/staple-files.js';

/**
 * A real OCSP response for `leaf`, fetched from the test PKI's `openssl ocsp`
 * responder, wrapped in the CertificateRecord the staple service would stream.
 */
export function fetchStapleRecord(
  pki: TestPki,
  leaf: IssuedCertificate,
  nextUpdateMs: number,
): CertificateRecord {
  const out = path.join(pki.dir, `${leaf.name}.ocsp.der`);
  execFileSync(
    'openssl',
    [
      'ocsp',
      '-issuer',
      pki.intermediate.certPath,
      '-cert',
      leaf.certPath,
      '-url',
      pki.ocspUrl,
      '-respout',
      out,
      '-noverify',
      '-timeout',
      '10',
    ],
    { stdio: 'ignore' },
  );
  const der = readFileSync(out);
  const nowMs = Date.now();
  return {
    id: certificateIdOfPem(leaf.certPem()),
    subject: `CN=${leaf.name}`,
    issuer: 'CN=keyfleet test intermediate',
    serialHex: '',
    notAfterMs: nowMs + 30 * 86_400_000,
    dnsNames: ['localhost'],
    ocspUrl: pki.ocspUrl,
    status: StapleStatus.GOOD,
    staple: {
      der,
      certStatus: OcspCertStatus.GOOD,
      thisUpdateMs: nowMs,
      nextUpdateMs,
      producedAtMs: nowMs,
      revokedAtMs: 0,
      fetchedAtMs: nowMs,
      responderUrl: pki.ocspUrl,
    },
    fetch: undefined,
    registeredAtMs: nowMs,
  };
}
