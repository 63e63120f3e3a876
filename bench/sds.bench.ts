/**
 * SDS fan-out: time from a Rotate RPC being sent to the new key arriving on
 * every one of 100 Envoy SecretDiscoveryService streams (p50 and p99 over the
 * rounds, in ms), against the WatchKeySet fan-out to 100 watchers measured in
 * the same run (ratio = value / baseline, as everywhere: below 1 means SDS is
 * faster). The service runs in-process on its own redis-server, scheduler off.
 *
 * Method. Two rings with the same parameters (a 1 h rotation interval and a
 * 30 min propagation delay, so no key activates and the scheduler never fires
 * during the run): `bench-sds` has 100 StreamSecrets streams built from
 * Envoy's protos, each behaving as Envoy does (the first request names the
 * node `bench-<i>` and `ticket-keys/bench-sds`, every response is ACKed with
 * its version and nonce); `bench-watch` has 100 WatchKeySet watchers (as in
 * rotation.bench.ts, no AckKeySet). Every round rotates each ring once, one
 * after the other, and the first of the two alternates from round to round.
 * Only the rotated ring's streams get a push, so the other set sits idle: the
 * two fan-outs never compete for the service or the client, both rings hold
 * the same number of keys at the same round (each Rotate adds one PENDING key,
 * so the sets grow by one key a round), and drift (GC, JIT, Redis) falls on
 * both alike. A round's time runs from sending Rotate to the moment the last
 * stream of the set received a message holding the new key's name (the
 * Rotate response's published_key_name; in SDS the first 16 bytes of an
 * 80-byte session ticket key): arrival times are stamped as the messages
 * come, including those that beat the Rotate response, and the slowest
 * stream's stamp is the round's time. Decoding the Secret is part of
 * receiving it, as for Envoy; the SDS ACK is sent after the stamp. Every
 * stream has its own HTTP/2 connection, as every Envoy or node has (and the
 * server admits at most 100 streams per connection), and Rotate goes over a
 * connection of its own. After every round the bench idles settleMs, so
 * the work a round leaves behind (the 100 SDS ACKs, each written to Redis for
 * ack coverage, go on after the last stream has its key) does not fall into
 * the next round. The first rounds warm up and are not counted.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { TicketKeyServiceClient, type RotateResponse, type WatchKeySetResponse } from '@keyfleet/proto';
import {
  secretDiscoveryClient,
  secretTypeUrl,
  unpackSecret,
  type DiscoveryResponse,
} from '@keyfleet/service-kit';
import { keyNameHex } from '@keyfleet/tls-engine';
import { putBenchRing, startBenchTicketKeys, unary } from './bench-ticket-keys.js';
import { figure, percentile, startTimer, type BenchFigure } from './bench-figure.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 40);
const warmupRounds = 3;
const streamCount = 100;
const roundTimeoutMs = 15_000;
/** Idle time after each round, for the ACKs and writes it started to finish. */
const settleMs = 100;
const sdsRing = 'bench-sds';
const watchRing = 'bench-watch';

/** Hands a stream's message on as the key names it holds. */
type Deliver = (names: readonly Buffer[]) => void;

interface StreamState {
  /** Messages of this round that came before the new key's name was known. */
  log: { at: number; names: readonly Buffer[] }[];
  /** When this stream first held the new key, in ms since the round's Rotate was sent. */
  arrivedAt: number | undefined;
  /** Whether the initial key set came (it opens the stream and is not timed). */
  opened: boolean;
}

/** N streams of one kind, each stamping when it first holds a given key name. */
class StreamSet {
  private readonly streams: StreamState[] = [];
  private readonly closers: (() => void)[] = [];
  private clock: () => number = () => 0;
  private target: Buffer | undefined;
  private missing = 0;
  private settle: ((error?: Error) => void) | undefined;
  private failure: Error | undefined;
  private closing = false;
  private unopened: number;
  private onOpened: (() => void) | undefined;

  constructor(
    readonly label: string,
    count: number,
    open: (i: number, deliver: Deliver, fail: (error: Error) => void) => () => void,
  ) {
    this.unopened = count;
    for (let i = 0; i < count; i++) {
      const stream: StreamState = { log: [], arrivedAt: undefined, opened: false };
      this.streams.push(stream);
      const deliver: Deliver = (names) => {
        if (!stream.opened) {
          stream.opened = true;
          if (--this.unopened === 0) this.onOpened?.();
          return;
        }
        if (this.target === undefined) {
          stream.log.push({ at: this.clock(), names });
        } else if (stream.arrivedAt === undefined && names.some((name) => name.equals(this.target!))) {
          stream.arrivedAt = this.clock();
          if (--this.missing === 0) this.settle?.();
        }
      };
      const fail = (error: Error) => {
        if (this.closing) return;
        this.failure ??= new Error(`${label} stream ${i}: ${error.message}`);
        this.settle?.(this.failure);
        this.onOpened?.();
      };
      this.closers.push(open(i, deliver, fail));
    }
  }

  /** Resolves once every stream has received its initial key set. */
  opened(timeoutMs = roundTimeoutMs): Promise<void> {
    return this.within(
      timeoutMs,
      () => `${this.label}: ${this.unopened} streams not open`,
      (resolve) => {
        if (this.unopened === 0 || this.failure) return resolve();
        this.onOpened = resolve;
      },
    );
  }

