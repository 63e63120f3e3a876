import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { requireCommand } from './system-commands.js';
import { makeTempDir } from './temp-dir.js';

/** Paths of one certificate and its key, as PEM files. */
export interface IssuedCertificate {
  readonly name: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** Leaf PEM followed by the intermediate's: what a server presents. */
  readonly chainPath: string;
  certPem(): string;
  keyPem(): string;
  chainPem(): string;
}

export interface LeafOptions {
  /** DNS names for subjectAltName (the first is also the CN). Default ['localhost']. */
  dnsNames?: string[];
  /** Put the AIA OCSP URL in the certificate. Default true. */
  ocspUrl?: boolean;
  /** The TLS feature extension asking for a staple (RFC 7633). Default false. */
  mustStaple?: boolean;
  /** Days of validity. Default 30. */
  days?: number;
}

export interface ClientOptions {
  /** subjectAltName URIs, e.g. SPIFFE IDs. */
  uris?: string[];
  /** subjectAltName DNS names. */
  dnsNames?: string[];
}

/**
 * A throwaway PKI made with the openssl CLI: a root, an intermediate that runs
 * an `openssl ca` database (so `revoke` works and `openssl ocsp -index` can
 * answer), a leaf whose AIA OCSP URL points at 127.0.0.1:`ocspPort`, a
 * delegated OCSP responder with id-kp-OCSPSigning, a responder certificate
 * without it, and an unrelated self-signed signer.
 */
export interface TestPki {
  readonly dir: string;
  readonly ocspPort: number;
  readonly ocspUrl: string;
  readonly root: IssuedCertificate;
  readonly intermediate: IssuedCertificate;
  readonly leaf: IssuedCertificate;
  readonly responder: IssuedCertificate;
  readonly responderWithoutOcspSigning: IssuedCertificate;
  readonly unrelated: IssuedCertificate;
  readonly indexPath: string;
  issueLeaf(name: string, options?: LeafOptions): IssuedCertificate;
  /** A certificate for mTLS clients, with CN = `name` and clientAuth (and subjectAltNames when given). */
  issueClient(name: string, options?: ClientOptions): IssuedCertificate;
  /** Marks `cert` revoked in the intermediate's database (`openssl ca -revoke`). */
  revoke(cert: IssuedCertificate): void;
  /** True when this PKI was found in `dir` and used again (see TestPkiOptions.reuse). */
  readonly reused: boolean;
  remove(): void;
}

export interface TestPkiOptions {
  /**
   * Make the PKI in this directory (created; anything in it is replaced)
   * instead of a temporary one. `remove()` deletes it.
   */
  dir?: string;
  /**
   * With `dir`: use the PKI already there when it was made for the same
   * `ocspPort`, nothing in it was revoked, and its leaf is valid for at least
   * another day; otherwise make a new one in its place. What `npm start`
   * uses, so its CA and leaf stay the same from one start to the next.
   */
  reuse?: boolean;
}

const pkiFiles = ['root', 'intermediate', 'leaf', 'responder', 'responder-no-eku', 'unrelated'];

