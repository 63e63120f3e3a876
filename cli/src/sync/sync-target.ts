import type { CertificateRecord, KeySet } from '@keyfleet/proto';

/** What one apply changed, for the log and for `--json` output. */
export interface ApplyReport {
  /** Files whose content changed. */
  readonly changedFiles: readonly string[];
  /** Live updates sent to the terminator (runtime API commands, by kind; never their arguments). */
  readonly liveUpdates: readonly string[];
  /** Whether the reload command ran, and how it went. */
  readonly reloaded?: { ok: boolean; output: string };
  /** Keys the terminator's fixed slots could not hold (hex names: public). */
  readonly droppedKeyNames: readonly string[];
}

/**
 * A terminator kept in step with the fleet: nginx, HAProxy, or plain files.
 * Both applies are idempotent and a pure function of their input and the
 * time, so the runner may call them again at any moment (a key activates, a
 * stream reconnects) and nothing changes when nothing should.
 */
export interface SyncTarget {
  readonly kind: string;
  applyKeySet(keySet: KeySet, nowMs: number): Promise<ApplyReport>;
  applyStaples(certificates: readonly CertificateRecord[], nowMs: number): Promise<ApplyReport>;
}
