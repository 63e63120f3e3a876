import type { CertificateRecord, KeySet } from '@keyfleet/proto';
import { removeFileIfPresent, writeFileAtomic } from './atomic-file.js';
import { createFillerKeys, type FillerKey } from './filler-keys.js';
import {
  haproxyTicketKeyFileText,
  haproxyTicketKeyLines,
  haproxyTicketKeyPushes,
} from './haproxy-ticket-keys.js';
import type { HaproxyRuntimeApi } from './haproxy-runtime-api.js';
import { reloadOnChange } from './reload-command.js';
import { servableStaple } from './staple-files.js';
import type { StapleDestinations } from './staple-destinations.js';
import type { ApplyReport, SyncTarget } from './sync-target.js';
import { ticketKeyOrderAt } from '@keyfleet/tls-engine';

export interface HaproxyTargetOptions {
  /** The `tls-ticket-keys` file the bind lines name. */
  readonly ticketKeyFile: string;
  /** The runtime API (stats socket, level admin); undefined: files and reloads only. */
  readonly runtimeApi: HaproxyRuntimeApi | undefined;
  /** Run after a file changed when there is no runtime API; empty: never. */
  readonly reloadCommand: readonly string[];
  readonly staples: StapleDestinations;
  readonly filler?: (slot: number) => FillerKey;
}

/**
 * HAProxy takes keys and staples live over its runtime API, without a reload
 * (which would drop its in-memory TLS session cache and cost a process
 * generation). The files are rewritten too, so a later reload or restart
 * comes up with the same keys and staples.
 */
export function haproxyTarget(options: HaproxyTargetOptions): SyncTarget {
  const filler = options.filler ?? createFillerKeys();
  const api = options.runtimeApi;
  // What was last pushed per certificate, so a staple goes over the socket once.
  const pushedStaples = new Map<string, string>();
  // With the runtime API everything goes in live: the files are for a later restart.
  const reload = reloadOnChange(api ? [] : options.reloadCommand);
  const reloadIfNeeded = async (report: ApplyReport): Promise<ApplyReport> => {
    const reloaded = await reload(report.changedFiles);
    return reloaded ? { ...report, reloaded } : report;
  };
  return {
    kind: 'haproxy',
    async applyKeySet(keySet: KeySet, nowMs: number) {
      const layout = haproxyTicketKeyLines(ticketKeyOrderAt(keySet, nowMs), filler);
      const changedFiles: string[] = [];
      if (await writeFileAtomic(options.ticketKeyFile, Buffer.from(haproxyTicketKeyFileText(layout)))) {
        changedFiles.push(options.ticketKeyFile);
      }
      const liveUpdates: string[] = [];
      if (api) {
        const current = await api.showTicketKeys(options.ticketKeyFile);
        for (const line of haproxyTicketKeyPushes(current, layout.lines)) {
          await api.pushTicketKey(options.ticketKeyFile, line);
          liveUpdates.push('set ssl tls-key');
        }
      }
      return reloadIfNeeded({ changedFiles, liveUpdates, droppedKeyNames: layout.droppedKeyNames });
    },
    async applyStaples(certificates: readonly CertificateRecord[], nowMs: number) {
      const changedFiles: string[] = [];
      const liveUpdates: string[] = [];
      for (const record of certificates) {
        const der = servableStaple(record, nowMs);
        const paths = options.staples.pathsFor(record.id);
        if (paths.length === 0) continue;
        for (const filePath of paths) {
          // HAProxy refuses to start on an unsuccessful response but is fine
          // without the file: no valid staple, no file.
          if (der) {
            if (await writeFileAtomic(filePath, der, { modeOctal: 0o644 })) changedFiles.push(filePath);
          } else {
            if (await removeFileIfPresent(filePath)) changedFiles.push(filePath);
          }
        }
        // HAProxy itself stops stapling a response past its nextUpdate, so an
        // expired one needs no live withdrawal.
        const fingerprint = der?.toString('base64');
        if (api && der && fingerprint !== pushedStaples.get(record.id)) {
          await api.setOcspResponse(der);
          pushedStaples.set(record.id, fingerprint!);
          liveUpdates.push('set ssl ocsp-response');
        }
      }
      return reloadIfNeeded({ changedFiles, liveUpdates, droppedKeyNames: [] });
    },
  };
}
