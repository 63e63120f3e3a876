import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/**
 * A Lua script from `lua/<verbNoun>-<numKeys>.lua`, run by EVALSHA with a
 * fallback to EVAL when Redis has not seen it yet (after a restart or
 * failover), so it is loaded exactly when needed.
 */
export class LuaScript {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly #source: string;
  readonly #sha: string;

  constructor(fileName: string) {
    const match = /^([A-Za-z]+)-(\d+)\.lua$/.exec(fileName);
    if (!match) throw new Error(`Lua script name ${fileName} is not verbNoun-<numKeys>.lua`);
    this.name = match[1]!;
    this.numberOfKeys = Number(match[2]);
    this.#source = readFileSync(new URL(`./lua/${fileName}`, import.meta.url), 'utf8');
    this.#sha = createHash('sha1').update(this.#source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    if (keys.length !== this.numberOfKeys) throw new Error(`${this.name} takes ${this.numberOfKeys} keys`);
    try {
      return await redis.evalsha(this.#sha, this.numberOfKeys, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.#source, this.numberOfKeys, ...keys, ...args);
    }
  }
}
