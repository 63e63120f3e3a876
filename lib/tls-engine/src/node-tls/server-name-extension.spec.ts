import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hostNameOfServerNameExtension } from './server-name-extension.js';

/** server_name extension data as a client sends it. */
function extension(...entries: [type: number, name: Buffer][]): Buffer {
  const list = Buffer.concat(
    entries.map(([type, name]) =>
      Buffer.concat([Buffer.from([type, name.length >> 8, name.length & 0xff]), name]),
    ),
  );
  return Buffer.concat([Buffer.from([list.length >> 8, list.length & 0xff]), list]);
}

test('server_name: the host name, lower-cased', () => {
  assert.equal(hostNameOfServerNameExtension(extension([0, Buffer.from('Shop.Example')])), 'shop.example');
  // Entries of other types are skipped.
  assert.equal(
    hostNameOfServerNameExtension(extension([7, Buffer.from('other')], [0, Buffer.from('a.example')])),
    'a.example',
  );
});

test('server_name: malformed, truncated, hostile or absent input is undefined, never a throw', () => {
  const good = extension([0, Buffer.from('a.example')]);
  const cases: [string, Uint8Array | undefined][] = [
    ['absent', undefined],
    ['empty', new Uint8Array(0)],
    ['list length too long', Buffer.concat([Buffer.from([0xff, 0xff]), good.subarray(2)])],
    ['list length too short', Buffer.concat([Buffer.from([0, 1]), good.subarray(2)])],
    ['two host names', extension([0, Buffer.from('a.example')], [0, Buffer.from('b.example')])],
    ['empty host name', extension([0, Buffer.alloc(0)])],
    ['a 256-byte host name', extension([0, Buffer.alloc(256, 0x61)])],
    ['a NUL in the name', extension([0, Buffer.from('a\u0000b')])],
    ['a space in the name', extension([0, Buffer.from('a b')])],
    ['non-ASCII', extension([0, Buffer.from([0xc3, 0xa9])])],
    ['no host_name entry', extension([7, Buffer.from('other')])],
  ];
  for (let length = 0; length < good.length; length++)
    cases.push([`truncated to ${length}`, good.subarray(0, length)]);
  for (const [label, input] of cases) assert.equal(hostNameOfServerNameExtension(input), undefined, label);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const name = hostNameOfServerNameExtension(bytes);
      if (name !== undefined) assert.match(name, /^[\x21-\x7e]{1,255}$/);
    }),
    { numRuns: 5000 },
  );
});
