import { test } from 'node:test';
import assert from 'node:assert/strict';
import { haproxyTicketKey, nginxTicketKeyFile, nodeTicketKeys } from '@keyfleet/tls-engine';
import { createFillerKeys } from './filler-keys.js';
import { nginxTicketKeySlots } from './nginx-ticket-keys.js';
import {
  haproxyTicketKeyFileText,
  haproxyTicketKeyLines,
  haproxyTicketKeyPushes,
} from './haproxy-ticket-keys.js';
import { nodeTicketKeysFile } from './node-ticket-keys.js';
import { nextTransitionMs, ticketKeyOrderAt } from '@keyfleet/tls-engine';
import { hexName, hourMs, minuteMs, testKey, testKeySet } from '../../test/key-sets.js';

// Keys 1..4 published an hour apart, each active a minute after publication.
const keys = [1, 2, 3, 4].map((id) =>
  testKey(id, (id - 1) * hourMs, (id - 1) * hourMs + (id === 1 ? 0 : minuteMs)),
);
const set = testKeySet(keys);
// At 3 h 30 s: key 4 is PENDING, 3 ACTIVE, 2 and 1 DECRYPT_ONLY.
const midRotation = 3 * hourMs + 30_000;

const names = (list: readonly { nameHex: string }[]) => list.map((key) => key.nameHex);

test('order: encrypting = ACTIVE, then PENDING soonest first, then DECRYPT_ONLY newest first', () => {
  const order = ticketKeyOrderAt(set, midRotation);
  assert.equal(order.encrypting?.nameHex, hexName(3));
  assert.deepEqual(names(order.pending), [hexName(4)]);
  assert.deepEqual(names(order.decryptOnly), [hexName(2), hexName(1)]);
});

test('order: expired and revoked keys are absent', () => {
  const late = ticketKeyOrderAt(set, 3 * hourMs + minuteMs + 12 * hourMs + 1);
  assert.equal(late.encrypting?.nameHex, hexName(4));
  assert.deepEqual(names(late.decryptOnly), []);
  const revoked = ticketKeyOrderAt(testKeySet(keys, { revoked: [3] }), midRotation);
  assert.equal(revoked.encrypting?.nameHex, hexName(2), 'the previous key encrypts again');
  assert.ok(![...names(revoked.pending), ...names(revoked.decryptOnly)].includes(hexName(3)));
});

test('order: a clock behind the first activation seals with the soonest PENDING key', () => {
  const order = ticketKeyOrderAt(testKeySet([testKey(7, 1000, 1000)]), 500);
  assert.equal(order.encrypting?.nameHex, hexName(7));
  assert.deepEqual(order.pending, []);
});

test('order: a key set without secrets is refused, naming the key but no bytes of secret', () => {
  const noSecrets = testKeySet([{ ...testKey(1, 0, 0), secret: Buffer.alloc(0) }]);
  assert.throws(() => ticketKeyOrderAt(noSecrets, 0), /key 0101010101010101 of ring edge has no secret/);
});

test('next transition: the next activation or expiry after now', () => {
  assert.equal(nextTransitionMs(set, midRotation), 3 * hourMs + minuteMs);
  assert.equal(nextTransitionMs(set, 3 * hourMs + minuteMs), hourMs + minuteMs + 12 * hourMs);
  assert.equal(nextTransitionMs(testKeySet([testKey(1, 0, 0)]), 5), undefined);
});

test('nginx: slot 0 encrypts, then PENDING, then DECRYPT_ONLY, fillers pad, layout name|hmac|aes', () => {
  const filler = createFillerKeys();
  const layout = nginxTicketKeySlots(ticketKeyOrderAt(set, midRotation), 6, filler);
  assert.deepEqual(layout.slotKeyNames, [
    hexName(3),
    hexName(4),
    hexName(2),
    hexName(1),
    undefined,
    undefined,
  ]);
  assert.deepEqual(layout.files[0], nginxTicketKeyFile(Buffer.alloc(16, 3), Buffer.alloc(32, 3)));
  for (const file of layout.files) assert.equal(file.length, 80);
  assert.deepEqual(layout.droppedKeyNames, []);
  // Fillers are stable per process (no spurious reload) and unlike any ring key.
  const again = nginxTicketKeySlots(ticketKeyOrderAt(set, midRotation), 6, filler);
  assert.deepEqual(again.files, layout.files);
  assert.notDeepEqual(layout.files[4], layout.files[5]);
  const ringNames = new Set([1, 2, 3, 4].map(hexName));
  for (const file of layout.files.slice(4)) assert.ok(!ringNames.has(file.subarray(0, 16).toString('hex')));
});