  /** One round: `rotate` sends Rotate and returns the new key's name; resolves with the round's ms. */
  async round(rotate: () => Promise<Buffer>): Promise<number> {
    this.throwIfFailed();
    for (const stream of this.streams) {
      stream.log = [];
      stream.arrivedAt = undefined;
    }
    this.target = undefined;
    this.clock = startTimer();
    const name = await rotate();
    this.target = name;
    this.missing = 0;
    for (const stream of this.streams) {
      stream.arrivedAt = stream.log.find((entry) => entry.names.some((n) => n.equals(name)))?.at;
      stream.log = [];
      if (stream.arrivedAt === undefined) this.missing++;
    }
    if (this.missing > 0) {
      const reached = () =>
        `${this.label}: key ${keyNameHex(name)} reached ${this.streams.length - this.missing}/${this.streams.length} streams`;
      try {
        await this.within(roundTimeoutMs, reached, (resolve, reject) => {
          this.settle = (error) => (error ? reject(error) : resolve());
        });
      } finally {
        this.settle = undefined;
      }
    }
    this.throwIfFailed();
    return Math.max(...this.streams.map((stream) => stream.arrivedAt!));
  }

  /** A method, not an inline check: a check inside `round` would narrow the field across its awaits. */
  private throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  close(): void {
    this.closing = true;
    for (const close of this.closers) close();
  }

  private within(
    timeoutMs: number,
    what: () => string,
    start: (resolve: () => void, reject: (error: Error) => void) => void,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what()} within ${timeoutMs} ms`)), timeoutMs);
      const done = (error?: Error) => {
        clearTimeout(timer);
        if (error ?? this.failure) reject(error ?? this.failure!);
        else resolve();
      };
      start(
        () => done(),
        (error) => done(error),
      );
    });
  }
}

/** A client on a connection of its own (grpc-js otherwise shares one per target). */
const ownConnection: grpc.ChannelOptions = { 'grpc.use_local_subchannel_pool': 1 };

/** Envoy's side of one StreamSecrets stream: subscribe, decode, ACK every response. */
function openSdsStream(
  target: string,
  i: number,
  deliver: Deliver,
  fail: (error: Error) => void,
): () => void {
  const sds = secretDiscoveryClient(target, grpc.credentials.createInsecure(), ownConnection);
  const resource = `ticket-keys/${sdsRing}`;
  const call = sds.StreamSecrets();
  call.on('data', (response: DiscoveryResponse) => {
    const names: Buffer[] = [];
    for (const packed of response.resources) {
      for (const key of unpackSecret(packed).session_ticket_keys?.keys ?? []) {
        if (key.inline_bytes.length !== 80) return fail(new Error(`a ${key.inline_bytes.length}-byte key`));
        names.push(key.inline_bytes.subarray(0, 16));
      }
    }
    deliver(names);
    call.write({
      version_info: response.version_info,
      resource_names: [resource],
      type_url: secretTypeUrl,
      response_nonce: response.nonce,
    });
  });
  call.on('error', fail);
  call.write({
    node: { id: `bench-${i}`, cluster: 'bench' },
    resource_names: [resource],
    type_url: secretTypeUrl,
  });
  return () => {
    call.cancel();
    sds.close();
  };
}

export default async function run(): Promise<BenchFigure[]> {
  const { service, stop } = await startBenchTicketKeys();
  const target = `127.0.0.1:${service.port}`;
  const client = new TicketKeyServiceClient(target, grpc.credentials.createInsecure(), ownConnection);
  const rotate = (ring: string) => async () =>
    (await unary<RotateResponse>((cb) => client.rotate({ ring, reason: 'bench' }, cb))).publishedKeyName;

  const sets: StreamSet[] = [];
  try {
    for (const ring of [sdsRing, watchRing]) {
      await putBenchRing(client, ring, 1_800_000);
    }
    const sdsStreams = new StreamSet('SDS', streamCount, (i, deliver, fail) =>
      openSdsStream(target, i, deliver, fail),
    );
    sets.push(sdsStreams);
    const watchers = new StreamSet('WatchKeySet', streamCount, (i, deliver, fail) => {
      const watcher = new TicketKeyServiceClient(target, grpc.credentials.createInsecure(), ownConnection);
      const stream = watcher.watchKeySet({
        ring: watchRing,
        nodeId: `bench-watch-${i}`,
        heartbeatIntervalMs: 60_000,
      });
      stream.on('data', (message: WatchKeySetResponse) => {
        if (message.keySet) deliver(message.keySet.keys.map((key) => key.name));
      });
      stream.on('error', fail);
      return () => {
        stream.cancel();
        watcher.close();
      };
    });
    sets.push(watchers);
    await Promise.all([sdsStreams.opened(), watchers.opened()]);

    const sdsSamples: number[] = [];
    const watchSamples: number[] = [];
    for (let round = 0; round < warmupRounds + rounds; round++) {
      const measure = async (set: StreamSet, ring: string) => {
        const ms = await set.round(rotate(ring));
        await sleep(settleMs);
        return ms;
      };
      const sdsMs = () => measure(sdsStreams, sdsRing);
      const watchMs = () => measure(watchers, watchRing);
      let sdsTime: number;
      let watchTime: number;
      if (round % 2 === 0) {
        sdsTime = await sdsMs();
        watchTime = await watchMs();
      } else {
        watchTime = await watchMs();
        sdsTime = await sdsMs();
      }
      if (round >= warmupRounds) {
        sdsSamples.push(sdsTime);
        watchSamples.push(watchTime);
      }
    }
    return [
      figure(
        'sds',
        `sds_${streamCount}_streams_p50`,
        percentile(sdsSamples, 50),
        'ms',
        percentile(watchSamples, 50),
      ),
      figure(
        'sds',
        `sds_${streamCount}_streams_p99`,
        percentile(sdsSamples, 99),
        'ms',
        percentile(watchSamples, 99),
      ),
    ];
  } finally {
    for (const set of sets) set.close();
    client.close();
    await stop();
  }
}
