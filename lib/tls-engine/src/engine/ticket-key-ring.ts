import type { KeySet } from '@keyfleet/proto';
import { engineAeadKey } from '../keys/key-material.js';
import { KeySchedule, ticketLifetimeHintMs } from '../keys/key-schedule.js';
import { KEY_NAME_BYTES, KEY_SECRET_BYTES, keyNameHex, type TicketKeyRecord } from '../keys/ticket-key.js';
import { aeadKey, type AeadKey } from '../tickets/xchacha-aead.js';
import type { CodecKeys } from '../tickets/ticket-codec.js';

/** The ring parameters the engine acts on, with the contract's defaults filled in. */
export interface RingRules {
  /** How often the service publishes a key: with the decrypt window, how long a cut-off node may keep issuing. */
  readonly rotationIntervalMs: number;
  readonly decryptWindowMs: number;
  /** The lifetime hint given with each ticket (never above decryptWindowMs). */
  readonly ticketLifetimeHintMs: number;
  /** 0: no limit. */
  readonly maxSessionAgeMs: number;
  readonly bindServerName: boolean;
}

/**
 * One ring's key set as the engine uses it: the pure schedule, the ring's
 * rules, and every key's engine AEAD key derived once when the set arrives
 * (HKDF stays off the per-ticket path). Immutable: a new key set is a new
 * TicketKeyRing.
 */
export interface TicketKeyRing extends CodecKeys {
  readonly ring: string;
  readonly epoch: number;
  readonly rules: RingRules;
}

/** Anything that hands the engine the current key ring (a KeySetProvider, a static set). */
export interface TicketKeyRingSource {
  current(): TicketKeyRing | undefined;
}

/** RingParams defaults from ticket_keys.proto. */
export const DEFAULT_DECRYPT_WINDOW_MS = 43_200_000;
export const DEFAULT_ROTATION_INTERVAL_MS = 3_600_000;

/** Thrown when a key set cannot be used; the message names the problem, never a secret. */
export class InvalidKeySetError extends Error {
  override readonly name = 'InvalidKeySetError';
}

export interface TicketKeyRingInput {
  readonly ring: string;
  readonly epoch: number;
  readonly keys: readonly TicketKeyRecord[];
  readonly revokedKeyNames?: readonly Uint8Array[];
  readonly rotationIntervalMs?: number;
  readonly decryptWindowMs?: number;
  readonly ticketLifetimeMs?: number;
  readonly maxSessionAgeMs?: number;
  readonly bindServerName?: boolean;
}

/**
 * Builds a key ring, reusing derived keys from `previous` for keys whose
 * secret has not changed. Throws InvalidKeySetError for a set no node should
 * act on (wrong sizes, missing secrets, duplicate names, negative times).
 */
export function createTicketKeyRing(input: TicketKeyRingInput, previous?: TicketKeyRing): TicketKeyRing {
  const decryptWindowMs =
    input.decryptWindowMs && input.decryptWindowMs > 0 ? input.decryptWindowMs : DEFAULT_DECRYPT_WINDOW_MS;
  const names = new Set<string>();
  const derived = new Map<string, AeadKey>();
  for (const [index, key] of input.keys.entries()) {
    if (key.name.length !== KEY_NAME_BYTES) {
      throw new InvalidKeySetError(
        `keys[${index}].name is ${key.name.length} bytes, expected ${KEY_NAME_BYTES}`,
      );
    }
    if (key.secret.length !== KEY_SECRET_BYTES) {
      throw new InvalidKeySetError(
        `keys[${index}].secret is ${key.secret.length} bytes, expected ${KEY_SECRET_BYTES} (a set fetched without secrets cannot seal)`,
      );
    }
    if (!Number.isSafeInteger(key.activatesAtMs) || key.activatesAtMs < 0) {
      throw new InvalidKeySetError(`keys[${index}].activates_at_ms is not a valid time`);
    }
    const nameHex = keyNameHex(key.name);
    if (names.has(nameHex)) throw new InvalidKeySetError(`keys[${index}].name appears twice`);
    names.add(nameHex);
    const reused = previous?.aeadKey(nameHex);
    const previousKey = previous?.schedule.find(nameHex);
    derived.set(
      nameHex,
      reused && previousKey && equalBytes(previousKey.secret, key.secret)
        ? reused
        : aeadKey(engineAeadKey(key.secret)),
    );
  }
  const revoked = new Set((input.revokedKeyNames ?? []).map((name) => keyNameHex(name)));
  const schedule = new KeySchedule(
    input.keys.map((key) => ({
      name: Uint8Array.from(key.name),
      secret: Uint8Array.from(key.secret),
      publishedAtMs: key.publishedAtMs,
      activatesAtMs: key.activatesAtMs,
    })),
    decryptWindowMs,
    revoked,
  );
  return {
    ring: input.ring,
    epoch: input.epoch,
    rules: {
      rotationIntervalMs:
        input.rotationIntervalMs && input.rotationIntervalMs > 0
          ? input.rotationIntervalMs
          : DEFAULT_ROTATION_INTERVAL_MS,
      decryptWindowMs,
      ticketLifetimeHintMs: ticketLifetimeHintMs({
        ticketLifetimeMs: input.ticketLifetimeMs ?? 0,
        decryptWindowMs,
      }),
      maxSessionAgeMs: Math.max(0, input.maxSessionAgeMs ?? 0),
      bindServerName: input.bindServerName ?? false,
    },
    schedule,
    aeadKey: (nameHex) => (revoked.has(nameHex) ? undefined : derived.get(nameHex)),
  };
}

/** The contract's KeySet as a key ring (see createTicketKeyRing). */
export function ticketKeyRingFromKeySet(keySet: KeySet, previous?: TicketKeyRing): TicketKeyRing {
  if (!keySet.ring) throw new InvalidKeySetError('ring is empty');
  return createTicketKeyRing(
    {
      ring: keySet.ring,
      epoch: keySet.epoch,
      keys: keySet.keys.map((key) => ({
        name: key.name,
        secret: key.secret,
        publishedAtMs: key.publishedAtMs,
        activatesAtMs: key.activatesAtMs,
      })),
      revokedKeyNames: keySet.revokedKeyNames,
      rotationIntervalMs: keySet.params?.rotationIntervalMs,
      decryptWindowMs: keySet.params?.decryptWindowMs,
      ticketLifetimeMs: keySet.params?.ticketLifetimeMs,
      maxSessionAgeMs: keySet.params?.maxSessionAgeMs,
      bindServerName: keySet.params?.bindServerName,
    },
    previous,
  );
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}

/** A source that always returns one ring: static setups and tests. */
export function staticKeyRingSource(ring: TicketKeyRing | undefined): TicketKeyRingSource {
  return { current: () => ring };
}
