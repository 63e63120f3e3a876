import * as asn1js from 'asn1js';

/**
 * Parses exactly one DER value, or returns undefined. asn1js alone is lenient:
 * it accepts trailing bytes and, inside a constructed value, children that
 * overrun the length their parent declares. Requiring that the parsed tree
 * encodes back to exactly the input rejects both, so what we fingerprint,
 * store and serve is what we checked. (asn1js keeps non-minimal and
 * indefinite length forms on re-encoding, so that BER leniency remains;
 * signatures still cover the exact bytes.)
 */
export function parseDerStrict(bytes: Uint8Array): asn1js.AsnType | undefined {
  const parsed = asn1js.fromBER(bytes);
  if (parsed.offset === -1 || parsed.offset !== bytes.byteLength || parsed.result.error) return undefined;
  let encoded: ArrayBuffer;
  try {
    encoded = parsed.result.toBER(false);
  } catch {
    return undefined;
  }
  return Buffer.from(encoded).equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    ? parsed.result
    : undefined;
}
