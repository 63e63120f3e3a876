import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stapleDecision } from './staple-check.js';
import type { StapleVerification } from './verify-staple.js';

const accept: StapleVerification = { outcome: 'accept', reason: 'good', certStatus: 'good' };
const reject: StapleVerification = {
  outcome: 'reject',
  reason: 'certificate is revoked',
  certStatus: 'revoked',
};
const error: StapleVerification = { outcome: 'error', reason: 'signature does not verify' };

const table: [string, StapleVerification | undefined, boolean, boolean, boolean][] = [
  // name, verification, mustStaple, soft-fail proceeds, hard-fail proceeds
  ['good staple', accept, false, true, true],
  ['revoked staple', reject, false, false, false],
  ['unverifiable staple', error, false, true, false],
  ['no staple', undefined, false, true, false],
  ['must-staple, good', accept, true, true, true],
  ['must-staple, unverifiable', error, true, false, false],
  ['must-staple, none', undefined, true, false, false],
  ['must-staple, revoked', reject, true, false, false],
];

for (const [name, verification, mustStaple, soft, hard] of table) {
  test(`stapleDecision: ${name}`, () => {
    assert.equal(stapleDecision(verification, 'soft-fail', mustStaple).proceed, soft, 'soft-fail');
    assert.equal(stapleDecision(verification, 'hard-fail', mustStaple).proceed, hard, 'hard-fail');
  });
}
