import {
  KeyState,
  StapleStatus,
  type CertificateRecord,
  type KeySet,
  type RingParams,
  type RingStatus,
} from '@keyfleet/proto';
import { keyNameHex } from '@keyfleet/tls-engine';

/**
 * How commands print: `--json` gives one JSON document per result (one per
 * line for streams) for scripts; otherwise short aligned text for people.
 * Key secrets are never printed, whatever the format: only names, which are
 * public.
 */
export interface Output {
  readonly json: boolean;
  result(value: unknown, text: () => string): void;
}

export function createOutput(
  json: boolean,
  write: (line: string) => void = (line) => console.log(line),
): Output {
  return {
    json,
    result: (value, text) => write(json ? JSON.stringify(value) : text()),
  };
}

const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : '-');
const stateName = (state: KeyState) => KeyState[state]?.toLowerCase() ?? String(state);

/** A key set without its secrets, as plain data. */
export function keySetView(keySet: KeySet) {
  return {
    ring: keySet.ring,
    epoch: keySet.epoch,
    params: keySet.params ? ringParamsView(keySet.params) : undefined,
    serverTime: iso(keySet.serverTimeMs),
    keys: keySet.keys.map((key) => ({
      name: keyNameHex(key.name),
      state: stateName(key.state),
      publishedAt: iso(key.publishedAtMs),
      activatesAt: iso(key.activatesAtMs),
      retiresAt: iso(key.retiresAtMs),
      expiresAt: iso(key.expiresAtMs),
    })),
    revokedKeyNames: keySet.revokedKeyNames.map((name) => keyNameHex(name)),
  };
}

export function ringParamsView(params: RingParams) {
  return { ...params };
}

export function ringStatusView(status: RingStatus) {
  return {
    ring: status.params?.ring ?? '',
    epoch: status.epoch,
    activeKeyName: keyNameHex(status.activeKeyName),
    activeSince: iso(status.activeSinceMs),
    lastRotatedAt: iso(status.lastRotatedAtMs),
    watchers: status.watchers,
    ackCoverage: status.ackCoverage,
    params: status.params ? ringParamsView(status.params) : undefined,
  };
}

export function certificateView(record: CertificateRecord, nowMs: number) {
  const staple = record.staple;
  return {
    id: record.id,
    subject: record.subject,
    dnsNames: record.dnsNames,
    ocspUrl: record.ocspUrl,
    status: StapleStatus[record.status]?.toLowerCase() ?? String(record.status),
    notAfter: iso(record.notAfterMs),
    staple: staple
      ? {
          bytes: staple.der.length,
          thisUpdate: iso(staple.thisUpdateMs),
          nextUpdate: iso(staple.nextUpdateMs),
          secondsUntilNextUpdate: Math.round((staple.nextUpdateMs - nowMs) / 1000),
          fetchedAt: iso(staple.fetchedAtMs),
          responder: staple.responderUrl,
        }
      : undefined,
    fetch: record.fetch
      ? {
          lastAttemptAt: iso(record.fetch.lastAttemptAtMs),
          nextAttemptAt: iso(record.fetch.nextAttemptAtMs),
          consecutiveFailures: record.fetch.consecutiveFailures,
          lastError: record.fetch.lastError,
        }
      : undefined,
  };
}

/** Left-aligned columns for the text output. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function keySetText(keySet: KeySet): string {
  const view = keySetView(keySet);
  return [
    `ring ${view.ring}  epoch ${view.epoch}  server time ${view.serverTime}`,
    table(
      ['KEY', 'STATE', 'PUBLISHED', 'ACTIVATES', 'EXPIRES'],
      view.keys.map((key) => [
        key.name.slice(0, 16),
        key.state,
        key.publishedAt,
        key.activatesAt,
        key.expiresAt,
      ]),
    ),
  ].join('\n');
}

export function certificatesText(records: readonly CertificateRecord[], nowMs: number): string {
  return table(
    ['CERTIFICATE', 'STATUS', 'NEXT UPDATE', 'IN', 'SUBJECT'],
    records.map((record) => {
      const view = certificateView(record, nowMs);
      return [
        view.id.slice(0, 16),
        view.status,
        view.staple?.nextUpdate ?? '-',
        view.staple ? `${Math.round(view.staple.secondsUntilNextUpdate / 3600)}h` : '-',
        view.subject,
      ];
    }),
  );
}
