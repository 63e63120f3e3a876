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
  ];
  for (const [name, bytes] of cases) assert.equal(parseDerStrict(new Uint8Array(bytes)), undefined, name);
});
