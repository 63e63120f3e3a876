import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CertificateRecord, KeySet, TicketKeyServiceClient, StapleServiceClient } from '@keyfleet/proto';
import { Registry } from 'prom-client';
import { startSyncRunner, type SyncEvent } from './sync-runner.js';
import { syncMetrics } from './sync-metrics.js';
import type { ApplyReport, SyncTarget } from './sync-target.js';
import { hexName, testKey, testKeySet } from '../../test/key-sets.js';
import { ticketKeyOrderAt } from '@keyfleet/tls-engine';

/** A server stream as startWatchLoop sees it: events plus cancel(). */
class FakeStream extends EventEmitter {
  cancel() {
    this.emit('close');
  }
}

function recordingTarget() {
  const keyApplies: { epoch: number; encrypting: string | undefined }[] = [];
  const stapleApplies: string[][] = [];
  const report: ApplyReport = { changedFiles: ['x'], liveUpdates: [], droppedKeyNames: [] };
  const target: SyncTarget = {
    kind: 'test',
    async applyKeySet(keySet: KeySet, nowMs: number) {
      keyApplies.push({
        epoch: keySet.epoch,
        encrypting: ticketKeyOrderAt(keySet, nowMs).encrypting?.nameHex,
      });
      return report;
    },
    async applyStaples(certificates: readonly CertificateRecord[]) {
      stapleApplies.push(certificates.map((record) => record.id));
      return report;
    },
  };
  return { target, keyApplies, stapleApplies };
}

/** A ticket-key client whose WatchKeySet is `stream` and whose AckKeySet records each request. */
function ackingTicketKeys(stream: FakeStream) {
  const acks: { ring: string; nodeId: string; epoch: number }[] = [];
  const client = {
    watchKeySet: () => stream,
    ackKeySet: (request: (typeof acks)[number], callback: (error: null) => void) => {
      acks.push(request);
      callback(null);
    },
  } as unknown as Pick<TicketKeyServiceClient, 'watchKeySet' | 'ackKeySet'>;
  return { client, acks };
}

async function until(what: string, probe: () => boolean) {
  for (let i = 0; i < 500 && !probe(); i++) await sleep(10);
  assert.ok(probe(), what);
}

test('applies each key set, re-applies by itself when the next key activates, and acks the epoch', async () => {
  const stream = new FakeStream();
  const { client: ticketKeys, acks } = ackingTicketKeys(stream);
  const { target, keyApplies } = recordingTarget();
  const events: SyncEvent[] = [];
  const now = Date.now();
  const runner = startSyncRunner({
    target,
    ring: 'edge',
    ticketKeys,
    staples: undefined,
    certificateIds: [],
    nodeId: 'node-1',
    clock: Date.now,
    log: (event) => events.push(event),
  });
  try {
    // Key 2 activates 150 ms from now: nothing new arrives, the runner must notice.
    stream.emit('data', {
      keySet: testKeySet([testKey(1, now - 1000, now - 1000), testKey(2, now, now + 150)]),
    });
    await until('first apply', () => keyApplies.length >= 1);
    assert.equal(keyApplies[0]!.encrypting, hexName(1));
    await until('re-applied at activation', () =>
      keyApplies.some((apply) => apply.encrypting === hexName(2)),
    );
    assert.deepEqual(acks[0], { ring: 'edge', nodeId: 'node-1', epoch: 2 });
    assert.ok(events.some((event) => event.event === 'key set applied'));
    assert.ok(!JSON.stringify(events).includes(Buffer.alloc(32, 2).toString('hex')), 'no secret in the log');
  } finally {
    runner.stop();
    await runner.settled();
  }
});

test('follows staple snapshots, updates and removals', async () => {
  const stream = new FakeStream();
  const staples = { watchStaples: () => stream } as unknown as Pick<StapleServiceClient, 'watchStaples'>;
  const { target, stapleApplies } = recordingTarget();
  const runner = startSyncRunner({
    target,
    ring: undefined,
    ticketKeys: undefined,
    staples,
    certificateIds: [],
    nodeId: 'node-1',
    clock: Date.now,
    log: () => undefined,
  });
  const certificate = (id: string) => ({ id, staple: undefined }) as unknown as CertificateRecord;
  try {
    stream.emit('data', { snapshot: { certificates: [certificate('a'), certificate('b')] } });
    await until('snapshot applied', () => stapleApplies.length === 1);
    stream.emit('data', { updated: certificate('c') });
    await until('update applied', () => stapleApplies.length === 2);
    stream.emit('data', { removedId: 'a' });
    await until('removal applied', () => stapleApplies.length === 3);
    stream.emit('data', { heartbeat: { serverTimeMs: 1, epoch: 0 } });
    await runner.settled();
    assert.deepEqual(
      stapleApplies,
      [
        ['a', 'b'],
        ['a', 'b', 'c'],
        ['b', 'c'],
      ],
      'a heartbeat applies nothing',
    );
    // A burst is applied with the newest state: never an older one after a newer.
    stream.emit('data', { updated: certificate('d') });
    stream.emit('data', { removedId: 'b' });
    await until('burst applied', () => stapleApplies.length === 5);
    await runner.settled();
    assert.deepEqual(stapleApplies.at(-1), ['c', 'd']);
  } finally {
    runner.stop();
  }
});

