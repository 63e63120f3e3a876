import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientRoles } from './client-roles.js';
import { ConfigError } from './config-env.js';

const fingerprint = 'ab'.repeat(32);

test('admin implies reader; cn:* makes every accepted certificate a reader', () => {
  const roles = parseClientRoles(
    JSON.stringify({ admin: ['cn:ops', `sha256:${fingerprint.toUpperCase()}`], reader: ['cn:*'] }),
  );
  assert.equal(roles.roleOf({ commonName: 'ops', fingerprintSha256: '00' }), 'admin');
  assert.equal(roles.roleOf({ commonName: 'x', fingerprintSha256: fingerprint }), 'admin');
  assert.equal(roles.roleOf({ commonName: 'node-1', fingerprintSha256: '00' }), 'reader');
});

test('an identity in no list has no role', () => {
  const roles = parseClientRoles(JSON.stringify({ admin: ['cn:ops'], reader: ['cn:node-1'] }));
  assert.equal(roles.roleOf({ commonName: 'stranger', fingerprintSha256: '00' }), undefined);
});

const hostile: [string, string][] = [
  ['not JSON', '{admin:'],
  ['an array', '[]'],
  ['null', 'null'],
  ['an unknown role', '{"root":["cn:x"]}'],
  ['a role that is not a list', '{"admin":"cn:x"}'],
  ['an identity without a scheme', '{"admin":["ops"]}'],
  ['a short fingerprint', '{"admin":["sha256:abcd"]}'],
  ['a non-string identity', '{"reader":[42]}'],
  ['an oversized name', `{"reader":["cn:${'x'.repeat(300)}"]}`],
];

for (const [name, text] of hostile) {
  test(`roles file: ${name} → ConfigError`, () => {
    assert.throws(() => parseClientRoles(text, 'roles.json'), ConfigError);
  });
}
