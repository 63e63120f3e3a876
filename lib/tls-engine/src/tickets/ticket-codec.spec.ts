import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TicketReason, TicketStatus } from '@keyfleet/proto';
import { createTicketCodec } from './ticket-codec.js';
import {
  encodePlaintext,
  encodeRing,
  MIN_TICKET_BYTES,
  ticketAad,
  ticketLimits,
  type TicketPayload,
} from './ticket-format.js';
import { nobleTicketAead } from './xchacha-aead.js';
import { decryptWindowMs, fixtureKey, fixtureRing, hourMs, minuteMs } from '../engine/key-ring.fixture.js';

const ring = fixtureRing();
const codec = createTicketCodec({ ring: 'edge' });
const payload: TicketPayload = {
  issuedAtMs: 1234,
  session: Buffer.from('session bytes'),
  appdata: Buffer.from('appdata'),
  serverName: 'example.test',
  clientIdentity: 'ab'.repeat(32),
};

function sealAt(nowMs: number, body: TicketPayload = payload, keys = ring) {
  const key = keys.schedule.activeAt(nowMs)!;
  return codec.sealWith(key, keys.aeadKey(key.nameHex)!, body);
}

test('a sealed ticket has the v1 layout: 0x01 | key name | nonce | ciphertext | tag', () => {
  const ticket = sealAt(0);
  assert.equal(ticket[0], 0x01);
  assert.deepEqual(Buffer.from(ticket.subarray(1, 17)), Buffer.alloc(16, 1));
  assert.equal(ticket.length, MIN_TICKET_BYTES + 13 + 7 + 12 + 64);
  // Fresh random nonces: the same payload never seals to the same bytes.
  assert.notDeepEqual(sealAt(0).subarray(17, 41), ticket.subarray(17, 41));
});

test('round trip: every field comes back', () => {
  const opened = codec.open(sealAt(0), ring, 10);
  assert.equal(opened.status, TicketStatus.SUCCESS);
  assert.equal(opened.reason, TicketReason.OK);
  assert.deepEqual(opened.payload, {
    ...payload,
    session: opened.payload!.session,
    appdata: opened.payload!.appdata,
  });
  assert.deepEqual(Buffer.from(opened.payload.session), payload.session);
  assert.deepEqual(Buffer.from(opened.payload.appdata), payload.appdata);
});

test('unbound context stays unbound', () => {
  const opened = codec.open(
    sealAt(0, { issuedAtMs: 5, session: new Uint8Array(), appdata: new Uint8Array() }),
    ring,
    10,
  );
  assert.equal(opened.payload?.serverName, undefined);
  assert.equal(opened.payload?.clientIdentity, undefined);
});

// Status by the key's state when the ticket is opened (the shared decision table).
const stateCases: {
  name: string;
  sealAt: number;
  openAt: number;
  status: TicketStatus;
  reason: TicketReason;
}[] = [
  {
    name: 'ACTIVE key',
    sealAt: 0,
    openAt: 30 * minuteMs,
    status: TicketStatus.SUCCESS,
    reason: TicketReason.OK,
  },
  {
    name: 'PENDING key (an opener whose clock runs behind the sealer)',
    sealAt: hourMs + minuteMs,
    openAt: hourMs + 30_000,
    status: TicketStatus.SUCCESS,
    reason: TicketReason.OK,
  },
  {
    name: 'DECRYPT_ONLY key',
    sealAt: 0,
    openAt: hourMs + minuteMs,
    status: TicketStatus.SUCCESS_RENEW,
    reason: TicketReason.KEY_RETIRED,
  },
  {
    name: 'expired key',
    sealAt: 0,
    openAt: hourMs + minuteMs + decryptWindowMs,
    status: TicketStatus.NO_DECRYPT,
    reason: TicketReason.KEY_EXPIRED,
  },
];
for (const c of stateCases) {
  test(`status by key state: ${c.name}`, () => {
    const opened = codec.open(sealAt(c.sealAt), ring, c.openAt);
    assert.equal(opened.status, c.status);
    assert.equal(opened.reason, c.reason);
    assert.equal(opened.payload !== undefined, c.status !== TicketStatus.NO_DECRYPT);
  });
}

test('a revoked key is KEY_REVOKED, a key never seen UNKNOWN_KEY, no key set at all UNKNOWN_KEY', () => {
  const ticket = sealAt(0);
  const revoked = fixtureRing({ revokedKeyNames: [new Uint8Array(16).fill(1)] });
  assert.equal(codec.open(ticket, revoked, 10).reason, TicketReason.KEY_REVOKED);
  const other = fixtureRing({ keys: [fixtureKey(9, 0, 0)] });
  assert.equal(codec.open(ticket, other, 10).reason, TicketReason.UNKNOWN_KEY);
  assert.equal(codec.open(ticket, undefined, 10).reason, TicketReason.UNKNOWN_KEY);
});

test('the AAD binds the ring: a ticket from another ring with the same keys fails authentication', () => {
  const other = createTicketCodec({ ring: 'edge2' });
  const opened = other.open(sealAt(0), ring, 10);
  assert.equal(opened.status, TicketStatus.NO_DECRYPT);
  assert.equal(opened.reason, TicketReason.AUTH_FAILED);
});