function reusable(dir: string, ocspPort: number): boolean {
  const marker = path.join(dir, 'pki.json');
  if (!existsSync(marker)) return false;
  try {
    const made = JSON.parse(readFileSync(marker, 'utf8')) as { ocspPort?: number };
    if (made.ocspPort !== ocspPort) return false;
    if (!pkiFiles.every((name) => existsSync(path.join(dir, `${name}.pem`)))) return false;
    if (!pkiFiles.every((name) => existsSync(path.join(dir, `${name}.key`)))) return false;
    // index.txt: one line per certificate `openssl ca` signed, "R" first when revoked.
    if (/^R/m.test(readFileSync(path.join(dir, 'index.txt'), 'utf8'))) return false;
    openssl(['x509', '-checkend', '86400', '-noout', '-in', path.join(dir, 'leaf.pem')], dir);
    return true;
  } catch {
    return false; // unreadable, or the leaf expires within a day (-checkend exits 1)
  }
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function caConfig(dir: string, ocspPort: number): string {
  return `
[ ca ]
default_ca = intermediate_ca

[ intermediate_ca ]
dir               = ${dir}
database          = ${dir}/index.txt
new_certs_dir     = ${dir}/newcerts
serial            = ${dir}/serial
certificate       = ${dir}/intermediate.pem
private_key       = ${dir}/intermediate.key
default_md        = sha256
default_days      = 30
policy            = policy_any
unique_subject    = no
copy_extensions   = none
email_in_dn       = no

[ policy_any ]
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = placeholder

[ root_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ intermediate_ext ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ responder_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = OCSPSigning
authorityKeyIdentifier = keyid

[ responder_no_eku_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
authorityKeyIdentifier = keyid

[ client_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid

[ ocsp_aia ]
authorityInfoAccess = OCSP;URI:http://127.0.0.1:${ocspPort}
`;
}

function leafSection(name: string, options: Required<LeafOptions>, ocspPort: number): string {
  const sans = options.dnsNames.map((dns) => `DNS:${dns}`).join(', ');
  return `
[ leaf_${name}_ext ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${sans}, IP:127.0.0.1
authorityKeyIdentifier = keyid
${options.ocspUrl ? `authorityInfoAccess = OCSP;URI:http://127.0.0.1:${ocspPort}` : ''}
${options.mustStaple ? 'tlsfeature = status_request' : ''}
`;
}

export function createTestPki(ocspPort: number, options: TestPkiOptions = {}): TestPki {
  requireCommand('openssl');
  let dir: string;
  let remove: () => void;
  let reused = false;
  if (options.dir) {
    const given = path.resolve(options.dir);
    dir = given;
    remove = () => rmSync(given, { recursive: true, force: true });
    reused = options.reuse === true && reusable(dir, ocspPort);
    if (!reused) rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  } else {
    const temp = makeTempDir('pki');
    dir = temp.path;
    remove = () => temp.remove();
  }
  const configPath = path.join(dir, 'openssl.cnf');
  if (!reused) {
    mkdirSync(path.join(dir, 'newcerts'));
    writeFileSync(path.join(dir, 'index.txt'), '');
    writeFileSync(path.join(dir, 'serial'), '1000\n');
    writeFileSync(configPath, caConfig(dir, ocspPort));
  }

  const record = (name: string, chainWithIntermediate: boolean): IssuedCertificate => {
    const certPath = path.join(dir, `${name}.pem`);
    const keyPath = path.join(dir, `${name}.key`);
    const chainPath = path.join(dir, `${name}.chain.pem`);
    const chain = chainWithIntermediate
      ? readFileSync(certPath, 'utf8') + readFileSync(path.join(dir, 'intermediate.pem'), 'utf8')
      : readFileSync(certPath, 'utf8');
    writeFileSync(chainPath, chain);
    return {
      name,
      certPath,
      keyPath,
      chainPath,
      certPem: () => readFileSync(certPath, 'utf8'),
      keyPem: () => readFileSync(keyPath, 'utf8'),
      chainPem: () => readFileSync(chainPath, 'utf8'),
    };
  };
  const newKey = (name: string) =>
    openssl(
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`],
      dir,
    );

  // Certificates signed through `openssl ca` land in index.txt, which is what
  // `openssl ocsp -index` answers from and `openssl ca -revoke` changes.
  const signWithCa = (name: string, subject: string, extensionsArgs: string[], days: number) => {
    newKey(name);
    openssl(
      ['req', '-new', '-key', `${name}.key`, '-subj', subject, '-config', configPath, '-out', `${name}.csr`],
      dir,
    );
    openssl(
      [
        'ca',
        '-batch',
        '-notext',
        '-config',
        configPath,
        '-days',
        String(days),
        ...extensionsArgs,
        '-in',
        `${name}.csr`,
        '-out',
        `${name}.pem`,
      ],
      dir,
    );
    return record(name, true);
  };

  const issueLeaf = (name: string, leafOptions: LeafOptions = {}): IssuedCertificate => {
    const resolved: Required<LeafOptions> = {
      dnsNames: leafOptions.dnsNames ?? ['localhost'],
      ocspUrl: leafOptions.ocspUrl ?? true,
      mustStaple: leafOptions.mustStaple ?? false,
      days: leafOptions.days ?? 30,
    };
    const extPath = path.join(dir, `${name}.ext.cnf`);
    writeFileSync(extPath, leafSection(name, resolved, ocspPort));
    return signWithCa(
      name,
      `/CN=${resolved.dnsNames[0]}`,
      ['-extfile', extPath, '-extensions', `leaf_${name}_ext`],
      resolved.days,
    );
  };

  if (!reused) generate();
  const root = record('root', false);
  const intermediate = record('intermediate', false);
  const leaf = record('leaf', true);
  const responder = record('responder', true);
  const responderWithoutOcspSigning = record('responder-no-eku', true);
  const unrelated = record('unrelated', false);
  if (!reused) writeFileSync(path.join(dir, 'pki.json'), `${JSON.stringify({ ocspPort })}\n`);

  function generate() {
    newKey('root');
    openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'root.key',
        '-subj',
        '/CN=keyfleet test root',
        '-days',
        '3650',
        '-config',
        configPath,
        '-extensions',
        'root_ext',
        '-out',
        'root.pem',
      ],
      dir,
    );

    newKey('intermediate');
    openssl(
      [
        'req',
        '-new',
        '-key',
        'intermediate.key',
        '-subj',
        '/CN=keyfleet test intermediate',
        '-config',
        configPath,
        '-out',
        'intermediate.csr',
      ],
      dir,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        'intermediate.csr',
        '-CA',
        'root.pem',
        '-CAkey',
        'root.key',
        '-CAcreateserial',
        '-days',
        '3650',
        '-extfile',
        configPath,
        '-extensions',
        'intermediate_ext',
        '-out',
        'intermediate.pem',
      ],
      dir,
    );

    issueLeaf('leaf', { dnsNames: ['localhost', 'keyfleet.test'] });
    signWithCa('responder', '/CN=keyfleet test ocsp responder', ['-extensions', 'responder_ext'], 30);
    signWithCa(
      'responder-no-eku',
      '/CN=keyfleet test responder without eku',
      ['-extensions', 'responder_no_eku_ext'],
      30,
    );

    newKey('unrelated');
    openssl(
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'unrelated.key',
        '-subj',
        '/CN=unrelated signer',
        '-days',
        '30',
        '-config',
        configPath,
        '-out',
        'unrelated.pem',
      ],
      dir,
    );
  }

  return {
    dir,
    ocspPort,
    ocspUrl: `http://127.0.0.1:${ocspPort}`,
    root,
    intermediate,
    leaf,
    responder,
    responderWithoutOcspSigning,
    unrelated,
    indexPath: path.join(dir, 'index.txt'),
    issueLeaf,
    issueClient: (name, options = {}) => {
      const sans = [
        ...(options.uris ?? []).map((uri) => `URI:${uri}`),
        ...(options.dnsNames ?? []).map((dns) => `DNS:${dns}`),
      ];
      if (sans.length === 0) {
        return signWithCa(`client-${name}`, `/CN=${name}`, ['-extensions', 'client_ext'], 30);
      }
      const section = `client_${name.replace(/[^A-Za-z0-9]/g, '_')}_ext`;
      const extPath = path.join(dir, `client-${name}.ext.cnf`);
      writeFileSync(
        extPath,
        `[ ${section} ]\nbasicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature\n` +
          `extendedKeyUsage = clientAuth\nsubjectAltName = ${sans.join(', ')}\nauthorityKeyIdentifier = keyid\n`,
      );
      return signWithCa(`client-${name}`, `/CN=${name}`, ['-extfile', extPath, '-extensions', section], 30);
    },
    revoke: (cert) => {
      openssl(['ca', '-config', configPath, '-revoke', cert.certPath, '-crl_reason', 'keyCompromise'], dir);
    },
    reused,
    remove,
  };
}
