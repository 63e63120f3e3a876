import type { Redis } from 'ioredis';
import { ErrorCode, KeyfleetError } from '@keyfleet/service-kit';
import { keyNameHex, type TicketKeyRecord } from '@keyfleet/tls-engine';
import type { RingState } from '../schedule/key-set-view.js';
import { compileRingParams, type ResolvedRingParams } from '../schedule/ring-params.js';
import { planPromotion, planRevocation, planRotation, rotationIsDue } from '../schedule/rotation-plan.js';
import type { KekRing } from './kek.js';
import { decodeKeyRecord, encodeKeyRecord, newTicketKey, parseKeyRecord } from './key-record.js';
import { replyNumbers, ScriptCode, scripts } from './lua-scripts.js';
import type { RedisKeys } from './redis-keys.js';

export interface KeyStoreOptions {
  readonly redis: Redis;
  readonly keys: RedisKeys;
  readonly keks: KekRing;
  /** Default Date.now. */
  readonly clock?: () => number;
  /**
   * Told when Redis held an older state of a ring than this replica had seen
   * (failover to a lagging replica, partial data loss) and the merged state
   * was written back at a higher epoch.
   */
  /**
   * Told about a key record that does not parse or open (its AAD covers the
   * ring, name, KEK id, times and state): the key is left out of the ring.
   * `keyName` is the first 16 hex digits; `reason` never holds key bytes.
   */
  readonly onUnreadableRecord?: (event: { ring: string; keyName: string; reason: string }) => void;
  readonly onRegression?: (event: {
    ring: string;
    storedEpoch: number;
    knownEpoch: number;
    epoch: number;
  }) => void;
}

export type RotateOutcome =
  | { readonly result: 'ok'; readonly state: RingState; readonly publishedNameHex: string }
  | { readonly result: 'skipped'; readonly state: RingState };

/** How often a write re-plans after another replica changed the ring between its read and its script. */
const casAttempts = 8;

/**
 * A ring's keys in Redis: reads unwrap secrets into memory, writes are planned
 * by the pure schedule module and applied by one Lua script each, with a
 * compare-and-set on the ring's epoch (another replica's concurrent change
 * makes the script refuse, and the write re-plans from a fresh read).
 * Connection failures become UNAVAILABLE; nothing is half-written because
 * every write is a single script.
 */
export class KeyStore {
  private readonly redis: Redis;
  private readonly keys: RedisKeys;
  private readonly keks: KekRing;
  private readonly clock: () => number;
  private readonly onRegression: KeyStoreOptions['onRegression'];
  private readonly onUnreadableRecord: KeyStoreOptions['onUnreadableRecord'];
  /** The newest state of each ring this replica has read or written: the floor for every later read. */
  private readonly newest = new Map<string, RingState>();

  constructor(options: KeyStoreOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.keks = options.keks;
    this.clock = options.clock ?? Date.now;
    this.onRegression = options.onRegression;
    this.onUnreadableRecord = options.onUnreadableRecord;
  }

  /** The ring as stored now, or undefined when it does not exist. */
  async readRing(ring: string): Promise<RingState | undefined> {
    return this.guard(async () => (await this.readRaw(ring))?.state);
  }

  /** Like readRing, but NOT_FOUND when the ring does not exist. */
  async requireRing(ring: string): Promise<RingState> {
    const state = await this.readRing(ring);
    if (!state) throw notFound(ring);
    return state;
  }

  async listRingNames(): Promise<string[]> {
    return this.guard(async () => (await this.redis.smembers(this.keys.ringsIndex)).sort());
  }

