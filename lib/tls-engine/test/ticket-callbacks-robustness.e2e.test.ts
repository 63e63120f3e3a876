// The native ticket callbacks under hostile and heavy use, with real TLS
// clients (Node's, which is OpenSSL's) against a fixture server in its own
// process: 10,000 hostile tickets (random, truncated, bit-flipped, oversized)
// each end in a full handshake and the server lives on; thousands of
// resumptions grow its memory no more than the same server's without the port.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import tls from 'node:tls';
import { createTestPki, freePort, type TestPki } from '@keyfleet/test-support';
import { startFixtureServer, type FixtureServer } from './fixtures/fixture-process.js';
import type { FixtureKey } from './fixtures/fixture-protocol.js';

const HOSTILE_TICKETS = 10_000;
// KEYFLEET_TEST_RESUMPTIONS=100000 for the long measurement the README quotes.
const RESUMPTIONS = Number(process.env.KEYFLEET_TEST_RESUMPTIONS ?? 8_000);
const PARALLEL = 16;
// V8 13 and later (Node 24, 26) grow the young generation with the
// allocation rate, and keep it after a GC: on Node 24 its reserve went from
// 34 to 134 MB over 12,000 handshakes of a plain tls.Server, with 6 MB live.
// Capped, the heap stays put and RSS shows native memory, which is what a
// leak in the port would grow.
const FIXTURE_FLAGS = ['--expose-gc', '--max-semi-space-size=8'];
// glibc's malloc returns freed memory to the system when it likes (RSS fell
// by 12 MB mid-run on Node 20) and sizes its mmap threshold as it goes: one
// arena, no trimming and a fixed threshold make RSS move only when memory is
// really held, so its growth reads as what was kept.
const FIXTURE_MALLOC =
  'glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=4294967295:glibc.malloc.mmap_threshold=1048576';

let pki: TestPki;
let server: FixtureServer;

// --- a minimal DER writer/reader: enough to swap the ticket inside an SSL_SESSION ---

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, value: Buffer) =>
  Buffer.concat([Buffer.from([tag]), derLength(value.length), value]);

/** One TLV at `at`: where its content starts and where it ends. */
function readTlv(der: Buffer, at: number): { tag: number; content: number; end: number } {
  const tag = der[at]!;
  let cursor = at + 1;
  const first = der[cursor++]!;
  let length = first;
  if (first >= 0x80) {
    length = 0;
    for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + der[cursor++]!;
  }
  return { tag, content: cursor, end: cursor + length };
}

/** The children of a DER SEQUENCE, each as its whole TLV. */
function sequenceChildren(der: Buffer): Buffer[] {
  const outer = readTlv(der, 0);
  assert.equal(outer.tag, 0x30);
  const children: Buffer[] = [];
  for (let at = outer.content; at < outer.end;) {
    const child = readTlv(der, at);
    children.push(der.subarray(at, child.end));
    at = child.end;
  }
  return children;
}

/**
 * Node's session buffer: OpenSSL's SSL_SESSION ASN.1, which Node 22 and later
 * prefix with their own header (a magic string, then the server name as a
 * 16-bit length and its bytes). The header is kept as it is.
 */
const NODE_SESSION_MAGIC = Buffer.from('\0nodejs:tls:session:1\0', 'latin1');

function splitSession(session: Buffer): { header: Buffer; der: Buffer } {
  if (!session.subarray(0, NODE_SESSION_MAGIC.length).equals(NODE_SESSION_MAGIC))
    return { header: Buffer.alloc(0), der: session };
  const nameLength = session.readUInt16BE(NODE_SESSION_MAGIC.length);
  const derStart = NODE_SESSION_MAGIC.length + 2 + nameLength;
  return { header: session.subarray(0, derStart), der: session.subarray(derStart) };
}

/** The same session with its ticket ([10] EXPLICIT OCTET STRING) replaced. */
function withTicket(session: Buffer, ticket: Buffer): Buffer {
  const { header, der } = splitSession(session);
  const children = sequenceChildren(der).map((child) =>
    child[0] === 0xaa ? tlv(0xaa, tlv(0x04, ticket)) : child,
  );
  return Buffer.concat([header, tlv(0x30, Buffer.concat(children))]);
}

function ticketOf(session: Buffer): Buffer {
  const explicit = sequenceChildren(splitSession(session).der).find((entry) => entry[0] === 0xaa);
  assert.ok(explicit, 'the session carries a ticket');
  const octets = readTlv(explicit, readTlv(explicit, 0).content);
  return explicit.subarray(octets.content, octets.end);
}

