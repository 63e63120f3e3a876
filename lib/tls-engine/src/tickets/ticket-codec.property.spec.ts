// Property tests over well above 100k cases in all: the codec answers every
// input with a status and never throws, no single-bit change of a valid ticket
// opens, and everything within the limits round-trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TicketStatus } from '@keyfleet/proto';
import { createTicketCodec } from './ticket-codec.js';
import { ticketLimits, type TicketPayload } from './ticket-format.js';
import { fixtureRing, hourMs } from '../engine/key-ring.fixture.js';

const ring = fixtureRing();
const codec = createTicketCodec({ ring: 'edge' });
const active = ring.schedule.activeAt(0)!;
const activeKey = ring.aeadKey(active.nameHex)!;
const statuses = new Set([
  TicketStatus.EMPTY,
  TicketStatus.NO_DECRYPT,
  TicketStatus.SUCCESS,
  TicketStatus.SUCCESS_RENEW,
]);

const payloadArbitrary = fc.record({
  issuedAtMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  session: fc.uint8Array({ maxLength: ticketLimits.maxSessionBytes, size: 'medium' }),
  appdata: fc.uint8Array({ maxLength: ticketLimits.maxAppdataBytes, size: 'medium' }),
  serverName: fc.option(fc.string({ unit: 'grapheme', maxLength: 30 }), { nil: undefined }),
  clientIdentity: fc.option(fc.stringMatching(/^[0-9a-f]{0,64}$/), { nil: undefined }),
});

const checkStatus = (ticket: Uint8Array, nowMs: number) => {
  const opened = codec.open(ticket, ring, nowMs);
  assert.ok(statuses.has(opened.status));
  assert.equal(
    opened.payload !== undefined,
    opened.status === TicketStatus.SUCCESS || opened.status === TicketStatus.SUCCESS_RENEW,
  );
  return opened;
};

test('any byte string yields a status and never throws (40k cases)', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 600 }),
      fc.integer({ min: 0, max: 3 * hourMs }),
      (bytes, nowMs) => {
        const opened = checkStatus(bytes, nowMs);
        if (bytes.length > 0) assert.equal(opened.status, TicketStatus.NO_DECRYPT);
      },
    ),
    { numRuns: 20_000 },
  );
  // Inputs that get past the cheap checks: version 1 and a key name the ring holds.
  fc.assert(
    fc.property(
      fc.constantFrom(1, 2, 3),
      fc.uint8Array({ maxLength: 400 }),
      fc.integer({ min: 0, max: 3 * hourMs }),
      (keyId, rest, nowMs) => {
        const ticket = Uint8Array.from([1, ...new Uint8Array(16).fill(keyId), ...rest]);
        assert.equal(checkStatus(ticket, nowMs).status, TicketStatus.NO_DECRYPT);
      },
    ),
    { numRuns: 20_000 },
  );
});

test('every single-bit flip of a valid ticket yields NO_DECRYPT (30k random flips + every bit of one ticket)', () => {
  fc.assert(
    fc.property(payloadArbitrary, fc.nat(), (payload: TicketPayload, bitSeed) => {
      const ticket = codec.sealWith(active, activeKey, payload);
      const bit = bitSeed % (ticket.length * 8);
      ticket[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(codec.open(ticket, ring, 10).status, TicketStatus.NO_DECRYPT);
    }),
    { numRuns: 30_000 },
  );
  const ticket = codec.sealWith(active, activeKey, {
    issuedAtMs: 1,
    session: new Uint8Array(200).fill(5),
    appdata: new Uint8Array(64).fill(6),
    serverName: 'example.test',
  });
  assert.equal(codec.open(ticket, ring, 10).status, TicketStatus.SUCCESS);
  for (let bit = 0; bit < ticket.length * 8; bit++) {
    const flipped = Uint8Array.from(ticket);
    flipped[bit >> 3]! ^= 1 << (bit & 7);
    assert.equal(codec.open(flipped, ring, 10).status, TicketStatus.NO_DECRYPT, `bit ${bit}`);
  }
});

test('arbitrary session, appdata and bound context within the limits round-trip (30k cases)', () => {
  fc.assert(
    fc.property(payloadArbitrary, (payload: TicketPayload) => {
      const opened = codec.open(codec.sealWith(active, activeKey, payload), ring, 10);
      assert.equal(opened.status, TicketStatus.SUCCESS);
      assert.equal(opened.payload!.issuedAtMs, payload.issuedAtMs);
      assert.deepEqual(Buffer.from(opened.payload!.session), Buffer.from(payload.session));
      assert.deepEqual(Buffer.from(opened.payload!.appdata), Buffer.from(payload.appdata));
      assert.equal(opened.payload!.serverName, payload.serverName);
      assert.equal(opened.payload!.clientIdentity, payload.clientIdentity);
    }),
    { numRuns: 30_000 },
  );
});
