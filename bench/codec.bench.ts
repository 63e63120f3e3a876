// Engine codec throughput on one core: generate, and decrypt + decide, for a
// 256-byte session with 64 bytes of appdata, against node:crypto AES-256-GCM
// sealing and opening the same payload, measured in the same run.
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { Registry } from 'prom-client';
import {
  createTicketEngine,
  createTicketKeyRing,
  nobleTicketAead,
  staticKeyRingSource,
  type TicketEngine,
} from '@keyfleet/tls-engine';
import { figure as benchFigure, type BenchFigure } from './bench-figure.js';

const session = randomBytes(256);
const appdata = randomBytes(64);
const roundMs = Number(process.env.BENCH_ROUND_MS ?? 200);
const rounds = Number(process.env.BENCH_ROUNDS ?? 15);

/**
 * Operations per second of each operation: every round runs each operation
 * for roundMs back to back; `rates` are the medians over the rounds and
 * `samples` the per-round figures (for ratios paired within a round, which
 * a loaded machine's swings affect far less than a ratio of medians).
 */
function ratesOf(operations: Record<string, () => void>): {
  rates: Record<string, number>;
  samples: Record<string, number[]>;
} {
  const samples: Record<string, number[]> = Object.fromEntries(
    Object.keys(operations).map((name) => [name, []]),
  );
  for (const operation of Object.values(operations)) for (let i = 0; i < 2000; i++) operation(); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const [name, operation] of Object.entries(operations)) {
      let count = 0;
      const start = performance.now();
      let elapsed = 0;
      while (elapsed < roundMs) {
        for (let i = 0; i < 200; i++) operation();
        count += 200;
        elapsed = performance.now() - start;
      }
      samples[name]!.push((count * 1000) / elapsed);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
  return {
    rates: Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)])),
    samples,
  };
}

/** The median over rounds of value / baseline measured in the same round. */
function pairedRatio(values: number[], baselines: number[]): number {
  const ratios = values.map((value, round) => value / baselines[round]!).sort((a, b) => a - b);
  return Math.round(ratios[ratios.length >> 1]! * 1000) / 1000;
}

function engineWith(aead?: typeof nobleTicketAead): TicketEngine {
  const keys = createTicketKeyRing({
    ring: 'bench',
    epoch: 1,
    keys: [{ name: randomBytes(16), secret: randomBytes(32), publishedAtMs: 0, activatesAtMs: 0 }],
  });
  return createTicketEngine({
    ring: 'bench',
    keys: staticKeyRingSource(keys),
    metrics: new Registry(),
    ...(aead ? { aead } : {}),
  });
}

export default async function run(): Promise<BenchFigure[]> {
  const engine = engineWith();
  const reference = engineWith(nobleTicketAead);
  const ticket = engine.generate(session, appdata).ticket;
  const referenceTicket = reference.generate(session, appdata).ticket;

  // The baseline: the same plaintext AES-256-GCM-sealed with a random 96-bit nonce and a similar AAD.
  const gcmKey = randomBytes(32);
  const aad = randomBytes(24);
  const plaintext = Buffer.concat([Buffer.alloc(15), session, appdata]);
  // Nonces from a pool refilled every 256 seals, as the engine's codec draws its own: the
  // comparison is about the cipher and the codec, not about how often the CSPRNG is called.
  const noncePool = Buffer.alloc(12 * 256);
  let nonceOffset = noncePool.length;
  const gcmSeal = () => {
    if (nonceOffset === noncePool.length) {
      randomFillSync(noncePool);
      nonceOffset = 0;
    }
    const nonce = noncePool.subarray(nonceOffset, (nonceOffset += 12));
    const cipher = createCipheriv('aes-256-gcm', gcmKey, nonce);
    cipher.setAAD(aad);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([nonce, body, cipher.getAuthTag()]);
  };
  const sealed = gcmSeal();
  const gcmOpen = () => {
    const decipher = createDecipheriv('aes-256-gcm', gcmKey, sealed.subarray(0, 12));
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
  };

  const { rates, samples } = ratesOf({
    generate: () => engine.generate(session, appdata),
    decrypt: () => engine.decrypt(ticket),
    nobleGenerate: () => reference.generate(session, appdata),
    nobleDecrypt: () => reference.decrypt(referenceTicket),
    gcmSeal,
    gcmOpen,
  });
  // value and baseline are medians; ratio is the median of the per-round ratios.
  const figure = (metric: string, value: string, baseline: string): BenchFigure => ({
    ...benchFigure('codec', metric, Math.round(rates[value]!), 'ops/s', Math.round(rates[baseline]!)),
    ratio: pairedRatio(samples[value]!, samples[baseline]!),
  });
  return [
    figure('generate (256 B session + 64 B appdata) vs AES-256-GCM seal', 'generate', 'gcmSeal'),
    figure('decrypt+decide vs AES-256-GCM open', 'decrypt', 'gcmOpen'),
    figure('generate, @noble/ciphers reference AEAD, vs AES-256-GCM seal', 'nobleGenerate', 'gcmSeal'),
    figure('decrypt+decide, @noble/ciphers reference AEAD, vs AES-256-GCM open', 'nobleDecrypt', 'gcmOpen'),
  ];
}