// --- handshakes ---

interface Outcome {
  readonly ok: boolean;
  readonly reused: boolean;
  readonly session: Buffer | undefined;
  readonly error?: string;
}

function handshake(
  version: 'TLSv1.2' | 'TLSv1.3',
  session?: Buffer,
  target: FixtureServer = server,
): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    let received: Buffer | undefined;
    const socket = tls.connect({
      host: '127.0.0.1',
      port: target.port,
      rejectUnauthorized: false,
      minVersion: version,
      maxVersion: version,
      ...(session ? { session } : {}),
    });
    const finish = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(
      () => finish({ ok: false, reused: false, session: undefined, error: 'timeout' }),
      10_000,
    );
    socket.on('session', (data: Buffer) => {
      received = data;
      // TLS 1.3 tickets arrive after the handshake; the first one is enough.
      if (version === 'TLSv1.3') finish({ ok: true, reused: socket.isSessionReused(), session: received });
    });
    socket.once('secureConnect', () => {
      if (version === 'TLSv1.2')
        finish({ ok: true, reused: socket.isSessionReused(), session: socket.getSession() });
      // A resumed TLS 1.3 session under USE gets no new ticket: done at once.
      else if (socket.isSessionReused()) finish({ ok: true, reused: true, session: received });
    });
    socket.once('error', (error: Error) =>
      finish({ ok: false, reused: false, session: undefined, error: error.message }),
    );
  });
}

async function inParallel<T>(count: number, run: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await run(index);
      }
    }),
  );
  return results;
}

function hostileTicket(real: Buffer, index: number): Buffer {
  switch (index % 4) {
    case 0:
      return randomBytes(randomInt(1, 400));
    case 1:
      return real.subarray(0, randomInt(1, real.length));
    case 2: {
      // 1 to 3 distinct bits, so two flips never cancel into the real ticket.
      const flipped = Buffer.from(real);
      const bits = new Set<number>();
      const wanted = randomInt(1, 4);
      while (bits.size < wanted) bits.add(randomInt(0, real.length * 8));
      for (const bit of bits) flipped[bit >> 3] = flipped[bit >> 3]! ^ (1 << (bit & 7));
      return flipped;
    }
    default:
      // Far past the engine's 16 KiB ticket limit, still a legal ClientHello.
      return randomBytes(randomInt(16_385, 40_000));
  }
}

const KEYS: FixtureKey[] = [
  {
    name: randomBytes(16).toString('hex'),
    secret: randomBytes(32).toString('hex'),
    publishedAtMs: Date.now() - 5000,
    activatesAtMs: Date.now() - 1000,
  },
];

/** A fixture server for this file: its flags and allocator settings, its key, no decision log. */
async function startRobustnessFixture(
  name: string,
  env: Record<string, string> = {},
): Promise<FixtureServer> {
  const fixture = await startFixtureServer(
    {
      FIXTURE_CERT: pki.leaf.chainPath,
      FIXTURE_KEY: pki.leaf.keyPath,
      GLIBC_TUNABLES: FIXTURE_MALLOC,
      ...env,
    },
    name,
    FIXTURE_FLAGS,
  );
  await fixture.send({ type: 'keys', keys: KEYS, revoked: [] });
  // Decisions are not kept for reading back here: there are tens of thousands.
  await fixture.send({ type: 'policy', record: false });
  return fixture;
}

before(async () => {
  pki = createTestPki(await freePort());
  server = await startRobustnessFixture('robustness');
  assert.equal(server.callbacks, 'native');
});

after(async () => {
  await server?.stop();
  pki?.remove();
});

describe('hostile tickets through real TLS clients', () => {
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    test(`${version}: ${HOSTILE_TICKETS / 2} hostile tickets each end in a full handshake, and the server lives on`, async () => {
      const base = await handshake(version);
      assert.ok(base.ok && base.session, base.error);
      const real = ticketOf(base.session);
      const outcomes = await inParallel(HOSTILE_TICKETS / 2, (index) =>
        handshake(version, withTicket(base.session!, hostileTicket(real, index))),
      );
      const failed = outcomes.filter((outcome) => !outcome.ok);
      const resumed = outcomes.filter((outcome) => outcome.reused);
      assert.deepEqual(failed.slice(0, 3), [], `${failed.length} handshakes failed`);
      assert.equal(resumed.length, 0, 'a hostile ticket resumed');
      assert.equal(server.child.exitCode, null, 'the server process is alive');
      // And the real ticket still resumes.
      assert.ok((await handshake(version, base.session)).reused);
      const metrics = (await server.send({ type: 'metrics' })) as string;
      assert.match(metrics, /decision="IGNORE_RENEW",reason="(AUTH_FAILED|UNKNOWN_KEY|MALFORMED)"\} [1-9]/);
    });
  }
});

