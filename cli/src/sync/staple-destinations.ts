import { readFileSync } from 'node:fs';
import path from 'node:path';
import { certificateIdOfPem } from './staple-files.js';

/**
 * Where each certificate's staple goes: `<stapleDir>/<id>.der` for every
 * certificate the stream carries, and `<pem>.ocsp` beside each certificate
 * file named with --certificate (or the file named after `=`) (HAProxy's convention, and handy for nginx's
 * `ssl_stapling_file`).
 */
export interface StapleDestinations {
  /** Every file path for this certificate id. */
  pathsFor(id: string): string[];
  /** Certificate ids named explicitly (--certificate), whatever the stream says. */
  readonly namedIds: readonly string[];
}

const CERTIFICATE_ID = /^[0-9a-f]{64}$/;

export function stapleDestinations(options: {
  stapleDir?: string | undefined;
  certificatePaths?: readonly string[];
}): StapleDestinations {
  const byId = new Map<string, string[]>();
  for (const entry of options.certificatePaths ?? []) {
    // `<pem>` writes `<pem>.ocsp`; `<pem>=<file>` writes `<file>` (for a read-only certificate mount).
    const [pemPath, target] = entry.includes('=') ? entry.split('=', 2) : [entry, `${entry}.ocsp`];
    const id = certificateIdOfPem(readFileSync(pemPath!, 'utf8'));
    byId.set(id, [...(byId.get(id) ?? []), target!]);
  }
  return {
    namedIds: [...byId.keys()],
    pathsFor(id) {
      // Ids come from the network and become file names: only the documented
      // form (64 lower-case hex digits) is ever written.
      if (!CERTIFICATE_ID.test(id)) return [];
      const named = byId.get(id) ?? [];
      return options.stapleDir ? [path.join(options.stapleDir, `${id}.der`), ...named] : named;
    },
  };
}
