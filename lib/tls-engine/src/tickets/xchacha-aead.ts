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
 * A derived 32-byte engine key with a 32-bit word view of it, so HChaCha20 on
 * the hot path neither copies nor converts it.
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
  // A word view in memory byte order, which is what noble's hchacha takes (it swaps on big-endian).
  return { bytes: copy, words: new Uint32Array(copy.buffer, copy.byteOffset, 8) };
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

// "expand 32-byte k" (RFC 8439 §2.3), as words in memory byte order like the key and nonce.
const SIGMA_BYTES = Uint8Array.from(Buffer.from('expand 32-byte k', 'latin1'));
const SIGMA = new Uint32Array(SIGMA_BYTES.buffer, 0, 4);

/**
 * XChaCha20 is ChaCha20 under a subkey HChaCha20(key, nonce[0..16]) with the
 * IETF nonce 0x00000000 | nonce[16..24]; the subkey step is small, so it runs
 * in JavaScript (noble's hchacha) and OpenSSL does the bulk and Poly1305.
 * The scratch buffers are reused because this is synchronous and OpenSSL
 * copies key and nonce into its own context; they are wiped after each use.
 */
const scratchNonceBytes = new Uint8Array(16);
const scratchNonceWords = new Uint32Array(scratchNonceBytes.buffer, 0, 4);
const scratchSubkey = Buffer.from(new ArrayBuffer(32));
// hchacha writes its output words in memory byte order (it swaps on big-endian hosts), so a
// word view over the subkey buffer receives the subkey bytes directly.
const scratchSubkeyWords = new Uint32Array(scratchSubkey.buffer, 0, 8);
const scratchIetfNonce = Buffer.alloc(12);

function deriveSubkey(key: AeadKey, nonce: Uint8Array): void {
  scratchNonceBytes.set(nonce.subarray(0, 16));
  hchacha(SIGMA, key.words, scratchNonceWords, scratchSubkeyWords);
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