test('a failing apply is logged and retried on its own, without a new message', async () => {
  const stream = new FakeStream();
  let calls = 0;
  const target: SyncTarget = {
    kind: 'test',
    async applyKeySet() {
      calls++;
      if (calls === 1) throw new Error('disk full');
      return { changedFiles: [], liveUpdates: [], droppedKeyNames: [] };
    },
    async applyStaples() {
      return { changedFiles: [], liveUpdates: [], droppedKeyNames: [] };
    },
  };
  const events: SyncEvent[] = [];
  const { client: ticketKeys, acks: ackRequests } = ackingTicketKeys(stream);
  const acks = () => ackRequests.map((request) => request.epoch);
  const runner = startSyncRunner({
    target,
    ring: 'edge',
    ticketKeys,
    staples: undefined,
    certificateIds: [],
    nodeId: 'n',
    clock: Date.now,
    log: (event) => events.push(event),
  });
  try {
    stream.emit('data', { keySet: testKeySet([testKey(1, 0, 0)]) });
    await until('retried after the first failure (1 s)', () => calls >= 2);
    await runner.settled();
    assert.deepEqual(
      events.filter((event) => event.event === 'apply failed').map((event) => event.error),
      ['disk full'],
    );
    assert.deepEqual(acks(), [1], 'acknowledged only once applied');
  } finally {
    runner.stop();
  }
});

test('a failed reload is a failed apply: counted, not acknowledged, retried (reload included) until it works', async () => {
  const stream = new FakeStream();
  let reloads = 0;
  const target: SyncTarget = {
    kind: 'nginx',
    async applyKeySet() {
      reloads++;
      // The files changed on the first apply only; the reload is owed after that.
      return {
        changedFiles: reloads === 1 ? ['key-0.key'] : [],
        liveUpdates: [],
        droppedKeyNames: [],
        reloaded:
          reloads === 1 ? { ok: false, output: 'nginx: [emerg] bad config' } : { ok: true, output: '' },
      };
    },
    async applyStaples() {
      return { changedFiles: [], liveUpdates: [], droppedKeyNames: [] };
    },
  };
  const { client: ticketKeys, acks: ackRequests } = ackingTicketKeys(stream);
  const acks = () => ackRequests.map((request) => request.epoch);
  const registry = new Registry();
  const events: SyncEvent[] = [];
  const runner = startSyncRunner({
    target,
    ring: 'edge',
    ticketKeys,
    staples: undefined,
    certificateIds: [],
    nodeId: 'n',
    clock: Date.now,
    log: (event) => events.push(event),
    metrics: syncMetrics(registry, 'nginx', ['keys'], Date.now),
  });
  const value = async (name: string) =>
    Number(/^\S+ (\S+)$/m.exec((await registry.getSingleMetricAsString(name)).replace(/^#.*$/gm, ''))?.[1]);
  try {
    stream.emit('data', { keySet: testKeySet([testKey(1, 0, 0)]) });
    await until('the failed reload', () => events.some((event) => event.event === 'reload failed'));
    await sleep(10);
    assert.deepEqual(acks(), [], 'not acknowledged while nginx runs the old keys');
    assert.equal(await value('keyfleet_sync_reload_failures_total'), 1);
    assert.equal(await value('keyfleet_sync_apply_failures_total'), 1);
    assert.ok((await value('keyfleet_sync_last_failure_timestamp_seconds')) > 0);
    assert.equal(await value('keyfleet_sync_last_success_timestamp_seconds'), 0);
    assert.doesNotMatch(await registry.getSingleMetricAsString('keyfleet_sync_applied_epoch'), /edge/);

    await until('retried after 1 s', () => reloads >= 2);
    await runner.settled();
    assert.deepEqual(acks(), [1], 'acknowledged once the reload worked');
    assert.ok((await value('keyfleet_sync_last_success_timestamp_seconds')) > 0);
    assert.match(
      await registry.getSingleMetricAsString('keyfleet_sync_applied_epoch'),
      /keyfleet_sync_applied_epoch\{target="nginx",ring="edge"\} 1/,
    );
  } finally {
    runner.stop();
  }
});

test('a key set at a lower epoch than the one held is ignored, never applied', async () => {
  const stream = new FakeStream();
  const { client: ticketKeys } = ackingTicketKeys(stream);
  const { target, keyApplies } = recordingTarget();
  const events: SyncEvent[] = [];
  const now = Date.now();
  const runner = startSyncRunner({
    target,
    ring: 'edge',
    ticketKeys,
    staples: undefined,
    certificateIds: [],
    nodeId: 'node-1',
    clock: Date.now,
    log: (event) => events.push(event),
  });
  try {
    const newer = testKeySet([testKey(1, now - 3000, now - 3000), testKey(2, now - 2000, now - 2000)]);
    stream.emit('data', { keySet: { ...newer, epoch: 9 } });
    await until('first apply', () => keyApplies.length >= 1);
    const older = testKeySet([testKey(1, now - 3000, now - 3000)]);
    stream.emit('data', { keySet: { ...older, epoch: 4 } });
    await until('the older set is logged', () => events.some((e) => e.event === 'older key set ignored'));
    await runner.settled();
    assert.deepEqual(
      keyApplies.map((apply) => apply.epoch),
      [9],
    );
    stream.emit('data', { keySet: { ...newer, epoch: 10 } });
    await until('a newer set is applied', () => keyApplies.some((apply) => apply.epoch === 10));
  } finally {
    runner.stop();
    await runner.settled();
  }
});
