import { createCipheriv, createDecipheriv } from 'node:crypto';
import { hchacha, xchacha20poly1305 } from '@noble/ciphers/chacha.js';

/** XChaCha20-Poly1305's sizes: 32-byte key, 192-bit nonce, 16-byte tag. */
export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 24;
export const AEAD_TAG_BYTES = 16;

/**
 * XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) as the codec uses it: `seal`
 * returns ciphertext | tag; `open` returns the plaintext, or undefined when
 * authentication fails (never throws for bad input). Both implementations in
 * this file produce byte-identical output, which a property test checks.
 */
export interface TicketAead {
  readonly name: string;
  seal(key: AeadKey, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  open(key: AeadKey, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined;
}

/**
 * A derived 32-byte engine key with its little-endian word form precomputed,
 * so HChaCha20 on the hot path neither copies nor converts it.
 */
export interface AeadKey {
  readonly bytes: Uint8Array;
  readonly words: Uint32Array;
}

export function aeadKey(bytes: Uint8Array): AeadKey {
  if (bytes.length !== AEAD_KEY_BYTES) {
    throw new RangeError(`an engine AEAD key is ${AEAD_KEY_BYTES} bytes, got ${bytes.length}`);
  }
  const copy = Uint8Array.from(bytes);
  return { bytes: copy, words: littleEndianWords(copy, 0, 8) };
}

function littleEndianWords(bytes: Uint8Array, offset: number, count: number): Uint32Array {
  const words = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const at = offset + 4 * i;
    words[i] = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
  }
  return words;
}

/** The reference: @noble/ciphers' xchacha20poly1305, pure JavaScript. */
export const nobleTicketAead: TicketAead = {
  name: 'noble',
  seal: (key, nonce, aad, plaintext) => xchacha20poly1305(key.bytes, nonce, aad).encrypt(plaintext),
  open(key, nonce, aad, sealed) {
    try {
      return xchacha20poly1305(key.bytes, nonce, aad).decrypt(sealed);
    } catch {
      return undefined;
    }
  },
};

// "expand 32-byte k" as four little-endian words (RFC 8439 §2.3).
const SIGMA = Uint32Array.of(0x61707865, 0x3320646e, 0x79622d32, 0x6b206574);

/**
 * XChaCha20 is ChaCha20 under a subkey HChaCha20(key, nonce[0..16]) with the
 * IETF nonce 0x00000000 | nonce[16..24]; the subkey step is small, so it runs
 * in JavaScript (noble's hchacha) and OpenSSL does the bulk and Poly1305.
 * The scratch buffers are reused because this is synchronous and OpenSSL
 * copies key and nonce into its own context; they are wiped after each use.
 */
const scratchNonceWords = new Uint32Array(4);
const scratchSubkeyWords = new Uint32Array(8);
const scratchSubkey = Buffer.alloc(32);
const scratchIetfNonce = Buffer.alloc(12);

function deriveSubkey(key: AeadKey, nonce: Uint8Array): void {
  for (let i = 0; i < 4; i++) {
    const at = 4 * i;
    scratchNonceWords[i] =
      nonce[at]! | (nonce[at + 1]! << 8) | (nonce[at + 2]! << 16) | (nonce[at + 3]! << 24);
  }
  hchacha(SIGMA, key.words, scratchNonceWords, scratchSubkeyWords);
  for (let i = 0; i < 8; i++) scratchSubkey.writeUInt32LE(scratchSubkeyWords[i]!, 4 * i);
  scratchSubkeyWords.fill(0);
  scratchIetfNonce.set(nonce.subarray(16, 24), 4);
}

function wipeSubkey(): void {
  scratchSubkey.fill(0);
}

/** The hot path: HChaCha20 from @noble/ciphers, then node:crypto's chacha20-poly1305. */
export const nodeTicketAead: TicketAead = {
  name: 'node',
  seal(key, nonce, aad, plaintext) {
    deriveSubkey(key, nonce);
    const cipher = createCipheriv('chacha20-poly1305', scratchSubkey, scratchIetfNonce, {
      authTagLength: AEAD_TAG_BYTES,
    });
    wipeSubkey();
    cipher.setAAD(aad, { plaintextLength: plaintext.length });
    const head = cipher.update(plaintext);
    const tail = cipher.final();
    const tag = cipher.getAuthTag();
    const sealed = Buffer.allocUnsafe(head.length + tail.length + tag.length);
    sealed.set(head, 0);
    sealed.set(tail, head.length);
    sealed.set(tag, head.length + tail.length);
    return sealed;
  },
  open(key, nonce, aad, sealed) {
    if (sealed.length < AEAD_TAG_BYTES || nonce.length !== AEAD_NONCE_BYTES) return undefined;
    deriveSubkey(key, nonce);
    const bodyLength = sealed.length - AEAD_TAG_BYTES;
    try {
      const decipher = createDecipheriv('chacha20-poly1305', scratchSubkey, scratchIetfNonce, {
        authTagLength: AEAD_TAG_BYTES,
      });
      decipher.setAAD(aad, { plaintextLength: bodyLength });
      decipher.setAuthTag(sealed.subarray(bodyLength));
      const head = decipher.update(sealed.subarray(0, bodyLength));
      const tail = decipher.final();
      return tail.length === 0 ? head : Buffer.concat([head, tail]);
    } catch {
      return undefined;
    } finally {
      wipeSubkey();
    }
  },
};
