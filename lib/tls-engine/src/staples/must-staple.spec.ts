import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMustStaple } from './must-staple.js';

test('isMustStaple: hostile or truncated DER is "not must-staple", never a throw', () => {
  const inputs = [
    new Uint8Array(0),
    new Uint8Array([0x30]),
    new Uint8Array([0x30, 0x82, 0xff, 0xff]),
    new Uint8Array(5000).fill(0x30),
    Uint8Array.from({ length: 512 }, (_, i) => (i * 131) % 256),
  ];
  for (const input of inputs) assert.equal(isMustStaple(input), false);
});
