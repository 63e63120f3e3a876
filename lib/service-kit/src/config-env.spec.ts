import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, envBoolean, envInteger, envListenAddress, envString } from './config-env.js';

const range = { min: 1, max: 100 };

test('defaults apply when a variable is unset or blank', () => {
  assert.equal(envInteger({}, 'N', 7, range), 7);
  assert.equal(envInteger({ N: '  ' }, 'N', 7, range), 7);
  assert.equal(envString({}, 'S', 'x'), 'x');
  assert.equal(envBoolean({}, 'B', true), true);
  assert.equal(envListenAddress({}, 'A', '127.0.0.1:1'), '127.0.0.1:1');
});

const bad: [string, () => unknown, RegExp][] = [
  [
    'not a number',
    () => envInteger({ N: '12abc' }, 'N', 1, range),
    /^N: expected a whole number, got "12abc"$/,
  ],
  ['a fraction', () => envInteger({ N: '1.5' }, 'N', 1, range), /^N: expected a whole number/],
  ['below the range', () => envInteger({ N: '0' }, 'N', 1, range), /^N: must be between 1 and 100, got 0$/],
  ['above the range', () => envInteger({ N: '101' }, 'N', 1, range), /must be between 1 and 100/],
  ['huge', () => envInteger({ N: '9'.repeat(400) }, 'N', 1, range), /must be between/],
  [
    'a word for a boolean',
    () => envBoolean({ B: 'maybe' }, 'B', false),
    /^B: expected true or false, got "maybe"$/,
  ],
  ['an address without port', () => envListenAddress({ A: 'localhost' }, 'A', ''), /^A: expected host:port/],
  [
    'a port out of range',
    () => envListenAddress({ A: 'localhost:70000' }, 'A', ''),
    /^A: expected host:port/,
  ],
  ['a hostile address', () => envListenAddress({ A: 'a b:1;rm' }, 'A', ''), /^A: expected host:port/],
];

for (const [name, read, message] of bad) {
  test(`bad value: ${name} → ConfigError naming the variable`, () => {
    assert.throws(read, (error: unknown) => error instanceof ConfigError && message.test(error.message));
  });
}

test('good values parse', () => {
  assert.equal(envInteger({ N: '42' }, 'N', 1, range), 42);
  assert.equal(envBoolean({ B: 'YES' }, 'B', false), true);
  assert.equal(envBoolean({ B: 'off' }, 'B', true), false);
  assert.equal(envListenAddress({ A: '[::1]:8443' }, 'A', ''), '[::1]:8443');
});