  /**
   * Creates the ring with its first key, ACTIVE at once, or updates its
   * parameters. With `createOnly` an existing ring is left unchanged
   * (start-up bootstrap).
   */
  async putRing(
    params: ResolvedRingParams,
    options: { createOnly?: boolean } = {},
  ): Promise<{ created: boolean; epoch: number; params: ResolvedRingParams }> {
    return this.guard(async () => {
      const ringKeys = this.keys.ring(params.ring);
      // A ring Redis holds at an older epoch than this replica has seen is repaired first.
      if (this.newest.has(params.ring)) await this.readRaw(params.ring);
      const nowMs = this.clock();
      const first = newTicketKey(nowMs, nowMs);
      // The index entry goes first: a ring whose script then fails is listed
      // but has no params, and listing skips it.
      await this.redis.sadd(this.keys.ringsIndex, params.ring);
      const reply = replyNumbers(
        await scripts.putRing.run(
          this.redis,
          [ringKeys.params, ringKeys.state, ringKeys.keys],
          [
            nowMs,
            options.createOnly ? '1' : '0',
            keyNameHex(first.name),
            encodeKeyRecord(params.ring, first, this.keks),
            this.keys.changesChannel,
            params.ring,
            ...paramsToFields(params),
          ],
        ),
      );
      const created = reply[1] === 1;
      if (!created && options.createOnly) {
        const existing = await this.readRaw(params.ring);
        return { created, epoch: reply[0]!, params: existing?.state.params ?? params };
      }
      return { created, epoch: reply[0]!, params };
    });
  }

  /**
   * Publishes a new key, active propagationMs from now. `expectedEpoch` makes
   * it a compare-and-set (FAILED_PRECONDITION naming the current epoch);
   * `onlyIfDue` (the scheduled job) skips when the newest key is younger than
   * an interval.
   */
  async rotate(
    ring: string,
    options: { expectedEpoch?: number; onlyIfDue?: boolean } = {},
  ): Promise<RotateOutcome> {
    return this.guard(async () => {
      for (let attempt = 0; attempt < casAttempts; attempt++) {
        const raw = await this.readRaw(ring);
        if (!raw) throw notFound(ring);
        const { state } = raw;
        if (options.expectedEpoch !== undefined && options.expectedEpoch !== state.epoch) {
          throw epochMismatch(ring, options.expectedEpoch, state.epoch);
        }
        const nowMs = this.clock();
        if (options.onlyIfDue && !rotationIsDue(state.keys, state.params, nowMs)) {
          return { result: 'skipped', state };
        }
        const plan = planRotation(state.keys, state.params, nowMs);
        const key = newTicketKey(nowMs, plan.activatesAtMs);
        const nameHex = keyNameHex(key.name);
        const ringKeys = this.keys.ring(ring);
        const reply = replyNumbers(
          await scripts.rotateRing.run(
            this.redis,
            [ringKeys.params, ringKeys.state, ringKeys.keys, ringKeys.revoked],
            [
              state.epoch,
              nowMs,
              nameHex,
              encodeKeyRecord(ring, key, this.keks),
              this.keys.changesChannel,
              ring,
              ...plan.dropNamesHex,
            ],
          ),
        );
        const code = reply[0]!;
        if (code === ScriptCode.RingNotFound) throw notFound(ring);
        if (code === ScriptCode.EpochMismatch) {
          if (options.expectedEpoch !== undefined)
            throw epochMismatch(ring, options.expectedEpoch, reply[1]!);
          continue;
        }
        if (code === ScriptCode.NameTaken) continue;
        // The script applied exactly this plan under the compare-and-set, so
        // the new state is known without reading (and unwrapping) it again.
        const dropped = new Set(plan.dropNamesHex);
        const after: RingState = {
          ...state,
          epoch: code,
          keys: [...state.keys.filter((old) => !dropped.has(keyNameHex(old.name))), key],
          lastRotatedAtMs: nowMs,
        };
        this.remember(after);
        return { result: 'ok', state: after, publishedNameHex: nameHex };
      }
      throw contention(ring);
    });
  }

