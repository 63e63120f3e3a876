import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_FLIGHT_BYTES, parseServerFlight, tls12ClientHello } from './certificate-request.js';

const u16 = (value: number) => Buffer.from([value >> 8, value & 0xff]);
const message = (type: number, body: Buffer) =>
  Buffer.concat([
    Buffer.from([type, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
    body,
  ]);
const record = (type: number, body: Buffer) =>
  Buffer.concat([Buffer.from([type, 3, 3]), u16(body.length), body]);

const names = [Buffer.from('3011310f300d06035504030c06726f6f742d41', 'hex'), Buffer.from('3000', 'hex')];
const serverHello = message(
  2,
  Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([0, 0xc0, 0x2b, 0])]),
);
const certificateRequest = message(
  13,
  Buffer.concat([
    Buffer.from([2, 1, 64]),
    u16(4),
    Buffer.from([4, 3, 8, 4]),
    u16(names.reduce((sum, name) => sum + 2 + name.length, 0)),
    ...names.flatMap((name) => [u16(name.length), name]),
  ]),
);
const done = message(14, Buffer.alloc(0));
const flight = (...messages: Buffer[]) => record(0x16, Buffer.concat(messages));

test('a flight with a CertificateRequest yields its issuer names; without one, not-requested', () => {
  const result = parseServerFlight(flight(serverHello, certificateRequest, done));
  assert.equal(result.kind, 'requested');
  assert.deepEqual(result.kind === 'requested' ? result.acceptableIssuers : [], names);
  assert.deepEqual(parseServerFlight(flight(serverHello, done)), { kind: 'not-requested' });
});

test('messages split across records are reassembled', () => {
  const stream = Buffer.concat([serverHello, certificateRequest, done]);
  const split = Buffer.concat([record(0x16, stream.subarray(0, 10)), record(0x16, stream.subarray(10))]);
  assert.equal(parseServerFlight(split).kind, 'requested');
});

test('every truncation is incomplete or an error, never a throw or a wrong answer', () => {
  const whole = flight(serverHello, certificateRequest, done);
  for (let length = 0; length < whole.length; length++) {
    const kind = parseServerFlight(whole.subarray(0, length)).kind;
    assert.ok(kind === 'incomplete' || kind === 'error', `prefix ${length}: ${kind}`);
  }
});

test('hostile input: alerts, other record types, TLS 1.3 hellos, bad lengths, noise, oversize', () => {
  assert.equal(parseServerFlight(record(0x15, Buffer.from([2, 70]))).kind, 'error');
  assert.equal(parseServerFlight(record(0x17, Buffer.alloc(10))).kind, 'error');
  const tls13Hello = message(2, Buffer.concat([Buffer.from([3, 4]), Buffer.alloc(34)]));
  assert.equal(parseServerFlight(flight(tls13Hello, done)).kind, 'error');
  const lyingRequest = message(13, Buffer.from([1, 64, 0, 2, 4, 3, 0xff, 0xff]));
  assert.equal(parseServerFlight(flight(serverHello, lyingRequest, done)).kind, 'error');
  const emptyName = message(13, Buffer.from([1, 64, 0, 2, 4, 3, 0, 2, 0, 0]));
  assert.equal(parseServerFlight(flight(serverHello, emptyName, done)).kind, 'error');
  assert.equal(parseServerFlight(Buffer.alloc(MAX_FLIGHT_BYTES + 1)).kind, 'error');
  assert.equal(parseServerFlight(Buffer.from([0x16, 3, 3, 0xff, 0xff])).kind, 'error');
  for (let i = 0; i < 2000; i++) {
    const noise = Buffer.from(Array.from({ length: 1 + (i % 200) }, () => Math.floor(Math.random() * 256)));
    const kind = parseServerFlight(noise).kind;
    assert.ok(['incomplete', 'error', 'not-requested', 'requested'].includes(kind));
  }
  const whole = flight(serverHello, certificateRequest, done);
  for (let position = 0; position < whole.length; position++) {
    const flipped = Buffer.from(whole);
    flipped[position]! ^= 0xff;
    parseServerFlight(flipped); // must not throw
  }
});

test('the ClientHello is one well-formed TLS 1.2 handshake record', () => {
  const hello = tls12ClientHello('example.test');
  assert.equal(hello[0], 0x16);
  assert.equal((hello[3]! << 8) | hello[4]!, hello.length - 5);
  assert.equal(hello[5], 1); // ClientHello
  assert.equal((hello[6]! << 16) | (hello[7]! << 8) | hello[8]!, hello.length - 9);
  assert.deepEqual([hello[9], hello[10]], [3, 3]);
  assert.ok(hello.includes(Buffer.from('example.test')));
});