test('the same key name with another secret fails authentication', () => {
  const impostor = fixtureRing({
    keys: [{ ...fixtureKey(1, 0, 0), secret: new Uint8Array(32).fill(0xee) }],
  });
  assert.equal(codec.open(sealAt(0), impostor, 10).reason, TicketReason.AUTH_FAILED);
});

test('the reference AEAD opens what the hot path sealed', () => {
  const reference = createTicketCodec({ ring: 'edge', aead: nobleTicketAead });
  assert.equal(reference.open(sealAt(0), ring, 10).status, TicketStatus.SUCCESS);
});

const valid = sealAt(0);
const malformed: { name: string; ticket: Uint8Array; reason: TicketReason; status?: TicketStatus }[] = [
  { name: 'empty', ticket: new Uint8Array(), reason: TicketReason.EMPTY, status: TicketStatus.EMPTY },
  { name: 'one byte', ticket: Uint8Array.of(1), reason: TicketReason.MALFORMED },
  { name: 'version 0', ticket: Uint8Array.from([0, ...valid.subarray(1)]), reason: TicketReason.MALFORMED },
  { name: 'version 2', ticket: Uint8Array.from([2, ...valid.subarray(1)]), reason: TicketReason.MALFORMED },
  { name: 'header only', ticket: valid.subarray(0, 41), reason: TicketReason.MALFORMED },
  {
    name: 'one byte short of the minimum',
    ticket: valid.subarray(0, MIN_TICKET_BYTES - 1),
    reason: TicketReason.MALFORMED,
  },
  {
    name: 'truncated by one byte',
    ticket: valid.subarray(0, valid.length - 1),
    reason: TicketReason.AUTH_FAILED,
  },
  { name: 'one byte appended', ticket: Uint8Array.from([...valid, 0]), reason: TicketReason.AUTH_FAILED },
  { name: 'all zeros', ticket: new Uint8Array(200), reason: TicketReason.MALFORMED },
  {
    name: 'version byte then zeros',
    ticket: Uint8Array.from([1, ...new Uint8Array(199)]),
    reason: TicketReason.UNKNOWN_KEY,
  },
  {
    name: 'over the ticket limit',
    ticket: new Uint8Array(ticketLimits.maxTicketBytes + 1).fill(1),
    reason: TicketReason.TOO_LARGE,
  },
  {
    name: 'a huge input',
    ticket: new Uint8Array(10 * 1024 * 1024),
    reason: TicketReason.TOO_LARGE,
  },
];
for (const c of malformed) {
  test(`hostile input: ${c.name} → ${TicketReason[c.reason]}, never a throw`, () => {
    const opened = codec.open(c.ticket, ring, 10);
    assert.equal(opened.status, c.status ?? TicketStatus.NO_DECRYPT);
    assert.equal(opened.reason, c.reason);
    assert.equal(opened.payload, undefined);
  });
}

test('a well-authenticated but inconsistent plaintext is MALFORMED (the writer is checked too)', () => {
  const key = ring.schedule.activeAt(0)!;
  const aeadKey = ring.aeadKey(key.nameHex)!;
  // Seal a plaintext with an unknown flag bit by sealing raw bytes through the AEAD.
  const plaintext = Buffer.from(encodePlaintext(payload));
  plaintext[8] = 0x80;
  const nonce = new Uint8Array(24).fill(7);
  const sealed = nobleTicketAead.seal(aeadKey, nonce, ticketAad(1, encodeRing('edge'), key.name), plaintext);
  const ticket = Buffer.concat([Buffer.of(1), key.name, nonce, sealed]);
  const opened = codec.open(ticket, ring, 10);
  assert.equal(opened.status, TicketStatus.NO_DECRYPT);
  assert.equal(opened.reason, TicketReason.MALFORMED);
});

test('sealing over a limit is a caller bug: RangeError, naming the field', () => {
  const key = ring.schedule.activeAt(0)!;
  const aeadKey = ring.aeadKey(key.nameHex)!;
  const seal = (body: Partial<TicketPayload>) => () => codec.sealWith(key, aeadKey, { ...payload, ...body });
  assert.throws(seal({ session: new Uint8Array(ticketLimits.maxSessionBytes + 1) }), /session is 8193 bytes/);
  assert.throws(seal({ appdata: new Uint8Array(ticketLimits.maxAppdataBytes + 1) }), /appdata is 4097 bytes/);
  assert.throws(seal({ serverName: 'a'.repeat(256) }), /server name/);
  assert.throws(seal({ issuedAtMs: -1 }), /issuedAtMs/);
  // At the limits it fits under the ticket limit.
  const largest = codec.sealWith(key, aeadKey, {
    issuedAtMs: 1,
    session: new Uint8Array(ticketLimits.maxSessionBytes),
    appdata: new Uint8Array(ticketLimits.maxAppdataBytes),
    serverName: 'a'.repeat(255),
    clientIdentity: 'b'.repeat(255),
  });
  assert.ok(largest.length <= ticketLimits.maxTicketBytes);
  assert.equal(codec.open(largest, ring, 10).status, TicketStatus.SUCCESS);
});

test('the key name in the result is a copy, never a view of the caller’s Buffer', () => {
  const ticket = Buffer.from(sealAt(0));
  const opened = codec.open(ticket, ring, 10);
  ticket.fill(0);
  assert.deepEqual(Buffer.from(opened.keyName!), Buffer.alloc(16, 1));
});