  /**
   * Removes a key from the ring and remembers its name until it would have
   * expired. Revoking the ACTIVE key adds a replacement ACTIVE at once.
   * NOT_FOUND when the ring or the key does not exist (or already expired).
   */
  async revoke(ring: string, nameHex: string): Promise<RingState> {
    return this.guard(async () => {
      for (let attempt = 0; attempt < casAttempts; attempt++) {
        const raw = await this.readRaw(ring);
        if (!raw) throw notFound(ring);
        const { state } = raw;
        const nowMs = this.clock();
        const plan = planRevocation(state.keys, state.params, nameHex, nowMs);
        if (!plan) {
          throw new KeyfleetError(ErrorCode.NotFound, `ring "${ring}" has no live key ${nameHex}`);
        }
        const replacement =
          plan.replacementActivatesAtMs !== undefined
            ? newTicketKey(nowMs, plan.replacementActivatesAtMs)
            : undefined;
        const ringKeys = this.keys.ring(ring);
        const reply = replyNumbers(
          await scripts.revokeKey.run(
            this.redis,
            [ringKeys.params, ringKeys.state, ringKeys.keys, ringKeys.revoked],
            [
              state.epoch,
              nowMs,
              nameHex,
              plan.revokedUntilMs,
              replacement ? keyNameHex(replacement.name) : '',
              replacement ? encodeKeyRecord(ring, replacement, this.keks) : '',
              this.keys.changesChannel,
              ring,
            ],
          ),
        );
        const code = reply[0]!;
        if (code === ScriptCode.RingNotFound) throw notFound(ring);
        if (code === ScriptCode.KeyNotFound) {
          throw new KeyfleetError(ErrorCode.NotFound, `ring "${ring}" has no live key ${nameHex}`);
        }
        if (code === ScriptCode.EpochMismatch || code === ScriptCode.NameTaken) continue;
        return this.requireState(ring);
      }
      throw contention(ring);
    });
  }

  /**
   * Activates the earliest PENDING key now, if the ring is still at
   * `expectedEpoch` (the epoch every live watcher acknowledged). Returns the
   * new state, or undefined when nothing was promoted (nothing pending, or the
   * ring moved on: the acks were for an older epoch).
   */
  async promote(ring: string, expectedEpoch: number): Promise<RingState | undefined> {
    return this.guard(async () => {
      const raw = await this.readRaw(ring);
      if (!raw || raw.state.epoch !== expectedEpoch) return undefined;
      const nowMs = this.clock();
      const plan = planPromotion(raw.state.keys, raw.state.params, nowMs);
      if (!plan) return undefined;
      const recordText = raw.records.get(plan.nameHex);
      const key = raw.state.keys.find((candidate) => keyNameHex(candidate.name) === plan.nameHex);
      if (!recordText || !key) return undefined;
      const promoted = encodeKeyRecord(ring, { ...key, activatesAtMs: plan.activatesAtMs }, this.keks);
      const ringKeys = this.keys.ring(ring);
      const reply = replyNumbers(
        await scripts.promoteKey.run(
          this.redis,
          [ringKeys.params, ringKeys.state, ringKeys.keys],
          [expectedEpoch, plan.nameHex, recordText, promoted, this.keys.changesChannel, ring],
        ),
      );
      return reply[0]! > 0 ? this.requireState(ring) : undefined;
    });
  }

  /**
   * Moves every key of every ring under the primary KEK. Idempotent and safe
   * to run while the service serves: a record that changed meanwhile is read
   * again. Returns how many records were rewrapped.
   */
  async rewrapAll(): Promise<{ rewrapped: number; rings: number }> {
    return this.guard(async () => {
      let rewrapped = 0;
      const rings = await this.redis.smembers(this.keys.ringsIndex);
      for (const ring of rings) {
        const keysKey = this.keys.ring(ring).keys;
        for (let attempt = 0; attempt < casAttempts; attempt++) {
          const records = await this.redis.hgetall(keysKey);
          let changed = false;
          for (const [nameHex, text] of Object.entries(records)) {
            const parsed = parseKeyRecord(nameHex, text);
            // Already under the primary KEK in the current format.
            if (parsed.kekId === this.keks.primary.id && parsed.context !== undefined) continue;
            const key = decodeKeyRecord(ring, nameHex, text, this.keks);
            const reply = await scripts.rewrapKey.run(
              this.redis,
              [keysKey],
              [nameHex, text, encodeKeyRecord(ring, key, this.keks)],
            );
            if (Number(reply) === 1) rewrapped++;
            else changed = true;
          }
          if (!changed) break;
        }
      }
      return { rewrapped, rings: rings.length };
    });
  }

  /**
   * Writes `state` back when Redis has lost the ring (restarted without
   * persistence), at epoch state.epoch + 1 so nodes see it move forward.
   * Does nothing when the ring exists. Returns whether this call restored it.
   */
  async restoreRing(state: RingState): Promise<boolean> {
    return this.guard(async () => this.writeBack(state, state.epoch + 1, undefined));
  }

