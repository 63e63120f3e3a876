/** One PEM block: its label ("CERTIFICATE") and the DER it carries. */
export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

const blockPattern = /-----BEGIN ([A-Z0-9 ]{1,64})-----([\s\S]*?)-----END \1-----/g;
const base64Body = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The PEM blocks in `text`, in order. Strict about the base64 body (only the
 * base64 alphabet and whitespace, length a multiple of 4) because a lenient
 * decoder would silently turn garbage into bytes; a block that fails is an
 * error, not skipped, so "leaf first, then issuer" cannot shift.
 */
export function parsePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(blockPattern)) {
    const label = match[1] ?? '';
    const body = (match[2] ?? '').replace(/\s+/g, '');
    if (body.length === 0 || body.length % 4 !== 0 || !base64Body.test(body)) {
      throw new Error(`PEM block ${blocks.length + 1} (${label}) is not valid base64`);
    }
    blocks.push({ label, der: new Uint8Array(Buffer.from(body, 'base64')) });
  }
  return blocks;
}
