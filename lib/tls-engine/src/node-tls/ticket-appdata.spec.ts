import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  decodeTicketAppdata,
  encodeTicketAppdata,
  MAX_TICKET_APPDATA_BYTES,
  type TicketAppdata,
} from './ticket-appdata.js';

const sample: TicketAppdata = {
  issuedAtMs: 1_796_000_000_000,
  epoch: 42,
  serverName: 'shop.example',
  nodeId: 'node-a:1234',
  clientFingerprint: new Uint8Array(32).fill(7),
  userAppdata: new TextEncoder().encode('tenant=blue'),
};

test('ticket appdata round-trips, with and without the optional fields', () => {
  assert.deepEqual(decodeTicketAppdata(encodeTicketAppdata(sample)), sample);
  const bare = { ...sample, serverName: '', clientFingerprint: undefined, userAppdata: new Uint8Array(0) };
  assert.deepEqual(decodeTicketAppdata(encodeTicketAppdata(bare)), bare);
});

test('ticket appdata: any well-formed record round-trips (property)', () => {
  fc.assert(
    fc.property(
      fc.record({
        issuedAtMs: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        epoch: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        serverName: fc.string({ maxLength: 60 }),
        nodeId: fc.string({ maxLength: 60 }),
        clientFingerprint: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined }),
        userAppdata: fc.uint8Array({ maxLength: 512 }),
      }),
      (appdata) => {
        const encoded = encodeTicketAppdata(appdata);
        const decoded = decodeTicketAppdata(encoded);
        assert.ok(decoded);
        // Strings pass through UTF-8 (a lone surrogate becomes U+FFFD): compare what was written.
        const utf8 = (text: string) => new TextDecoder().decode(new TextEncoder().encode(text));
        assert.equal(decoded.issuedAtMs, appdata.issuedAtMs);
        assert.equal(decoded.epoch, appdata.epoch);
        assert.equal(decoded.serverName, utf8(appdata.serverName));
        assert.equal(decoded.nodeId, utf8(appdata.nodeId));
        assert.deepEqual(decoded.clientFingerprint, appdata.clientFingerprint);
        assert.deepEqual(decoded.userAppdata, appdata.userAppdata);
        assert.deepEqual(encodeTicketAppdata(decoded), encoded);
      },
    ),
    { numRuns: 2000 },
  );
});

test('ticket appdata: truncated, extended, re-versioned, oversized or random bytes decode to undefined, never a throw', () => {
  const good = encodeTicketAppdata(sample);
  for (let length = 0; length < good.length; length++) {
    assert.equal(decodeTicketAppdata(good.subarray(0, length)), undefined, `truncated to ${length}`);
  }
  assert.equal(decodeTicketAppdata(Buffer.concat([good, Buffer.from([0])])), undefined, 'a trailing byte');
  assert.equal(
    decodeTicketAppdata(Buffer.concat([Buffer.from([2]), good.subarray(1)])),
    undefined,
    'version 2',
  );
  assert.equal(decodeTicketAppdata(randomBytes(MAX_TICKET_APPDATA_BYTES + 1)), undefined, 'oversized');
  assert.equal(decodeTicketAppdata(undefined), undefined);
  // A fingerprint length other than 0 or 32.
  const badFingerprint = Buffer.from(good);
  badFingerprint[17 + 1 + 12 + 1 + 11] = 31;
  assert.equal(decodeTicketAppdata(badFingerprint), undefined);
  // A server name that is not UTF-8.
  const notUtf8 = Buffer.from(good);
  notUtf8[18] = 0xff;
  assert.equal(decodeTicketAppdata(notUtf8), undefined);
  // An issue time past what a JavaScript number holds exactly.
  const huge = Buffer.from(good);
  huge.writeBigUInt64BE(2n ** 63n, 1);
  assert.equal(decodeTicketAppdata(huge), undefined);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const decoded = decodeTicketAppdata(bytes);
      // Whatever decodes must re-encode to exactly the same bytes: one reading per record.
      if (decoded) assert.deepEqual(new Uint8Array(encodeTicketAppdata(decoded)), bytes);
    }),
    { numRuns: 5000 },
  );
});

test('ticket appdata: fields over their limits are a RangeError at encoding (a caller bug)', () => {
  assert.throws(() => encodeTicketAppdata({ ...sample, serverName: 'x'.repeat(256) }), RangeError);
  assert.throws(() => encodeTicketAppdata({ ...sample, nodeId: 'n'.repeat(256) }), RangeError);
  assert.throws(() => encodeTicketAppdata({ ...sample, clientFingerprint: new Uint8Array(20) }), RangeError);
  assert.throws(() => encodeTicketAppdata({ ...sample, userAppdata: new Uint8Array(4000) }), RangeError);
  assert.throws(() => encodeTicketAppdata({ ...sample, issuedAtMs: -1 }), RangeError);
  assert.throws(() => encodeTicketAppdata({ ...sample, epoch: 1.5 }), RangeError);
});
