import type tls from 'node:tls';
import { certificateId, certificateLabel } from '../staples/certificate-id.js';
import { isMustStaple } from '../staples/must-staple.js';
import type { StapleSource } from '../staples/staple-cache.js';
import type { CompiledAttachOptions } from './attach-options.js';
import type { EngineMetrics } from '../metrics/engine-metrics.js';

type OcspRequestListener = (
  certificate: Buffer,
  issuer: Buffer | null,
  callback: (error: Error | null, response?: Buffer) => void,
) => void;

/**
 * Answers 'OCSPRequest' (fired only when the client asked for a staple) from
 * the staple source, by the SHA-256 of the leaf the handshake presents (so SNI
 * contexts get their own staples): a fresh staple is stapled; none, or an
 * expired one, is not (the NOACK case); in strict mode a must-staple
 * certificate without a fresh staple fails the handshake (ALERT_FATAL).
 */
export function installOcspStapling(
  server: tls.Server,
  staples: StapleSource,
  options: CompiledAttachOptions,
  metrics: EngineMetrics,
): { detach(): void } {
  // Whether a leaf is must-staple never changes: parse each certificate once.
  const mustStapleById = new Map<string, boolean>();

  const listener: OcspRequestListener = (certificate, _issuer, callback) => {
    let id: string;
    try {
      id = certificateId(certificate);
    } catch {
      metrics.staplesServed.inc({ result: 'none' });
      callback(null);
      return;
    }
    const found = staples.lookup(id, options.now());
    if (found.kind === 'fresh') {
      metrics.staplesServed.inc({ result: 'stapled' });
      callback(null, Buffer.from(found.staple.der));
      return;
    }
    if (options.strictMustStaple) {
      let mustStaple = mustStapleById.get(id);
      if (mustStaple === undefined) {
        mustStaple = isMustStaple(certificate);
        mustStapleById.set(id, mustStaple);
      }
      if (mustStaple) {
        metrics.staplesServed.inc({ result: 'refused' });
        callback(
          new Error(
            `must-staple certificate ${certificateLabel(id)} has no fresh OCSP staple (${found.kind})`,
          ),
        );
        return;
      }
    }
    metrics.staplesServed.inc({ result: found.kind });
    callback(null);
  };

  const keepAlive = () => {};
  staples.addListener?.(keepAlive);
  server.on('OCSPRequest', listener);
  return {
    detach() {
      server.off('OCSPRequest', listener);
      staples.removeListener?.(keepAlive);
    },
  };
}
