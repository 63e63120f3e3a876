import type { Redis } from 'ioredis';
import { ErrorCode, KeyfleetError } from '@keyfleet/service-kit';
import type { ParsedChain } from '../pki/certificate-chain.js';
import { LuaScript } from './lua-script.js';
import type { OcspRedisKeys } from './redis-keys.js';
import {
  decodeStoredCertificate,
  registrationFields,
  stapleFields,
  type StoredCertificate,
  type StoredStaple,
} from './stored-certificate.js';

/** Negative replies of the store's Lua scripts. */
export enum StoreReply {
  NotRegistered = -1,
  NotNewer = -2,
}

/** What happened to a validated staple offered to the store. */
export type StapleStoreOutcome = 'stored' | 'not_newer' | 'not_registered';

const scripts = {
  register: new LuaScript('registerCertificate-2.lua'),
  unregister: new LuaScript('unregisterCertificate-2.lua'),
  storeStaple: new LuaScript('storeStaple-2.lua'),
  recordFailure: new LuaScript('recordFetchFailure-2.lua'),
};

/** A responder's failure count is forgotten after a day without failures. */
const responderFailureTtlMs = 86_400_000;

/** Turns a Redis outage into UNAVAILABLE for callers; everything else is passed on. */
async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof KeyfleetError) throw error;
    throw new KeyfleetError(ErrorCode.Unavailable, 'the certificate store is unavailable', { cause: error });
  }
}

/**
 * The certificate registry and its staples in Redis. Every write is one Lua
 * script (atomic, and it publishes the change on the same connection order),
 * every key comes from OcspRedisKeys.
 */
export class CertificateStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: OcspRedisKeys,
  ) {}

  /** Stores a new registration; `created` false (and nothing changed) when it exists. */
  async register(
    chain: ParsedChain,
    nowMs: number,
  ): Promise<{ created: boolean; certificate: StoredCertificate }> {
    return guarded(async () => {
      const reply = await scripts.register.run(
        this.redis,
        [this.keys.certificate(chain.id), this.keys.certificateIndex],
        [this.keys.changesChannel, chain.id, ...registrationFields(chain, nowMs)],
      );
      const certificate = await this.get(chain.id);
      if (!certificate)
        throw new KeyfleetError(ErrorCode.Aborted, 'the certificate was unregistered concurrently');
      return { created: reply === 1, certificate };
    });
  }

  /** False when the id was not registered. */
  async unregister(id: string): Promise<boolean> {
    return guarded(async () => {
      const reply = await scripts.unregister.run(
        this.redis,
        [this.keys.certificate(id), this.keys.certificateIndex],
        [this.keys.changesChannel, id],
      );
      return reply !== StoreReply.NotRegistered;
    });
  }

  async get(id: string): Promise<StoredCertificate | undefined> {
    return guarded(async () => decodeStoredCertificate(await this.redis.hgetall(this.keys.certificate(id))));
  }

  async ids(): Promise<string[]> {
    return guarded(() => this.redis.smembers(this.keys.certificateIndex));
  }

  /** Every registered certificate, read in one pipeline. */
  async list(): Promise<StoredCertificate[]> {
    return guarded(async () => {
      const ids = (await this.ids()).sort();
      if (ids.length === 0) return [];
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hgetall(this.keys.certificate(id));
      const replies = (await pipeline.exec()) ?? [];
      const certificates: StoredCertificate[] = [];
      for (const [error, hash] of replies) {
        if (error) throw error;
        const decoded = decodeStoredCertificate(hash as Record<string, string>);
        if (decoded) certificates.push(decoded);
      }
      return certificates;
    });
  }

  /** Offers a validated staple; it replaces the stored one only if its thisUpdate is newer. */
  async storeStaple(
    id: string,
    responderOrigin: string,
    staple: StoredStaple,
    attempt: { atMs: number; nextAttemptAtMs: number },
  ): Promise<StapleStoreOutcome> {
    const reply = await scripts.storeStaple.run(
      this.redis,
      [this.keys.certificate(id), this.keys.responder(responderOrigin)],
      [
        this.keys.changesChannel,
        id,
        String(staple.thisUpdateMs),
        String(attempt.atMs),
        String(attempt.nextAttemptAtMs),
        ...stapleFields(staple),
      ],
    );
    return reply === 1 ? 'stored' : reply === StoreReply.NotNewer ? 'not_newer' : 'not_registered';
  }

  /** Records a failure; the staple is untouched. Undefined when the id is not registered. */
  async recordFailure(
    id: string,
    responderOrigin: string,
    attempt: { atMs: number; nextAttemptAtMs: number; error: string },
  ): Promise<number | undefined> {
    const reply = await scripts.recordFailure.run(
      this.redis,
      [this.keys.certificate(id), this.keys.responder(responderOrigin)],
      [
        this.keys.changesChannel,
        id,
        String(attempt.atMs),
        String(attempt.nextAttemptAtMs),
        attempt.error.slice(0, 200),
        String(responderFailureTtlMs),
      ],
    );
    return reply === StoreReply.NotRegistered ? undefined : Number(reply);
  }

  /** Consecutive failures of a responder across all its certificates and replicas. */
  async responderFailures(responderOrigin: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.responder(responderOrigin), 'failures')) ?? 0);
  }
}
