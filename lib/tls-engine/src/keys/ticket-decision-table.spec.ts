import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TicketDecision, TicketReason, TicketStatus } from '@keyfleet/proto';
import { KeySchedule } from './key-schedule.js';
import { defaultTicketDecision, lookupTicketKey, openedTicketStatus } from './ticket-decision-table.js';

const name = (byte: number) => new Uint8Array(16).fill(byte);
const key = (byte: number, activatesAtMs: number) => ({
  name: name(byte),
  secret: new Uint8Array(32).fill(byte),
  publishedAtMs: activatesAtMs - 100,
  activatesAtMs,
});
const hex = (byte: number) => Buffer.from(name(byte)).toString('hex');
// Key 1 activates at 1000, key 2 at 2000 (so key 1 retires then), key 3 at 5000; window 1000.
const schedule = new KeySchedule(
  [key(1, 1000), key(2, 2000), key(3, 5000), key(4, 900)],
  1000,
  new Set([hex(4)]),
);

test('the table: key lookup, status and default decision, row by row', () => {
  const rows: [
    label: string,
    byte: number,
    nowMs: number,
    status: TicketStatus,
    decision: TicketDecision,
    reason: TicketReason,
  ][] = [
    ['PENDING', 3, 2500, TicketStatus.SUCCESS, TicketDecision.USE, TicketReason.OK],
    ['ACTIVE', 2, 2500, TicketStatus.SUCCESS, TicketDecision.USE, TicketReason.OK],
    ['DECRYPT_ONLY', 1, 2500, TicketStatus.SUCCESS_RENEW, TicketDecision.USE_RENEW, TicketReason.KEY_RETIRED],
    ['gone', 1, 3000, TicketStatus.NO_DECRYPT, TicketDecision.IGNORE_RENEW, TicketReason.KEY_EXPIRED],
    ['revoked', 4, 2500, TicketStatus.NO_DECRYPT, TicketDecision.IGNORE_RENEW, TicketReason.KEY_REVOKED],
    ['never held', 9, 2500, TicketStatus.NO_DECRYPT, TicketDecision.IGNORE_RENEW, TicketReason.UNKNOWN_KEY],
  ];
  for (const [label, byte, nowMs, status, decision, reason] of rows) {
    const lookup = lookupTicketKey(schedule, hex(byte), nowMs);
    const row = 'refused' in lookup ? lookup.refused : openedTicketStatus(lookup.state);
    assert.equal(row.status, status, label);
    assert.equal(row.reason, reason, label);
    assert.deepEqual(defaultTicketDecision(row.status, row.reason), { decision, reason }, label);
  }
  assert.deepEqual(lookupTicketKey(undefined, hex(1), 0), {
    key: undefined,
    state: undefined,
    refused: { status: TicketStatus.NO_DECRYPT, reason: TicketReason.UNKNOWN_KEY },
  });
  assert.deepEqual(defaultTicketDecision(TicketStatus.EMPTY, TicketReason.EMPTY), {
    decision: TicketDecision.IGNORE_RENEW,
    reason: TicketReason.EMPTY,
  });
  assert.deepEqual(defaultTicketDecision(TicketStatus.NO_DECRYPT, TicketReason.AUTH_FAILED), {
    decision: TicketDecision.IGNORE_RENEW,
    reason: TicketReason.AUTH_FAILED,
  });
});