test('nginx: too few slots drop the oldest DECRYPT_ONLY keys and say which', () => {
  const layout = nginxTicketKeySlots(ticketKeyOrderAt(set, midRotation), 3, createFillerKeys());
  assert.deepEqual(layout.slotKeyNames, [hexName(3), hexName(4), hexName(2)]);
  assert.deepEqual(layout.droppedKeyNames, [hexName(1)]);
  assert.throws(() => nginxTicketKeySlots(ticketKeyOrderAt(set, midRotation), 0, createFillerKeys()), /slot/);
  assert.throws(
    () => nginxTicketKeySlots(ticketKeyOrderAt(testKeySet([]), 0), 4, createFillerKeys()),
    /no key to encrypt/,
  );
});

test('haproxy: three lines [last retired, encrypting, next], penultimate encrypts, layout name|aes|hmac', () => {
  const layout = haproxyTicketKeyLines(ticketKeyOrderAt(set, midRotation), createFillerKeys());
  assert.deepEqual(layout.lineKeyNames, [hexName(2), hexName(3), hexName(4)]);
  assert.deepEqual(
    Buffer.from(layout.lines[1]!, 'base64'),
    haproxyTicketKey(Buffer.alloc(16, 3), Buffer.alloc(32, 3)),
  );
  assert.deepEqual(layout.droppedKeyNames, [hexName(1)]);
  const text = haproxyTicketKeyFileText(layout);
  assert.match(text, /^([A-Za-z0-9+/]{106}[A-Za-z0-9+/=]{2}\n){3}$/);
  for (const line of text.trim().split('\n')) assert.equal(Buffer.from(line, 'base64').length, 80);
});

test('haproxy: a new ring pads both sides with fillers', () => {
  const layout = haproxyTicketKeyLines(
    ticketKeyOrderAt(testKeySet([testKey(1, 0, 0)]), 10),
    createFillerKeys(),
  );
  assert.deepEqual(layout.lineKeyNames, [undefined, hexName(1), undefined]);
  assert.equal(new Set(layout.lines).size, 3);
});

const pushCases: { name: string; current: string[]; desired: string[]; pushes: string[] }[] = [
  { name: 'in step: nothing', current: ['a', 'b', 'c'], desired: ['a', 'b', 'c'], pushes: [] },
  { name: 'one rotation: one push', current: ['a', 'b', 'c'], desired: ['b', 'c', 'd'], pushes: ['d'] },
  {
    name: 'two rotations: two pushes',
    current: ['a', 'b', 'c'],
    desired: ['c', 'd', 'e'],
    pushes: ['d', 'e'],
  },
  {
    name: 'unrelated: all three',
    current: ['a', 'b', 'c'],
    desired: ['x', 'y', 'z'],
    pushes: ['x', 'y', 'z'],
  },
  {
    name: 'revoked active: all three',
    current: ['a', 'b', 'c'],
    desired: ['a', 'x', 'c'],
    pushes: ['a', 'x', 'c'],
  },
  { name: 'unreadable ring: all three', current: [], desired: ['x', 'y', 'z'], pushes: ['x', 'y', 'z'] },
];
for (const { name, current, desired, pushes } of pushCases) {
  test(`haproxy pushes: ${name}`, () => {
    assert.deepEqual(haproxyTicketKeyPushes(current, desired), pushes);
    // Simulate HAProxy's ring: each push drops the oldest and appends.
    let ring = [...current];
    for (const push of haproxyTicketKeyPushes(current, desired)) ring = [...ring, push].slice(-3);
    assert.deepEqual(ring, desired);
  });
}

test('node: 48 bytes of the encrypting key', () => {
  const file = nodeTicketKeysFile(ticketKeyOrderAt(set, midRotation));
  assert.deepEqual(file, nodeTicketKeys(Buffer.alloc(16, 3), Buffer.alloc(32, 3)));
  assert.equal(file.length, 48);
});

test('reload command: words, or a JSON array for arguments with spaces; bad JSON refused', async () => {
  const { parseCommandLine } = await import('./reload-command.js');
  assert.deepEqual(parseCommandLine(' nginx  -s reload '), ['nginx', '-s', 'reload']);
  assert.deepEqual(parseCommandLine('["sh","-c","kill -HUP $(cat /run/nginx.pid)"]'), [
    'sh',
    '-c',
    'kill -HUP $(cat /run/nginx.pid)',
  ]);
  assert.throws(() => parseCommandLine('["sh", 1]'), /array of strings/);
  assert.throws(() => parseCommandLine('[nope'), SyntaxError);
  assert.deepEqual(parseCommandLine(''), []);
});
