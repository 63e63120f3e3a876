/**
 * Handshakes per second against a node:tls server whose tickets come from the
 * ring through attach()'s per-ticket hook, with the same server holding one
 * static key through Node's `ticketKeys` as the baseline, measured in the same
 * run with `openssl s_time` (resumed: -reuse; full: -new; TLS 1.2, whose
 * s_time reuse works on tickets). Rounds alternate between the two servers so
 * machine noise hits both alike. BENCH_TLS_SECONDS (default 2) per round,
 * BENCH_TLS_ROUNDS (default 6) rounds per server and mode; the
 * figures are the medians of the per-round rates. A third figure runs the
 * same hook with a constant one-line handler: the floor Node's native-to-JS
 * call sets, so the gap between it and attach() is what our handler costs. A resumed figure
 * is refused unless s_time saw at least 90 % of its handshakes resume.
 */
import tls from 'node:tls';
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { createTestPki, freePort, runSTime } from '@keyfleet/test-support';
import {
  attach,
  node128Keys,
  nodeTicketKeys,
  sessionIdContextForRing,
  staticKeySource,
} from '@keyfleet/tls-engine';
import { defaultContextOf, installTicketKeyHook } from '../lib/tls-engine/src/node-tls/ticket-key-hook.js';
import { figure, percentile, type BenchFigure } from './bench-figure.js';

const seconds = Number(process.env.BENCH_TLS_SECONDS ?? 2);
const rounds = Number(process.env.BENCH_TLS_ROUNDS ?? 6);

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

export default async function run(): Promise<BenchFigure[]> {
  const pki = createTestPki(await freePort());
  const name = randomBytes(16);
  const secret = randomBytes(32);
  const now = Date.now();
  // Two keys, as in steady state: the schedule lookup does real work.
  const keys = staticKeySource(
    [
      {
        name: randomBytes(16),
        secret: randomBytes(32),
        publishedAtMs: now - 7_200_000,
        activatesAtMs: now - 7_200_000,
      },
      { name, secret, publishedAtMs: now - 3_600_000, activatesAtMs: now - 3_600_000 },
    ],
    43_200_000,
    { ring: 'bench' },
  );
  const secure = {
    cert: pki.leaf.chainPem(),
    key: pki.leaf.keyPem(),
    sessionIdContext: sessionIdContextForRing('bench'),
  };
  const onConnection = (socket: tls.TLSSocket) => {
    socket.on('error', () => {});
    socket.resume();
  };
  const hooked = tls.createServer(secure, onConnection);
  hooked.on('tlsClientError', () => {});
  const engine = attach(hooked, { keys, registry: new Registry() });
  if (engine.ticketKeyMode !== 'hook') throw new Error('the per-ticket hook is missing in this runtime');
  const baseline = tls.createServer({ ...secure, ticketKeys: nodeTicketKeys(name, secret) }, onConnection);
  baseline.on('tlsClientError', () => {});
  // The floor: the same hook answering a constant in one line. What Node's
  // native-to-JavaScript call costs by itself, whatever the handler does.
  const { hmacKey, aesKey } = node128Keys(secret);
  const constantOpen: [number, Uint8Array, Uint8Array] = [1, hmacKey, aesKey];
  const emptyHook = tls.createServer(secure, onConnection);
  emptyHook.on('tlsClientError', () => {});
  installTicketKeyHook(defaultContextOf(emptyHook)!, (_name, _iv, encrypt) =>
    encrypt ? [1, hmacKey, aesKey, name, randomBytes(16)] : constantOpen,
  );
  const ports = {
    hook: await listen(hooked),
    baseline: await listen(baseline),
    emptyHook: await listen(emptyHook),
  };
  type Variant = keyof typeof ports;

  const measure = async (reuse: boolean, variants: readonly Variant[]) => {
    const rates: Record<Variant, number[]> = { hook: [], baseline: [], emptyHook: [] };
    for (let round = 0; round < rounds; round++) {
      // Rotate the order, so no variant always runs on a warmer (or busier) machine.
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      for (const which of order) {
        const result = await runSTime({ port: ports[which], reuse, seconds, tls: '1.2' });
        // A "resumed" rate is only meaningful if the handshakes did resume.
        if (reuse && result.reusedConnections < 0.9 * result.connections) {
          throw new Error(
            `${which}: only ${result.reusedConnections} of ${result.connections} handshakes resumed`,
          );
        }
        rates[which].push(result.connectionsPerSecond);
      }
    }
    // Medians: one round disturbed by the rest of a busy machine does not move them.
    const median = (which: Variant) => percentile(rates[which], 50);
    return { hook: median('hook'), baseline: median('baseline'), emptyHook: median('emptyHook') };
  };

  try {
    const resumed = await measure(true, ['hook', 'baseline', 'emptyHook']);
    const full = await measure(false, ['hook', 'baseline']);
    return [
      figure('tls', 'resumed_handshakes_per_second', resumed.hook, 'handshakes/s', resumed.baseline),
      figure('tls', 'full_handshakes_per_second', full.hook, 'handshakes/s', full.baseline),
      figure(
        'tls',
        'resumed_handshakes_per_second_empty_hook',
        resumed.emptyHook,
        'handshakes/s',
        resumed.baseline,
      ),
    ];
  } finally {
    engine.detach();
    await Promise.all(
      [hooked, baseline, emptyHook].map((server) => new Promise((resolve) => server.close(resolve))),
    );
    pki.remove();
  }
}
