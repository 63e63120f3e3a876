import path from 'node:path';
import type { CertificateRecord, KeySet } from '@keyfleet/proto';
import { writeFileAtomic } from './atomic-file.js';
import { createFillerKeys, type FillerKey } from './filler-keys.js';
import { nginxTicketKeyFileName, nginxTicketKeySlots } from './nginx-ticket-keys.js';
import { reloadOnChange } from './reload-command.js';
import { OCSP_TRY_LATER_DER, servableStaple } from './staple-files.js';
import type { StapleDestinations } from './staple-destinations.js';
import type { ApplyReport, SyncTarget } from './sync-target.js';
import { ticketKeyOrderAt } from '@keyfleet/tls-engine';

export interface NginxTargetOptions {
  /** Directory of the `key-0.key` … `key-<N-1>.key` files nginx.conf names. */
  readonly keyDir: string;
  /** Number of `ssl_session_ticket_key` slots nginx.conf names. */
  readonly slotCount: number;
  /** Run after any file changed; empty: do not reload (something else does). */
  readonly reloadCommand: readonly string[];
  readonly staples: StapleDestinations;
  /** Injected for tests; default: random fillers drawn once. */
  readonly filler?: (slot: number) => FillerKey;
}

/**
 * nginx reads ticket keys and stapling files only at (re)load: each apply
 * rewrites the files atomically and reloads once, and only when a byte
 * changed.
 */
export function nginxTarget(options: NginxTargetOptions): SyncTarget {
  const filler = options.filler ?? createFillerKeys();
  const reload = reloadOnChange(options.reloadCommand);
  const reloadIfChanged = async (
    changedFiles: string[],
    droppedKeyNames: readonly string[],
  ): Promise<ApplyReport> => {
    const reloaded = await reload(changedFiles);
    return { changedFiles, liveUpdates: [], droppedKeyNames, ...(reloaded ? { reloaded } : {}) };
  };
  return {
    kind: 'nginx',
    async applyKeySet(keySet: KeySet, nowMs: number) {
      const layout = nginxTicketKeySlots(ticketKeyOrderAt(keySet, nowMs), options.slotCount, filler);
      const changedFiles: string[] = [];
      for (const [slot, bytes] of layout.files.entries()) {
        const filePath = path.join(options.keyDir, nginxTicketKeyFileName(slot));
        if (await writeFileAtomic(filePath, bytes)) changedFiles.push(filePath);
      }
      return reloadIfChanged(changedFiles, layout.droppedKeyNames);
    },
    async applyStaples(certificates: readonly CertificateRecord[], nowMs: number) {
      const changedFiles: string[] = [];
      const byId = new Map(certificates.map((record) => [record.id, record]));
      const ids = new Set([...byId.keys(), ...options.staples.namedIds]);
      for (const id of ids) {
        const record = byId.get(id);
        const der = (record && servableStaple(record, nowMs)) ?? OCSP_TRY_LATER_DER;
        for (const filePath of options.staples.pathsFor(id)) {
          if (await writeFileAtomic(filePath, der, { modeOctal: 0o644 })) changedFiles.push(filePath);
        }
      }
      return reloadIfChanged(changedFiles, []);
    },
  };
}
