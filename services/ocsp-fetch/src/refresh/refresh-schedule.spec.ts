import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { nextRefreshAtMs, nextRetryAtMs, type RefreshPolicy } from './refresh-schedule.js';

const minute = 60_000;
const hour = 60 * minute;
const policy: RefreshPolicy = {
  refreshAtFraction: 0.5,
  jitterFraction: 0.1,
  safetyMarginMs: 30 * minute,
  minRefreshDelayMs: 30_000,
  retryInitialMs: 5_000,
  retryMaxMs: 15 * minute,
};

describe('nextRefreshAtMs', () => {
  const now = 1_000_000_000_000;
  const cases: Array<[string, { thisUpdateMs: number; nextUpdateMs: number }, number, number]> = [
    [
      '7-day window, no jitter: half-way',
      { thisUpdateMs: now, nextUpdateMs: now + 168 * hour },
      0.5,
      now + 84 * hour,
    ],
    [
      '7-day window, most jitter early',
      { thisUpdateMs: now, nextUpdateMs: now + 168 * hour },
      0,
      now + 84 * hour - 16.8 * hour,
    ],
    [
      '7-day window, most jitter late',
      { thisUpdateMs: now, nextUpdateMs: now + 168 * hour },
      1,
      now + 84 * hour + 16.8 * hour,
    ],
    [
      '10-minute window: a quarter of it is the margin',
      { thisUpdateMs: now, nextUpdateMs: now + 10 * minute },
      1,
      now + 6 * minute,
    ],
    [
      'a window already nearly over: the floor applies',
      { thisUpdateMs: now - hour, nextUpdateMs: now + 10_000 },
      0.5,
      now + 30_000,
    ],
    [
      'an old response served again: wait a quarter of what is left, not 30 s',
      { thisUpdateMs: now - 100 * hour, nextUpdateMs: now + 2 * hour },
      0.5,
      now + 30 * minute,
    ],
    [
      'a 7-day response served again a day before expiry: a fiftieth of the window',
      { thisUpdateMs: now - 144 * hour, nextUpdateMs: now + 24 * hour },
      0.5,
      now + 3.36 * hour,
    ],
  ];
  for (const [name, window, random, expected] of cases) {
    test(name, () => assert.equal(nextRefreshAtMs(policy, window, now, random), Math.round(expected)));
  }

  test('always within [now + floor, nextUpdate - margin] whenever that range exists', () => {
    for (let i = 0; i < 1000; i++) {
      const validity = Math.floor(Math.random() * 200 * hour) + 4 * minute;
      const age = Math.floor(Math.random() * validity * 0.4);
      const window = { thisUpdateMs: now - age, nextUpdateMs: now - age + validity };
      const at = nextRefreshAtMs(policy, window, now, Math.random());
      const latest = window.nextUpdateMs - Math.min(policy.safetyMarginMs, validity / 4);
      assert.ok(at >= now + policy.minRefreshDelayMs - 1, `not before the floor (${i})`);
      if (latest >= now + policy.minRefreshDelayMs)
        assert.ok(at <= latest + 1, `not after the margin (${i})`);
    }
  });
});

describe('nextRetryAtMs', () => {
  const now = 5_000_000;
  test('doubles per failure, within [50 %, 100 %] of the ceiling, capped', () => {
    for (const [failures, ceiling] of [
      [1, 5_000],
      [2, 10_000],
      [3, 20_000],
      [10, 15 * minute],
      [1000, 15 * minute],
    ] as const) {
      assert.equal(nextRetryAtMs(policy, failures, now, 0), now + ceiling / 2);
      assert.equal(nextRetryAtMs(policy, failures, now, 0.999999), Math.round(now + ceiling * 0.9999995));
    }
  });
});
