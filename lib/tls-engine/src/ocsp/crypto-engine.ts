import { webcrypto } from 'node:crypto';
import * as pkijs from 'pkijs';

let installed = false;

/**
 * pkijs computes digests and checks signatures through a WebCrypto engine it
 * looks up globally. Installing node's own WebCrypto once, explicitly, keeps
 * that choice in one place instead of relying on whatever `globalThis.crypto`
 * happens to be. Idempotent; every module that parses or verifies calls it.
 */
export function ensurePkiEngine(): pkijs.ICryptoEngine {
  if (!installed) {
    pkijs.setEngine(
      'node-webcrypto',
      new pkijs.CryptoEngine({
        name: 'node-webcrypto',
        // pkijs types this as the DOM's Crypto, which a Node project does not
        // load; node's webcrypto is that interface.
        crypto: webcrypto as never,
      }),
    );
    installed = true;
  }
  return pkijs.getCrypto(true);
}
