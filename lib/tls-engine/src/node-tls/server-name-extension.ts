/**
 * The host name in a ClientHello's server_name extension (RFC 6066 §3):
 *
 *   ServerNameList: list length(2) | { name_type(1) | host name length(2) | host name }+
 *
 * OpenSSL decrypts an offered ticket before it parses this extension, so the
 * native port hands the raw bytes over. Pure and total: anything that is not
 * exactly one well-formed list with a host_name entry of printable ASCII gives
 * undefined, never a throw (OpenSSL itself then rejects a malformed one).
 */
const HOST_NAME = 0;
const MAX_HOST_NAME_BYTES = 255;

export function hostNameOfServerNameExtension(bytes: Uint8Array | undefined): string | undefined {
  if (!bytes || bytes.length < 2 || bytes.length > 2 + 65535) return undefined;
  const listLength = (bytes[0]! << 8) | bytes[1]!;
  if (listLength !== bytes.length - 2) return undefined;
  let at = 2;
  let hostName: string | undefined;
  while (at < bytes.length) {
    if (at + 3 > bytes.length) return undefined;
    const type = bytes[at]!;
    const length = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    at += 3;
    if (at + length > bytes.length) return undefined;
    if (type === HOST_NAME) {
      // RFC 6066: at most one name of each type.
      if (hostName !== undefined || length === 0 || length > MAX_HOST_NAME_BYTES) return undefined;
      const name = bytes.subarray(at, at + length);
      if (!name.every((byte) => byte > 0x20 && byte < 0x7f)) return undefined;
      hostName = Buffer.from(name).toString('latin1').toLowerCase();
    }
    at += length;
  }
  return hostName;
}