/** `target`'s memory (after a GC) every `step` resumptions, `samples` times. */
async function memorySeries(
  target: FixtureServer,
  samples: number,
  step: number,
): Promise<NodeJS.MemoryUsage[]> {
  const series: NodeJS.MemoryUsage[] = [];
  // The fixture's session timeout is its ring's ticket lifetime (60 s): a
  // fresh session per step keeps every handshake a resumption.
  for (let sample = 0; sample < samples; sample++) {
    const base = await handshake('TLSv1.2', undefined, target);
    assert.ok(base.ok && base.session, base.error);
    const outcomes = await inParallel(step, () => handshake('TLSv1.2', base.session, target));
    assert.ok(
      outcomes.every((outcome) => outcome.reused),
      'every handshake resumed',
    );
    series.push((await target.send({ type: 'memory' })) as NodeJS.MemoryUsage);
  }
  return series;
}

/**
 * How much a figure grows over the second half of a series, steadily: the
 * median of its step-to-step changes times the number of steps. A leak grows
 * it at every step; the runtime's one-off growth (V8 adding pages, glibc
 * extending its heap by a few MB once) is a single step the median ignores.
 * The first half is warm-up (caches, free lists, JIT).
 */
function steadyGrowthOverSecondHalf(series: NodeJS.MemoryUsage[], figure: keyof NodeJS.MemoryUsage): number {
  const half = series.slice(series.length / 2).map((usage) => usage[figure]);
  const steps = half.slice(1).map((bytes, index) => bytes - half[index]!);
  const median = [...steps].sort((a, b) => a - b)[Math.floor(steps.length / 2)]!;
  return Math.max(0, median) * steps.length;
}

describe('memory under resumption', () => {
  test(`${RESUMPTIONS} resumptions keep the server's heap flat and grow its RSS no more than without the port`, async () => {
    // The baseline: the same server with OpenSSL's ticket callbacks not
    // installed (Node's own ticket-key hook), measured in this run, so what
    // the runtime itself keeps is not blamed on the port.
    const baseline = await startRobustnessFixture('robustness-baseline', { FIXTURE_TICKET_CALLBACKS: 'off' });
    try {
      assert.equal(baseline.callbacks, 'off');
      const step = RESUMPTIONS / 16;
      const measured = RESUMPTIONS / 2;
      const withoutPort = await memorySeries(baseline, 16, step);
      const withPort = await memorySeries(server, 16, step);
      const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(2);
      for (const [label, series] of [
        ['with the port', withPort],
        ['without', withoutPort],
      ] as const)
        process.stderr.write(
          `rss MB every ${step} resumptions ${label}: ${series.map((usage) => mb(usage.rss)).join(' ')}\n`,
        );
      const gained = (figure: keyof NodeJS.MemoryUsage) =>
        `${figure} grew steadily by ${mb(steadyGrowthOverSecondHalf(withPort, figure))} MB over ${measured} ` +
        `resumptions with the port, ${mb(steadyGrowthOverSecondHalf(withoutPort, figure))} MB without`;
      // What the port hands JavaScript (handles, buffers) is V8's: exact
      // after a GC. 256 KB over the 4,000 measured by default is 64 bytes
      // a handshake.
      for (const figure of ['heapUsed', 'arrayBuffers'] as const)
        assert.ok(steadyGrowthOverSecondHalf(withPort, figure) < 256 * 1024, gained(figure));
      // What it holds of OpenSSL's (a session, a certificate) shows only in
      // RSS, once the allocator's free lists are used up: a coarser bound.
      // A 2 KB malloc leaked per decrypt callback, put in on purpose, showed
      // here as 8 MB; 300 bytes a call hid in the free lists at this count.
      assert.ok(
        steadyGrowthOverSecondHalf(withPort, 'rss') - steadyGrowthOverSecondHalf(withoutPort, 'rss') <
          1024 * 1024,
        gained('rss'),
      );
    } finally {
      await baseline.stop();
    }
  });
});
