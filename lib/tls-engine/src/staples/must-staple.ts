import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

/** id-pe-tlsfeature (RFC 7633). */
export const TLS_FEATURE_OID = '1.3.6.1.5.5.7.1.24';
/** The TLS extension number of status_request, as the feature list names it. */
const STATUS_REQUEST = 5;

/**
 * True when the certificate carries the TLS feature extension listing
 * status_request ("must-staple"): a client that honours it refuses the
 * handshake without a staple, so a strict server refuses first with a clear
 * reason. Malformed DER reads as "not must-staple" rather than throwing: the
 * certificate was already accepted by OpenSSL as the server's own.
 */
export function isMustStaple(certificateDer: Uint8Array): boolean {
  try {
    const certificate = pkijs.Certificate.fromBER(certificateDer);
    const extension = certificate.extensions?.find((ext) => ext.extnID === TLS_FEATURE_OID);
    if (!extension) return false;
    const parsed = asn1js.fromBER(extension.extnValue.valueBlock.valueHexView);
    if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return false;
    return parsed.result.valueBlock.value.some(
      (item) => item instanceof asn1js.Integer && item.valueBlock.valueDec === STATUS_REQUEST,
    );
  } catch {
    return false;
  }
}
