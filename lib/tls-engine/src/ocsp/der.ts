import * as asn1js from 'asn1js';

/** Deeper nesting than any certificate or OCSP response has: hostile input, refused before it costs stack. */
const maxDepth = 64;

/**
 * Parses exactly one DER value, or returns undefined. asn1js alone is lenient:
 * it accepts trailing bytes, children that overrun the length their parent
 * declares, indefinite lengths and non-minimal length forms. So the bytes are
 * first walked as DER's tag-length-value tree (one pass, no allocation): one
 * value fills the input exactly, every constructed value is filled exactly by
 * its children, every length is definite and in its shortest form. Only then
 * does asn1js build the tree. What we fingerprint, store and serve is what we
 * checked; signatures cover the exact bytes.
 */
export function parseDerStrict(bytes: Uint8Array): asn1js.AsnType | undefined {
  if (derValueEnd(bytes, 0, bytes.byteLength, 0) !== bytes.byteLength) return undefined;
  const parsed = asn1js.fromBER(bytes);
  if (parsed.offset !== bytes.byteLength || parsed.result.error) return undefined;
  return parsed.result;
}

/**
 * The offset just past the DER value that starts at `offset` and must end by
 * `limit`, or -1 when it is not strict DER.
 */
function derValueEnd(bytes: Uint8Array, offset: number, limit: number, depth: number): number {
  if (depth > maxDepth || offset >= limit) return -1;
  const identifier = bytes[offset]!;
  let at = offset + 1;
  if ((identifier & 0x1f) === 0x1f) {
    // High tag number: base-128 digits, no leading zero digit, at most 4 of them.
    if (at >= limit || bytes[at] === 0x80) return -1;
    let digits = 0;
    while (at < limit && bytes[at]! & 0x80) {
      at++;
      if (++digits > 3) return -1;
    }
    if (at >= limit) return -1;
    at++;
  }
  if (at >= limit) return -1;
  const first = bytes[at++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    // 0x80 is BER's indefinite length; DER lengths fit in 4 bytes here.
    if (count === 0 || count > 4 || at + count > limit) return -1;
    if (bytes[at] === 0) return -1;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[at++]!;
    // The short form was required.
    if (length < 0x80) return -1;
  }
  const end = at + length;
  if (end > limit) return -1;
  if (identifier & 0x20) {
    while (at < end) {
      at = derValueEnd(bytes, at, end, depth + 1);
      if (at === -1) return -1;
    }
  }
  return end;
}
