import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDerStrict } from './der.js';

test('parseDerStrict accepts exactly one DER value and nothing looser', () => {
  const sequence = [0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xff];
  assert.ok(parseDerStrict(new Uint8Array(sequence)));
  const cases: Array<[string, number[]]> = [
    ['empty', []],
    ['trailing byte', [...sequence, 0x00]],
    ['truncated', sequence.slice(0, 6)],
    ['parent length shorter than its children', [0x30, 0x04, 0x02, 0x01, 0x05, 0x04, 0x01, 0xff]],
    ['a length claiming 2 GB', [0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x00]],
    ['indefinite length (BER)', [0x30, 0x80, 0x02, 0x01, 0x05, 0x00, 0x00]],
    ['a long-form length that fits the short form', [0x30, 0x81, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xff]],
    [
      'a long-form length with a leading zero byte',
      [0x04, 0x82, 0x00, 0x81, ...new Array<number>(0x81).fill(0)],
    ],
    ['a child overrunning its parent', [0x30, 0x03, 0x04, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00]],
    ['a high tag number with a leading zero digit', [0x9f, 0x80, 0x21, 0x00]],
    [
      'nesting deeper than any certificate',
      [...new Array<number>(100).fill(0).flatMap((_, i) => [0x30, 2 * (99 - i)])],
    ],
  ];
  for (const [name, bytes] of cases) assert.equal(parseDerStrict(new Uint8Array(bytes)), undefined, name);
});

test('parseDerStrict accepts long-form lengths, high tag numbers and nesting that DER allows', () => {
  const long = [0x04, 0x81, 0x80, ...new Array<number>(0x80).fill(7)];
  assert.ok(parseDerStrict(new Uint8Array(long)));
  const highTag = [0x9f, 0x81, 0x00, 0x01, 0x2a];
  assert.ok(parseDerStrict(new Uint8Array(highTag)));
  const nested = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x01];
  assert.ok(parseDerStrict(new Uint8Array(nested)));
});
