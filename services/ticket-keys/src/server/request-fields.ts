import { invalidArgument } from '@keyfleet/service-kit';
import { KEY_NAME_BYTES } from '@keyfleet/tls-engine';
import { checkRingName } from '../schedule/ring-params.js';

/**
 * Checks on request fields, each throwing INVALID_ARGUMENT that names the
 * field (in the .proto's snake_case). Hostile input is cut short in messages.
 */
export const MAX_REASON_CHARS = 256;
export const DEFAULT_HEARTBEAT_MS = 5000;
const heartbeatBounds = { min: 100, max: 60_000 };
const nodeIdPattern = /^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$/;

export function ringField(ring: string): string {
  return checkRingName(ring, 'ring');
}

export function reasonField(reason: string): string {
  if (reason.length > MAX_REASON_CHARS) {
    throw invalidArgument('reason', `at most ${MAX_REASON_CHARS} characters, got ${reason.length}`);
  }
  return reason;
}

/** 1 to 128 printable ASCII characters (no leading or trailing space). */
export function nodeIdField(nodeId: string): string {
  if (!nodeIdPattern.test(nodeId)) {
    throw invalidArgument(
      'node_id',
      `must be 1 to 128 printable ASCII characters, got ${nodeId.length} characters`,
    );
  }
  return nodeId;
}

/** Zero: the default; otherwise 100 to 60000. */
export function heartbeatField(heartbeatIntervalMs: number): number {
  if (heartbeatIntervalMs === 0) return DEFAULT_HEARTBEAT_MS;
  if (
    !Number.isSafeInteger(heartbeatIntervalMs) ||
    heartbeatIntervalMs < heartbeatBounds.min ||
    heartbeatIntervalMs > heartbeatBounds.max
  ) {
    throw invalidArgument(
      'heartbeat_interval_ms',
      `must be 0 (default) or ${heartbeatBounds.min} to ${heartbeatBounds.max}, got ${heartbeatIntervalMs}`,
    );
  }
  return heartbeatIntervalMs;
}

/** A key name: exactly 16 bytes. Returns it in hex. */
export function keyNameField(name: Uint8Array): string {
  if (name.length !== KEY_NAME_BYTES) {
    throw invalidArgument('key_name', `must be ${KEY_NAME_BYTES} bytes, got ${name.length}`);
  }
  return Buffer.from(name).toString('hex');
}

export function epochField(field: string, epoch: number): number {
  if (!Number.isSafeInteger(epoch) || epoch < 0)
    throw invalidArgument(field, `must be a whole number, got ${epoch}`);
  return epoch;
}
