import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { requireCommand } from './system-commands.js';
import { waitForListening } from './ports.js';
import { startProcess, type RunningProcess } from './child-process.js';
import type { IssuedCertificate, TestPki } from './test-pki.js';

export interface OcspResponderOptions {
  /** Who signs responses. Default: the delegated responder (id-kp-OCSPSigning). */
  signer?: 'delegated' | 'issuer' | 'unrelated' | 'delegated-without-ocsp-signing';
  /** Minutes until nextUpdate (`-nmin`). Default 10. */
  nextUpdateMinutes?: number;
  /** Days until nextUpdate (`-ndays`); takes precedence over minutes. */
  nextUpdateDays?: number;
  /** Omit nextUpdate entirely (neither -nmin nor -ndays). */
  omitNextUpdate?: boolean;
  /**
   * Run in a process group of its own, so a terminal's Ctrl-C reaches only
   * the parent, which stops it after what depends on it (npm start).
   */
  ownProcessGroup?: boolean;
}

/** A real `openssl ocsp` responder answering for the test PKI's intermediate. */
export interface OcspResponder {
  readonly url: string;
  readonly process: RunningProcess;
  /**
   * After `pki.revoke`, openssl 3.0's responder rereads its index one request
   * late: this sends that one throwaway request so the next real one is current.
   */
  refreshIndex(cert: IssuedCertificate): void;
  stop(): Promise<void>;
}

/**
 * Starts `openssl ocsp` on `pki.ocspPort` (it listens on every interface and
 * cannot bind a host) and waits for it with `ss`, never by connecting.
 */
export async function startOcspResponder(
  pki: TestPki,
  options: OcspResponderOptions = {},
): Promise<OcspResponder> {
  requireCommand('openssl');
  requireCommand('ss');
  const signer = {
    delegated: pki.responder,
    issuer: pki.intermediate,
    unrelated: pki.unrelated,
    'delegated-without-ocsp-signing': pki.responderWithoutOcspSigning,
  }[options.signer ?? 'delegated'];
  const validity = options.omitNextUpdate
    ? []
    : options.nextUpdateDays !== undefined
      ? ['-ndays', String(options.nextUpdateDays)]
      : ['-nmin', String(options.nextUpdateMinutes ?? 10)];
  const args = [
    'ocsp',
    '-index',
    pki.indexPath,
    '-port',
    String(pki.ocspPort),
    '-rsigner',
    signer.certPath,
    '-rkey',
    signer.keyPath,
    '-CA',
    pki.intermediate.certPath,
    '-ignore_err',
    ...validity,
  ];
  const running = startProcess('openssl', args, { cwd: pki.dir, detached: options.ownProcessGroup === true });
  try {
    await waitForListening(pki.ocspPort);
  } catch (error) {
    await running.stop();
    throw new Error(`openssl ocsp did not start: ${running.output()}`, { cause: error });
  }
  return {
    url: pki.ocspUrl,
    process: running,
    refreshIndex: (cert) => queryOcsp(pki, cert, []),
    stop: () => running.stop(),
  };
}

function queryOcsp(pki: TestPki, cert: IssuedCertificate, extra: string[]): void {
  execFileSync(
    'openssl',
    [
      'ocsp',
      '-issuer',
      pki.intermediate.certPath,
      '-cert',
      cert.certPath,
      '-url',
      pki.ocspUrl,
      '-noverify',
      '-timeout',
      '10',
      ...extra,
    ],
    { stdio: 'ignore' },
  );
}

let responsesFetched = 0;

/**
 * The DER answer of the responder at `pki.ocspUrl` for `cert`, fetched with
 * `openssl ocsp -respout` and not verified (tests check it themselves). With
 * `refreshIndex`, a throwaway request goes first: openssl 3.0's responder
 * rereads its index one request late.
 */
export function fetchOcspResponse(
  pki: TestPki,
  cert: IssuedCertificate,
  options: { refreshIndex?: boolean } = {},
): Buffer {
  if (options.refreshIndex) queryOcsp(pki, cert, []);
  const out = path.join(pki.dir, `response-${cert.name}-${++responsesFetched}.der`);
  queryOcsp(pki, cert, ['-respout', out]);
  return readFileSync(out);
}
