import { createHash } from 'node:crypto';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { invalidArgument } from '@keyfleet/service-kit';
import { ensurePkiEngine, parseDerStrict } from '@keyfleet/tls-engine';
import { formatDistinguishedName } from './distinguished-name.js';
import { parsePemBlocks } from './pem.js';

/** The most a RegisterCertificate chain may hold (staples.proto). */
export const maxChainPemBytes = 65_536;

const oidAuthorityInfoAccess = '1.3.6.1.5.5.7.1.1';
const oidAccessOcsp = '1.3.6.1.5.5.7.48.1';
const oidSubjectAltName = '2.5.29.17';
const generalNameUri = 6;
const generalNameDns = 2;

/** What the registry keeps about a leaf and its issuer, read once from the chain. */
export interface ParsedChain {
  /** Lower-case hex SHA-256 of the leaf DER. */
  readonly id: string;
  readonly leafDer: Uint8Array;
  readonly issuerDer: Uint8Array;
  readonly subject: string;
  readonly issuer: string;
  readonly serialHex: string;
  readonly notAfterMs: number;
  readonly dnsNames: readonly string[];
  /** The first http(s) OCSP URL of the AIA extension, '' when there is none. */
  readonly ocspUrl: string;
}

/**
 * Parses exactly one DER certificate, rejecting trailing bytes: a lenient
 * parse of a truncated or padded input could otherwise yield a certificate
 * whose fingerprint is not that of the bytes we were given.
 */
export function parseCertificateDer(der: Uint8Array): pkijs.Certificate {
  const parsed = parseDerStrict(der);
  if (!parsed) throw new Error('is not one complete DER value');
  return new pkijs.Certificate({ schema: parsed });
}

/** Lower-case hex of an INTEGER's content without the sign-padding zero byte. */
export function integerHex(value: asn1js.Integer): string {
  const hex = Buffer.from(value.valueBlock.valueHexView).toString('hex');
  return hex.length > 2 && hex.startsWith('00') ? hex.slice(2) : hex;
}

export function ocspUrlOf(certificate: pkijs.Certificate): string {
  const extension = certificate.extensions?.find((e) => e.extnID === oidAuthorityInfoAccess);
  const access = extension?.parsedValue as pkijs.InfoAccess | undefined;
  for (const description of access?.accessDescriptions ?? []) {
    const location = description.accessLocation;
    if (
      description.accessMethod === oidAccessOcsp &&
      location.type === generalNameUri &&
      typeof location.value === 'string' &&
      /^https?:\/\/[^\s]+$/i.test(location.value)
    ) {
      return location.value;
    }
  }
  return '';
}

export function dnsNamesOf(certificate: pkijs.Certificate): string[] {
  const extension = certificate.extensions?.find((e) => e.extnID === oidSubjectAltName);
  const altName = extension?.parsedValue as pkijs.AltName | undefined;
  return (altName?.altNames ?? [])
    .filter((name) => name.type === generalNameDns && typeof name.value === 'string')
    .map((name) => String(name.value).toLowerCase());
}

/**
 * Reads a RegisterCertificate chain: the leaf first, then its issuer (more
 * certificates are ignored). Everything wrong with it — too large, no PEM,
 * bad base64, a block that is not a certificate, truncated DER, a leaf the
 * issuer did not sign — is an INVALID_ARGUMENT naming the problem, thrown
 * before anything is stored.
 */
export async function parseCertificateChain(chainPem: string): Promise<ParsedChain> {
  ensurePkiEngine();
  if (Buffer.byteLength(chainPem, 'utf8') > maxChainPemBytes) {
    throw invalidArgument('chain_pem', `is larger than ${maxChainPemBytes} bytes`);
  }
  let blocks;
  try {
    blocks = parsePemBlocks(chainPem);
  } catch (error) {
    throw invalidArgument('chain_pem', (error as Error).message);
  }
  if (blocks.length === 0) throw invalidArgument('chain_pem', 'holds no PEM block');
  const [leafBlock, issuerBlock] = blocks;
  const certificates: pkijs.Certificate[] = [];
  for (const [index, block] of [leafBlock, issuerBlock].entries()) {
    const role = index === 0 ? 'leaf' : 'issuer';
    if (!block) throw invalidArgument('chain_pem', `has no ${role} certificate (leaf first, then issuer)`);
    if (block.label !== 'CERTIFICATE') {
      throw invalidArgument('chain_pem', `block ${index + 1} is "${block.label}", expected CERTIFICATE`);
    }
    try {
      certificates.push(parseCertificateDer(block.der));
    } catch (error) {
      throw invalidArgument(
        'chain_pem',
        `the ${role} certificate ${(error as Error).message || 'is not a certificate'}`,
      );
    }
  }
  const [leaf, issuer] = certificates as [pkijs.Certificate, pkijs.Certificate];
  if (!leaf.issuer.isEqual(issuer.subject)) {
    throw invalidArgument('chain_pem', "the leaf's issuer name is not the second certificate's subject");
  }
  let signedByIssuer = false;
  try {
    signedByIssuer = await leaf.verify(issuer);
  } catch {
    signedByIssuer = false;
  }
  if (!signedByIssuer) {
    throw invalidArgument('chain_pem', "the leaf's signature does not verify with the issuer's key");
  }
  const leafDer = leafBlock!.der;
  return {
    id: createHash('sha256').update(leafDer).digest('hex'),
    leafDer,
    issuerDer: issuerBlock!.der,
    subject: formatDistinguishedName(leaf.subject),
    issuer: formatDistinguishedName(leaf.issuer),
    serialHex: integerHex(leaf.serialNumber),
    notAfterMs: leaf.notAfter.value.getTime(),
    dnsNames: dnsNamesOf(leaf),
    ocspUrl: ocspUrlOf(leaf),
  };
}
