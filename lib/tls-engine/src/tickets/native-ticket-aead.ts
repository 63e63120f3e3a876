/**
 * The codec's XChaCha20-Poly1305 through the native port in one call per
 * ticket (native/ticket_aead.cc), where node:crypto takes six calls and a
 * cipher object. Used only when the port loads (KEYFLEET_NATIVE_PORT=off
 * keeps it out, as for the TLS callbacks) and seals and opens a known answer
 * exactly as the reference implementation does; otherwise the codec keeps
 * nodeTicketAead. `defaultTicketAead()` says which, once per process.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { nativeAddonPath } from '../node-tls/native-port.js';
import { aeadKey, nobleTicketAead, nodeTicketAead, type TicketAead } from './xchacha-aead.js';

interface NativeAeadAddon {
  readonly xchachaSeal?: (
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
  ) => Buffer | undefined;
  readonly xchachaOpen?: (
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
  ) => Buffer | undefined;
}

export type NativeTicketAeadStatus =
  | { readonly available: true; readonly aead: TicketAead }
  | { readonly available: false; readonly reason: string };

let loaded: NativeTicketAeadStatus | undefined;

/** The native AEAD, or why not. Never throws; decided once per process. */
export function loadNativeTicketAead(): NativeTicketAeadStatus {
  loaded ??= tryLoad();
  return loaded;
}

/** What the codec uses when it is not told: the native AEAD when it loads, else node:crypto's. */
export function defaultTicketAead(): TicketAead {
  const status = loadNativeTicketAead();
  return status.available ? status.aead : nodeTicketAead;
}

function tryLoad(): NativeTicketAeadStatus {
  if (process.env.KEYFLEET_NATIVE_PORT === 'off')
    return { available: false, reason: 'KEYFLEET_NATIVE_PORT=off' };
  const addonPath = nativeAddonPath();
  if (!existsSync(addonPath)) return { available: false, reason: `no build at ${addonPath}` };
  let addon: NativeAeadAddon;
  try {
    addon = createRequire(import.meta.url)(addonPath) as NativeAeadAddon;
  } catch (error) {
    return { available: false, reason: `loading ${addonPath} failed: ${(error as Error).message}` };
  }
  const { xchachaSeal, xchachaOpen } = addon;
  if (typeof xchachaSeal !== 'function' || typeof xchachaOpen !== 'function') {
    return { available: false, reason: 'the build has no xchachaSeal/xchachaOpen (rebuild it)' };
  }
  const aead: TicketAead = {
    name: 'native',
    seal(key, nonce, aad, plaintext) {
      const sealed = xchachaSeal(key.bytes, nonce, aad, plaintext);
      // Only wrong sizes give nothing, and the codec never passes them: fail loudly, as node:crypto would.
      if (!sealed) throw new RangeError('native XChaCha20-Poly1305 refused its input');
      return sealed;
    },
    open: (key, nonce, aad, sealed) => xchachaOpen(key.bytes, nonce, aad, sealed),
  };
  // A known answer: the same bytes as the reference, and a tampered tag refused.
  try {
    const key = aeadKey(Uint8Array.from({ length: 32 }, (_, i) => i));
    const nonce = Uint8Array.from({ length: 24 }, (_, i) => 0x40 + i);
    const aad = Buffer.from('keyfleet self-check');
    const plaintext = Buffer.from('a ticket payload of a few dozen bytes, twice over: '.repeat(2));
    const reference = Buffer.from(nobleTicketAead.seal(key, nonce, aad, plaintext));
    const sealed = aead.seal(key, nonce, aad, plaintext);
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1]! ^= 1;
    if (!reference.equals(sealed))
      return { available: false, reason: 'self-check: sealed bytes differ from the reference' };
    if (!plaintext.equals(aead.open(key, nonce, aad, sealed) ?? Buffer.alloc(0))) {
      return { available: false, reason: 'self-check: does not open its own seal' };
    }
    if (aead.open(key, nonce, aad, tampered) !== undefined) {
      return { available: false, reason: 'self-check: opened a tampered ticket' };
    }
  } catch (error) {
    return { available: false, reason: `self-check failed: ${(error as Error).message}` };
  }
  return { available: true, aead };
}