  /**
   * Writes `state` at `epoch`: when `expectedEpoch` is undefined only if the
   * ring is absent, else only while Redis holds it at exactly that epoch.
   */
  private async writeBack(
    state: RingState,
    epoch: number,
    expectedEpoch: number | undefined,
  ): Promise<boolean> {
    const ring = state.params.ring;
    const ringKeys = this.keys.ring(ring);
    const fields = paramsToFields(state.params);
    const params: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) params[fields[i]!] = fields[i + 1]!;
    const records: Record<string, string> = {};
    for (const key of state.keys) records[keyNameHex(key.name)] = encodeKeyRecord(ring, key, this.keks);
    const revokedUntilMs = this.clock() + state.params.decryptWindowMs;
    await this.redis.sadd(this.keys.ringsIndex, ring);
    const reply = replyNumbers(
      await scripts.restoreRing.run(
        this.redis,
        [ringKeys.params, ringKeys.state, ringKeys.keys, ringKeys.revoked],
        [
          epoch,
          state.lastRotatedAtMs,
          this.keys.changesChannel,
          ring,
          JSON.stringify(params),
          JSON.stringify(records),
          JSON.stringify(state.revokedNamesHex.map((nameHex) => [nameHex, revokedUntilMs])),
          expectedEpoch === undefined ? '' : expectedEpoch,
        ],
      ),
    );
    return reply[1] === 1;
  }

  /** Raises the floor for the ring to `state` when it is newer. */
  private remember(state: RingState): void {
    const known = this.newest.get(state.params.ring);
    if (!known || state.epoch > known.epoch) this.newest.set(state.params.ring, state);
  }

  private async requireState(ring: string): Promise<RingState> {
    const raw = await this.readRaw(ring);
    if (!raw) throw notFound(ring);
    return raw.state;
  }

  /**
   * One consistent read of the ring, never older than what this replica has
   * seen: when Redis holds the ring at a lower epoch (or at the same epoch
   * with other keys), it went back in time (failover to a lagging replica,
   * partial data loss). Then the union of both states (every key any node
   * may hold, every revocation of either) is written back at an epoch above
   * both, with a compare-and-set on the epoch Redis holds, and read again.
   */
  private async readRaw(
    ring: string,
  ): Promise<{ state: RingState; records: Map<string, string> } | undefined> {
    for (let attempt = 0; attempt < casAttempts; attempt++) {
      const raw = await this.readStored(ring);
      const known = this.newest.get(ring);
      if (!raw || !known || !regressed(raw.state, known)) {
        if (raw) this.remember(raw.state);
        return raw;
      }
      const epoch = Math.max(known.epoch, raw.state.epoch) + 1;
      const merged = mergeRingStates(known, raw.state, epoch);
      if (await this.writeBack(merged, epoch, raw.state.epoch)) {
        this.onRegression?.({ ring, storedEpoch: raw.state.epoch, knownEpoch: known.epoch, epoch });
      }
    }
    throw contention(ring);
  }

  /** One consistent read of the ring's keys as Redis holds them (MULTI on one hash slot). */
  private async readStored(
    ring: string,
  ): Promise<{ state: RingState; records: Map<string, string> } | undefined> {
    const ringKeys = this.keys.ring(ring);
    const nowMs = this.clock();
    const results = await this.redis
      .multi()
      .hgetall(ringKeys.params)
      .hgetall(ringKeys.state)
      .hgetall(ringKeys.keys)
      .zrangebyscore(ringKeys.revoked, `(${nowMs}`, '+inf')
      .exec();
    if (!results) throw new KeyfleetError(ErrorCode.Unavailable, 'Redis transaction was aborted');
    for (const [error] of results) if (error) throw error;
    const [paramsHash, stateHash, keysHash, revoked] = results.map(([, value]) => value) as [
      Record<string, string>,
      Record<string, string>,
      Record<string, string>,
      string[],
    ];
    if (Object.keys(paramsHash).length === 0) return undefined;
    const params = fieldsToParams(ring, paramsHash);
    const records = new Map(Object.entries(keysHash));
    const keys: TicketKeyRecord[] = [];
    for (const [nameHex, text] of records) {
      try {
        keys.push(decodeKeyRecord(ring, nameHex, text, this.keks));
      } catch (error) {
        // One record that does not open (tampered with, or under a KEK this
        // replica lacks) costs that key, not the ring: it is left out and reported.
        this.onUnreadableRecord?.({
          ring,
          keyName: nameHex.slice(0, 16),
          reason: error instanceof Error ? error.message : 'unreadable',
        });
      }
    }
    return {
      state: {
        params,
        epoch: Number(stateHash.epoch ?? 0),
        keys,
        revokedNamesHex: revoked,
        lastRotatedAtMs: Number(stateHash.lastRotatedAtMs ?? 0),
      },
      records,
    };
  }

  /** Anything that is not our own error is Redis failing: UNAVAILABLE while disconnected. */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    if (this.redis.status !== 'ready') throw unavailable();
    try {
      return await operation();
    } catch (error) {
      if (error instanceof KeyfleetError) throw error;
      if (this.redis.status !== 'ready' || !(error instanceof Error) || error.name !== 'ReplyError') {
        throw unavailable(error);
      }
      throw new KeyfleetError(ErrorCode.Internal, 'Redis refused the operation', { cause: error });
    }
  }
}

