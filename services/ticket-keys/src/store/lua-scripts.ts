import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** Negative return codes of the scripts in ./lua, as their headers document them. */
export enum ScriptCode {
  RingNotFound = -1,
  EpochMismatch = -2,
  NameTaken = -3,
  KeyNotFound = -4,
}

/**
 * One Lua script from ./lua, named `<verbNoun>-<numKeys>.lua`. Runs by SHA
 * and loads itself on NOSCRIPT (after a Redis restart the script cache is
 * empty).
 */
export class LuaScript {
  readonly source: string;
  readonly sha1: string;
  readonly numberOfKeys: number;

  constructor(readonly fileName: string) {
    const match = /-(\d+)\.lua$/.exec(fileName);
    if (!match) throw new Error(`${fileName}: expected <verbNoun>-<numKeys>.lua`);
    this.numberOfKeys = Number(match[1]);
    this.source = readFileSync(new URL(`./lua/${fileName}`, import.meta.url), 'utf8');
    this.sha1 = createHash('sha1').update(this.source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    if (keys.length !== this.numberOfKeys) {
      throw new Error(`${this.fileName} takes ${this.numberOfKeys} keys, got ${keys.length}`);
    }
    try {
      return await redis.evalsha(this.sha1, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

export const scripts = {
  rotateRing: new LuaScript('rotateRing-4.lua'),
  revokeKey: new LuaScript('revokeKey-4.lua'),
  putRing: new LuaScript('putRing-3.lua'),
  promoteKey: new LuaScript('promoteKey-3.lua'),
  rewrapKey: new LuaScript('rewrapKey-1.lua'),
  restoreRing: new LuaScript('restoreRing-4.lua'),
} as const;

/** A script's `{code-or-epoch, extra}` reply as numbers. */
export function replyNumbers(reply: unknown): number[] {
  if (Array.isArray(reply)) return reply.map((value) => Number(value));
  return [Number(reply)];
}
