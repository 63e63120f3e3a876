import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { aeadKey, nobleTicketAead, nodeTicketAead, type TicketAead } from './xchacha-aead.js';
import { loadNativeTicketAead } from './native-ticket-aead.js';

// The native port's AEAD where this machine built it (CI builds it for every Node it tests).
const native = loadNativeTicketAead();
const hotPaths: TicketAead[] = native.available ? [nodeTicketAead, native.aead] : [nodeTicketAead];

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

// draft-irtf-cfrg-xchacha-03, appendix A.3.1 (AEAD_XChaCha20_Poly1305).
const vector = {
  key: hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f'),
  nonce: hex('404142434445464748494a4b4c4d4e4f5051525354555657'),
  aad: hex('50515253c0c1c2c3c4c5c6c7'),
  plaintext: Buffer.from(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  ),
  sealed: hex(`bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
    731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
    2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
    21f9664c97637da9768812f615c68b13b52e c0875924c1c7987947deafd8780acf49`),
};

for (const aead of [nobleTicketAead, ...hotPaths]) {
  test(`${aead.name}: the draft's XChaCha20-Poly1305 test vector seals and opens`, () => {
    const key = aeadKey(vector.key);
    assert.deepEqual(Buffer.from(aead.seal(key, vector.nonce, vector.aad, vector.plaintext)), vector.sealed);
    assert.deepEqual(Buffer.from(aead.open(key, vector.nonce, vector.aad, vector.sealed)!), vector.plaintext);
  });

  test(`${aead.name}: a wrong tag, AAD, nonce or truncated input opens to undefined, never throws`, () => {
    const key = aeadKey(vector.key);
    const flipped = Buffer.from(vector.sealed);
    flipped[flipped.length - 1]! ^= 1;
    assert.equal(aead.open(key, vector.nonce, vector.aad, flipped), undefined);
    assert.equal(aead.open(key, vector.nonce, Buffer.from('x'), vector.sealed), undefined);
    assert.equal(aead.open(key, Buffer.alloc(24), vector.aad, vector.sealed), undefined);
    assert.equal(aead.open(key, vector.nonce, vector.aad, vector.sealed.subarray(0, 15)), undefined);
    assert.equal(aead.open(key, vector.nonce, vector.aad, new Uint8Array()), undefined);
  });
}

for (const hot of hotPaths) {
  test(`${hot.name} and @noble/ciphers give byte-identical output on random inputs`, () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 24, maxLength: 24 }),
        fc.uint8Array({ maxLength: 96 }),
        fc.uint8Array({ maxLength: 1200 }),
        (keyBytes, nonce, aad, plaintext) => {
          const key = aeadKey(keyBytes);
          const reference = nobleTicketAead.seal(key, nonce, aad, plaintext);
          const sealed = hot.seal(key, nonce, aad, plaintext);
          assert.deepEqual(Buffer.from(sealed), Buffer.from(reference));
          // And each opens what the other sealed.
          assert.deepEqual(Buffer.from(hot.open(key, nonce, aad, reference)!), Buffer.from(plaintext));
          assert.deepEqual(
            Buffer.from(nobleTicketAead.open(key, nonce, aad, sealed)!),
            Buffer.from(plaintext),
          );
        },
      ),
      { numRuns: 10_000 },
    );
  });
}

test('the native AEAD loads where the port is built, or says why not', () => {
  if (!native.available) assert.match(native.reason, /\S/);
  else assert.equal(native.aead.name, 'native');
});