function paramsToFields(params: ResolvedRingParams): string[] {
  return [
    'rotationIntervalMs',
    String(params.rotationIntervalMs),
    'propagationMs',
    String(params.propagationMs),
    'decryptWindowMs',
    String(params.decryptWindowMs),
    'ticketLifetimeMs',
    String(params.ticketLifetimeMs),
    'maxSessionAgeMs',
    String(params.maxSessionAgeMs),
    'bindServerName',
    params.bindServerName ? '1' : '0',
    'promoteOnFullAck',
    params.promoteOnFullAck ? '1' : '0',
  ];
}

function fieldsToParams(ring: string, hash: Record<string, string>): ResolvedRingParams {
  // Stored parameters were validated when written; compiling again keeps a
  // hand-edited hash from slipping past the bounds.
  return compileRingParams({
    ring,
    rotationIntervalMs: Number(hash.rotationIntervalMs ?? 0),
    propagationMs: Number(hash.propagationMs ?? 0),
    decryptWindowMs: Number(hash.decryptWindowMs ?? 0),
    ticketLifetimeMs: Number(hash.ticketLifetimeMs ?? 0),
    maxSessionAgeMs: Number(hash.maxSessionAgeMs ?? 0),
    bindServerName: hash.bindServerName === '1',
    promoteOnFullAck: hash.promoteOnFullAck === '1',
  });
}

function notFound(ring: string): KeyfleetError {
  return new KeyfleetError(ErrorCode.NotFound, `ring "${ring}" does not exist`);
}

function epochMismatch(ring: string, expected: number, current: number): KeyfleetError {
  return new KeyfleetError(
    ErrorCode.FailedPrecondition,
    `ring "${ring}" is at epoch ${current}, not the expected epoch ${expected}`,
  );
}

function contention(ring: string): KeyfleetError {
  return new KeyfleetError(ErrorCode.Aborted, `ring "${ring}" kept changing during the write; retry`);
}

function unavailable(cause?: unknown): KeyfleetError {
  return new KeyfleetError(
    ErrorCode.Unavailable,
    'Redis is unreachable; writes are refused until it returns',
    {
      cause,
    },
  );
}

/** Redis holds an older or a diverged state of the ring than `known`. */
function regressed(stored: RingState, known: RingState): boolean {
  if (stored.epoch > known.epoch) return false;
  if (stored.epoch < known.epoch) return true;
  // Key names only: revocations leave the read once remembered long enough, at any epoch.
  const names = (state: RingState) =>
    state.keys
      .map((key) => keyNameHex(key.name))
      .sort()
      .join();
  return names(stored) !== names(known);
}

/**
 * Both states in one: every key either holds (the known state's record when
 * both have it), minus every key either revoked; the known state's parameters.
 */
export function mergeRingStates(known: RingState, stored: RingState, epoch: number): RingState {
  const revoked = new Set([...known.revokedNamesHex, ...stored.revokedNamesHex]);
  const keys = new Map<string, TicketKeyRecord>();
  for (const key of [...stored.keys, ...known.keys]) keys.set(keyNameHex(key.name), key);
  for (const name of revoked) keys.delete(name);
  return {
    params: known.params,
    epoch,
    keys: [...keys.values()].sort((a, b) => a.activatesAtMs - b.activatesAtMs),
    revokedNamesHex: [...revoked],
    lastRotatedAtMs: Math.max(known.lastRotatedAtMs, stored.lastRotatedAtMs),
  };
}
