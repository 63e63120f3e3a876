import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ConfigError } from '@keyfleet/service-kit';

/** One key-encryption key: an id (stored beside every wrapped secret) and 32 bytes. */
export interface Kek {
  readonly id: string;
  readonly key: Uint8Array;
}

/** A secret sealed under a KEK: `nonce(24) | ciphertext | tag(16)`. */
export interface WrappedSecret {
  readonly kekId: string;
  readonly wrapped: Uint8Array;
}

const kekIdPattern = /^[A-Za-z0-9._-]{1,64}$/;
const NONCE_BYTES = 24;

/**
 * The KEKs this replica knows. The first wraps; every one may unwrap, so a
 * KEK rotates by putting the new one first, running `rewrap`, and removing
 * the old one later. AAD = ring | key name | KEK id [| context], so a
 * wrapped secret moved to another ring, another key or relabelled with
 * another KEK id fails to open; `context` binds more of the record (its
 * times and state) to the secret.
 */
export class KekRing {
  private readonly byId: ReadonlyMap<string, Kek>;

  constructor(readonly keks: readonly Kek[]) {
    if (keks.length === 0) throw new RangeError('at least one KEK is needed');
    this.byId = new Map(keks.map((kek) => [kek.id, kek]));
  }

  /** The KEK new wraps use. */
  get primary(): Kek {
    return this.keks[0]!;
  }

  wrap(ring: string, name: Uint8Array, secret: Uint8Array, context?: string): WrappedSecret {
    const kek = this.primary;
    const nonce = randomBytes(NONCE_BYTES);
    const sealed = xchacha20poly1305(kek.key, nonce, aad(ring, name, kek.id, context)).encrypt(secret);
    return { kekId: kek.id, wrapped: Buffer.concat([nonce, sealed]) };
  }

  /** Throws (without any byte of the inputs in the message) when no KEK opens it. */
  unwrap(ring: string, name: Uint8Array, sealed: WrappedSecret, context?: string): Uint8Array {
    const kek = this.byId.get(sealed.kekId);
    if (!kek) throw new Error(`KEK "${sealed.kekId}" is not configured`);
    if (sealed.wrapped.length <= NONCE_BYTES) throw new Error('wrapped secret is truncated');
    const nonce = sealed.wrapped.subarray(0, NONCE_BYTES);
    try {
      return xchacha20poly1305(kek.key, nonce, aad(ring, name, kek.id, context)).decrypt(
        sealed.wrapped.subarray(NONCE_BYTES),
      );
    } catch {
      throw new Error(`wrapped secret does not open under KEK "${kek.id}"`);
    }
  }
}

function aad(ring: string, name: Uint8Array, kekId: string, context?: string): Uint8Array {
  // Neither a ring name nor a KEK id may contain "|", and a name is 16 bytes,
  // so the encoding is unambiguous; the context comes last.
  const parts = [Buffer.from(`${ring}|`), name, Buffer.from(`|${kekId}`)];
  if (context !== undefined) parts.push(Buffer.from(`|${context}`));
  return Buffer.concat(parts);
}

/**
 * Parses a KEK file: one `<kek-id>:<base64 of 32 bytes>` per line, the first
 * line wraps; blank lines and `#` comments are skipped. Errors name `source`
 * and the line, never the key.
 */
export function parseKekFile(text: string, source = 'KEYFLEET_KEK_FILE'): KekRing {
  const keks: Kek[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `line ${index + 1}`;
    const colon = line.indexOf(':');
    const id = colon > 0 ? line.slice(0, colon) : '';
    const encoded = line.slice(colon + 1);
    if (!kekIdPattern.test(id))
      throw new ConfigError(source, `${where}: expected <kek-id>:<base64 32 bytes>`);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded))
      throw new ConfigError(source, `${where}: the key is not base64`);
    const key = Buffer.from(encoded, 'base64');
    if (key.length !== 32)
      throw new ConfigError(source, `${where}: the key must be 32 bytes, got ${key.length}`);
    if (keks.some((kek) => kek.id === id)) throw new ConfigError(source, `${where}: KEK id "${id}" repeats`);
    keks.push({ id, key: new Uint8Array(key) });
  });
  if (keks.length === 0) throw new ConfigError(source, 'holds no KEK');
  return new KekRing(keks);
}

export function loadKekFile(filePath: string): KekRing {
  let text: string;
  try {
    text = readFileSync(filePath, 'utf8');
  } catch {
    throw new ConfigError('KEYFLEET_KEK_FILE', `cannot read ${filePath}`);
  }
  return parseKekFile(text, `KEYFLEET_KEK_FILE (${filePath})`);
}

/** One KEK file line for a fresh random KEK. */
export function newKekLine(id: string): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

/**
 * Development only: the KEK file under `stateDir`, generated (mode 0600) when
 * absent. Returns its path and whether it was created, so the caller warns.
 */
export function ensureDevKekFile(stateDir: string): { path: string; created: boolean } {
  const filePath = path.join(stateDir, 'kek');
  if (existsSync(filePath)) return { path: filePath, created: false };
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(
    filePath,
    `# generated for development by ticket-keys; not for production\n${newKekLine('dev-1')}\n`,
    {
      mode: 0o600,
      flag: 'wx',
    },
  );
  chmodSync(filePath, 0o600);
  return { path: filePath, created: true };
}
