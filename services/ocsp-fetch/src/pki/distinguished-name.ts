import type * as pkijs from 'pkijs';

/** Short names RFC 4514 section 3 defines, plus the few others CAs commonly use. */
const shortNames: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.5': 'serialNumber',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
  '1.2.840.113549.1.9.1': 'emailAddress',
};

function escapeValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ')
    .split('')
    .map((c) => (c.charCodeAt(0) < 0x20 ? `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c))
    .join('');
}

/**
 * A name as an RFC 4514 string (most specific RDN first), for display only:
 * matching is always done on the DER, never on this text. Values that are not
 * strings are shown as `#` + hex of their BER, as the RFC prescribes.
 */
export function formatDistinguishedName(name: pkijs.RelativeDistinguishedNames): string {
  return name.typesAndValues
    .map((attribute) => {
      const type = shortNames[attribute.type] ?? attribute.type;
      const block = (attribute.value as { valueBlock?: { value?: unknown } }).valueBlock;
      const text =
        typeof block?.value === 'string'
          ? escapeValue(block.value)
          : `#${Buffer.from(attribute.value.toBER(false)).toString('hex')}`;
      return `${type}=${text}`;
    })
    .reverse()
    .join(',');
}
