import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientRoles, subjectAltNames } from './client-roles.js';
import { ConfigError } from './config-env.js';

const fingerprint = 'ab'.repeat(32);
const peer = (commonName: string, more: { fp?: string; uris?: string[]; dnsNames?: string[] } = {}) => ({
  commonName,
  fingerprintSha256: more.fp ?? '00',
  uris: more.uris ?? [],
  dnsNames: more.dnsNames ?? [],
});

test('grants are per ring: node implies reader on its ring only; admin is everything', () => {
  const roles = parseClientRoles(
    JSON.stringify({
      admin: ['cn:ops', `sha256:${fingerprint.toUpperCase()}`],
      'node:edge': ['uri:spiffe://example.org/edge', 'dns:Edge-1.Example.org'],
      'reader:edge': ['cn:dashboard'],
      'reader:core': ['cn:dashboard'],
      staples: ['cn:stapler'],
    }),
  );
  assert.equal(roles.accessOf(peer('ops')).admin, true);
  assert.equal(roles.accessOf(peer('x', { fp: fingerprint })).allows('node', 'anything'), true);
  const node = roles.accessOf(peer('x', { uris: ['spiffe://example.org/edge'] }));
  assert.deepEqual(
    [node.admin, node.allows('node', 'edge'), node.allows('reader', 'edge')],
    [false, true, true],
  );
  assert.deepEqual([node.allows('node', 'core'), node.allows('reader', 'core')], [false, false]);
  assert.equal(roles.accessOf(peer('x', { dnsNames: ['edge-1.example.org'] })).allows('node', 'edge'), true);
  const dashboard = roles.accessOf(peer('dashboard'));
  assert.deepEqual(
    [
      dashboard.allows('reader', 'edge'),
      dashboard.allows('reader', 'core'),
      dashboard.allows('node', 'edge'),
    ],
    [true, true, false],
  );
  const stapler = roles.accessOf(peer('stapler'));
  assert.deepEqual([stapler.known, stapler.allows('reader', 'edge')], [true, false]);
});

test('an identity in no list has no grant at all', () => {
  const roles = parseClientRoles(JSON.stringify({ admin: ['cn:ops'], 'node:edge': ['cn:node-1'] }));
  const stranger = roles.accessOf(peer('stranger', { uris: ['spiffe://x'] }));
  assert.deepEqual(
    [stranger.known, stranger.admin, stranger.allows('reader', 'edge')],
    [false, false, false],
  );
});

test('subjectAltName text as Node prints it', () => {
  assert.deepEqual(subjectAltNames('DNS:a.example, URI:spiffe://t/ns/x, IP Address:127.0.0.1, DNS:b'), {
    uris: ['spiffe://t/ns/x'],
    dnsNames: ['a.example', 'b'],
  });
  assert.deepEqual(subjectAltNames('URI:"http://x/a,b", DNS:c'), { uris: ['http://x/a,b'], dnsNames: ['c'] });
  assert.deepEqual(subjectAltNames(undefined), { uris: [], dnsNames: [] });
});

const hostile: [string, string][] = [
  ['not JSON', '{admin:'],
  ['an array', '[]'],
  ['null', 'null'],
  ['an unknown grant', '{"root":["cn:x"]}'],
  ['a reader grant without a ring', '{"reader":["cn:x"]}'],
  ['a node grant without a ring', '{"node":["cn:x"]}'],
  ['a grant on a malformed ring', '{"node:Bad Ring":["cn:x"]}'],
  ['a wildcard identity', '{"node:edge":["cn:*"]}'],
  ['a grant that is not a list', '{"admin":"cn:x"}'],
  ['an identity without a scheme', '{"admin":["ops"]}'],
  ['a short fingerprint', '{"admin":["sha256:abcd"]}'],
  ['a non-string identity', '{"reader:edge":[42]}'],
  ['an oversized name', `{"reader:edge":["cn:${'x'.repeat(300)}"]}`],
];

for (const [name, text] of hostile) {
  test(`roles file: ${name} → ConfigError`, () => {
    assert.throws(() => parseClientRoles(text, 'roles.json'), ConfigError);
  });
}
