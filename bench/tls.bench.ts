/**
 * Handshakes per second against a node:tls server whose tickets come from the
 * ring through attach()'s per-ticket hook, with the same server holding one
 * static key through Node's `ticketKeys` as the baseline, measured in the same
 * run with `openssl s_time` (resumed: -reuse; full: -new; TLS 1.2, whose
 * s_time reuse works on tickets). Rounds alternate between the two servers so
 * machine noise hits both alike. BENCH_TLS_SECONDS (default 2) per round,
 * BENCH_TLS_ROUNDS (default 6) rounds per server and mode; the
 * figures are the medians of the per-round rates. A resumed figure
 * is refused unless s_time saw at least 90 % of its handshakes resume.
 */
import tls from 'node:tls';
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { createTestPki, freePort, runSTime } from '@keyfleet/test-support';
import { attach, nodeTicketKeys, sessionIdContextForRing, staticKeySource } from '@keyfleet/tls-engine';
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
  const hookedPort = await listen(hooked);
  const baselinePort = await listen(baseline);

  const measure = async (reuse: boolean) => {
    const rates = { hook: [] as number[], baseline: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first, so neither always runs on a warmer machine.
      const order = round % 2 === 0 ? (['hook', 'baseline'] as const) : (['baseline', 'hook'] as const);
      for (const which of order) {
        const port = which === 'hook' ? hookedPort : baselinePort;
        const result = await runSTime({ port, reuse, seconds, tls: '1.2' });
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
    return { hook: percentile(rates.hook, 50), baseline: percentile(rates.baseline, 50) };
  };

  try {
    const resumed = await measure(true);
    const full = await measure(false);
    return [
      figure('tls', 'resumed_handshakes_per_second', resumed.hook, 'handshakes/s', resumed.baseline),
      figure('tls', 'full_handshakes_per_second', full.hook, 'handshakes/s', full.baseline),
    ];
  } finally {
    engine.detach();
    await Promise.all([hooked, baseline].map((server) => new Promise((resolve) => server.close(resolve))));
    pki.remove();
  }
}
