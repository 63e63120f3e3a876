/**
 * Resumed and full handshakes against node:tls servers in this process, with
 * `openssl s_time` as the client (resumed: -reuse; full: -new; TLS 1.2, whose
 * s_time reuse works on tickets). The baseline is the same server holding one
 * static key through Node's `ticketKeys`; the others are attach() with Node's
 * per-ticket key hook only (`ticketCallbacks: 'off'`), attach() with the hook
 * plus OpenSSL's session-ticket callbacks through the native port (the
 * default), and the hook with a constant one-line handler (the floor Node's
 * native-to-JS call sets). Rounds rotate between the servers so machine noise
 * hits all alike. BENCH_TLS_SECONDS (default 2) per round, BENCH_TLS_ROUNDS
 * (default 6) rounds per server and mode; figures are medians of per-round
 * values. A resumed figure is refused unless s_time saw at least 90 % of its
 * handshakes resume.
 *
 * Method change (native callbacks): besides the rates, each resumed round now
 * reports server CPU microseconds per handshake: process.cpuUsage() (user +
 * system) across the round divided by the handshakes the server completed in
 * it (counted on 'secureConnection'). s_time runs in its own process, so this
 * is the server's cost. Throughput swings on this machine between runs; the
 * CPU figure is the one to compare. Until then "resumed_handshakes_per_second"
 * measured the hook without callbacks (now "…_hook_only").
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
  const engine = attach(hooked, { keys, registry: new Registry(), ticketCallbacks: 'off' });
  if (engine.ticketKeyMode !== 'hook') throw new Error('the per-ticket hook is missing in this runtime');
  const withCallbacks = tls.createServer(secure, onConnection);
  withCallbacks.on('tlsClientError', () => {});
  const callbackEngine = attach(withCallbacks, { keys, registry: new Registry() });
  if (callbackEngine.ticketCallbacks !== 'native') {
    throw new Error("the native port did not load: run 'node scripts/build-native.mjs'");
  }
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
  const servers = { hook: hooked, callbacks: withCallbacks, baseline, emptyHook };
  type Variant = keyof typeof servers;
  const ports = {} as Record<Variant, number>;
  const completed = {} as Record<Variant, number>;
  for (const [which, server] of Object.entries(servers) as [Variant, tls.Server][]) {
    ports[which] = await listen(server);
    completed[which] = 0;
    server.on('secureConnection', () => completed[which]++);
  }

  const measure = async (reuse: boolean, variants: readonly Variant[]) => {
    const rates: Record<Variant, number[]> = { hook: [], callbacks: [], baseline: [], emptyHook: [] };
    const cpuMicros: Record<Variant, number[]> = { hook: [], callbacks: [], baseline: [], emptyHook: [] };
    for (let round = 0; round < rounds; round++) {
      // Rotate the order, so no variant always runs on a warmer (or busier) machine.
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      for (const which of order) {
        const before = completed[which];
        const cpu = process.cpuUsage();
        const result = await runSTime({ port: ports[which], reuse, seconds, tls: '1.2' });
        const used = process.cpuUsage(cpu);
        const handshakes = completed[which] - before;
        if (handshakes > 0) cpuMicros[which].push((used.user + used.system) / handshakes);
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
    const cpu = (which: Variant) => percentile(cpuMicros[which], 50);
    return {
      hook: median('hook'),
      callbacks: median('callbacks'),
      baseline: median('baseline'),
      emptyHook: median('emptyHook'),
      cpu: {
        hook: cpu('hook'),
        callbacks: cpu('callbacks'),
        baseline: cpu('baseline'),
        emptyHook: cpu('emptyHook'),
      },
    };
  };

  try {
    const resumed = await measure(true, ['callbacks', 'hook', 'baseline', 'emptyHook']);
    const full = await measure(false, ['callbacks', 'baseline']);
    return [
      figure(
        'tls',
        'server_cpu_us_per_resumed_handshake_callbacks',
        resumed.cpu.callbacks,
        'µs',
        resumed.cpu.baseline,
      ),
      figure(
        'tls',
        'server_cpu_us_per_resumed_handshake_hook_only',
        resumed.cpu.hook,
        'µs',
        resumed.cpu.baseline,
      ),
      figure(
        'tls',
        'server_cpu_us_per_resumed_handshake_empty_hook',
        resumed.cpu.emptyHook,
        'µs',
        resumed.cpu.baseline,
      ),
      figure(
        'tls',
        'server_cpu_us_per_resumed_handshake_static',
        resumed.cpu.baseline,
        'µs',
        resumed.cpu.baseline,
      ),
      figure('tls', 'resumed_handshakes_per_second', resumed.callbacks, 'handshakes/s', resumed.baseline),
      figure(
        'tls',
        'resumed_handshakes_per_second_hook_only',
        resumed.hook,
        'handshakes/s',
        resumed.baseline,
      ),
      figure('tls', 'full_handshakes_per_second', full.callbacks, 'handshakes/s', full.baseline),
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
    callbackEngine.detach();
    await Promise.all(
      [hooked, withCallbacks, baseline, emptyHook].map(
        (server) => new Promise((resolve) => server.close(resolve)),
      ),
    );
    pki.remove();
  }
}
