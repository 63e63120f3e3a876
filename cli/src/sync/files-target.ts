import type { CertificateRecord, KeySet } from '@keyfleet/proto';
import { removeFileIfPresent, writeFileAtomic } from './atomic-file.js';
import { nodeTicketKeysFile } from './node-ticket-keys.js';
import { reloadOnChange } from './reload-command.js';
import { servableStaple } from './staple-files.js';
import type { StapleDestinations } from './staple-destinations.js';
import type { ApplyReport, SyncTarget } from './sync-target.js';
import { ticketKeyOrderAt } from '@keyfleet/tls-engine';

export interface FilesTargetOptions {
  /** Where Node's 48-byte `ticketKeys` go; undefined: no key file. */
  readonly nodeTicketKeysFile: string | undefined;
  /** Run after a file changed (for example `kill -HUP <pid>`); empty: never. */
  readonly reloadCommand: readonly string[];
  readonly staples: StapleDestinations;
}

/**
 * Plain files for servers that read them themselves: Node's `ticketKeys`
 * (ACTIVE key) and one DER staple per certificate (removed while there is no
 * valid one, so nothing expired is ever on disk to be served).
 */
export function filesTarget(options: FilesTargetOptions): SyncTarget {
  const reload = reloadOnChange(options.reloadCommand);
  const finish = async (report: ApplyReport): Promise<ApplyReport> => {
    const reloaded = await reload(report.changedFiles);
    return reloaded ? { ...report, reloaded } : report;
  };
  return {
    kind: 'files',
    async applyKeySet(keySet: KeySet, nowMs: number) {
      const changedFiles: string[] = [];
      if (options.nodeTicketKeysFile) {
        const bytes = nodeTicketKeysFile(ticketKeyOrderAt(keySet, nowMs));
        if (await writeFileAtomic(options.nodeTicketKeysFile, bytes))
          changedFiles.push(options.nodeTicketKeysFile);
      }
      return finish({ changedFiles, liveUpdates: [], droppedKeyNames: [] });
    },
    async applyStaples(certificates: readonly CertificateRecord[], nowMs: number) {
      const changedFiles: string[] = [];
      for (const record of certificates) {
        const der = servableStaple(record, nowMs);
        for (const filePath of options.staples.pathsFor(record.id)) {
          if (der) {
            if (await writeFileAtomic(filePath, der, { modeOctal: 0o644 })) changedFiles.push(filePath);
          } else {
            if (await removeFileIfPresent(filePath)) changedFiles.push(filePath);
          }
        }
      }
      return finish({ changedFiles, liveUpdates: [], droppedKeyNames: [] });
    },
  };
}
