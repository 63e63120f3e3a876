// OpenSSL's session-ticket callbacks (the native port) inside real handshakes:
// fixture servers in their own processes, `openssl s_client` as the client,
// over TLS 1.2 and 1.3. Every status is reached, every decision shows its
// effect on the wire, appdata crosses processes, and the ring's rules hold.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import {
  createTestPki,
  freePort,
  makeTempDir,
  runSClient,
  sessionTicketHex,
  sessionTicketKeyName,
  type SClientOptions,
  type TestPki,
  type TlsVersion,
} from '@keyfleet/test-support';
import { newFixtureKey, startFixtureServer, type FixtureServer } from './fixtures/fixture-process.js';
import type { FixtureKey, FixtureRules, ObservedDecision } from './fixtures/fixture-protocol.js';

let pki: TestPki;
let dir: { path: string; remove(): void };
const servers: FixtureServer[] = [];
let fileCounter = 0;
const sessionFile = () => path.join(dir.path, `session-${++fileCounter}.pem`);

const newKey = newFixtureKey;

async function start(name: string, env: Record<string, string> = {}): Promise<FixtureServer> {
  const server = await startFixtureServer(
    { FIXTURE_CERT: pki.leaf.chainPath, FIXTURE_KEY: pki.leaf.keyPath, ...env },
    name,
  );
  servers.push(server);
  return server;
}

async function feed(targets: FixtureServer[], keys: FixtureKey[], rules?: FixtureRules): Promise<void> {
  await Promise.all(targets.map((server) => server.send({ type: 'keys', keys, revoked: [], rules })));
}

const observed = async (server: FixtureServer) =>
  (await server.send({ type: 'observed' })) as ObservedDecision[];
const metricsOf = async (server: FixtureServer) => (await server.send({ type: 'metrics' })) as string;

/** A copy of a session file whose ticket has one byte flipped (in Node's IV, which the HMAC covers). */
function corruptedSession(file: string): string {
  const pem = readFileSync(file, 'utf8');
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const ticket = Buffer.from(sessionTicketHex(file)!, 'hex');
  const at = der.indexOf(ticket);
  assert.ok(at > 0, 'the ticket is inside the session DER');
  der[at + 20] = der[at + 20]! ^ 0x01;
  const out = sessionFile();
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n');
  writeFileSync(
    out,
    `-----BEGIN SSL SESSION PARAMETERS-----\n${body}\n-----END SSL SESSION PARAMETERS-----\n`,
  );
  return out;
}

before(async () => {
  pki = createTestPki(await freePort());
  dir = makeTempDir('ticket-callbacks');
});

after(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  pki?.remove();
  dir?.remove();
});

for (const tls of ['1.2', '1.3'] as TlsVersion[]) {
  describe(`TLS ${tls}: OpenSSL's session-ticket callbacks in real handshakes`, () => {
    let a: FixtureServer;
    let b: FixtureServer;
    let stranger: FixtureServer;
    const t0 = Date.now() - 1000;
    const k1 = newKey(t0 - 5000, t0);
    const sClient = (server: FixtureServer, options: Omit<SClientOptions, 'port'> = {}) =>
      runSClient({ port: server.port, tls, ...options });
    /** A session from `server`, with its ticket (hex) and the key it names. */
    const freshSession = async (server: FixtureServer, options: Omit<SClientOptions, 'port'> = {}) => {
      const file = sessionFile();
      const result = await sClient(server, { ...options, sessOut: file });
      assert.ok(result.connected && !result.reused, result.output);
      return { file, ticket: sessionTicketHex(file)!, keyName: sessionTicketKeyName(file) };
    };

    before(async () => {
      [a, b, stranger] = await Promise.all([
        start(`a-${tls}`, { FIXTURE_NODE_ID: 'node-a', FIXTURE_APPDATA: 'hello from a' }),
        start(`b-${tls}`, { FIXTURE_NODE_ID: 'node-b' }),
        start(`stranger-${tls}`),
      ]);
      assert.equal(a.callbacks, 'native', 'the native port loaded');
      await feed([a, b], [k1]);
      // Another ring's keys: its tickets name a key the ring never held.
      await feed([stranger], [newKey(t0 - 5000, t0)]);
    });

    test('statuses: EMPTY (TLS 1.2 only), SUCCESS, NO_DECRYPT for an unknown key and for altered bytes', async () => {
      await observed(a);
      const session = await freshSession(a);
      const first = await observed(a);
      if (tls === '1.2') {
        // s_client offers an empty SessionTicket extension on a fresh 1.2 connection.
        assert.deepEqual(
          first.map((entry) => [entry.status, entry.decision, entry.reason]),
          [['EMPTY', 'IGNORE_RENEW', 'EMPTY']],
        );
      } else {
        // TLS 1.3 has no empty ticket: without a PSK offered the callback never runs.
        assert.deepEqual(first, []);
      }
      assert.equal(session.keyName, k1.name);

      assert.ok((await sClient(a, { sessIn: session.file })).reused);
      assert.deepEqual(
        (await observed(a)).map((entry) => [entry.status, entry.decision, entry.reason, entry.keyState]),
        [['SUCCESS', 'USE', 'OK', 'active']],
      );

      const altered = await sClient(a, { sessIn: corruptedSession(session.file) });
      assert.ok(altered.connected && !altered.reused, altered.output);
      assert.deepEqual(
        (await observed(a)).map((entry) => [entry.status, entry.decision, entry.reason]),
        [['NO_DECRYPT', 'IGNORE_RENEW', 'AUTH_FAILED']],
      );

      const foreign = await freshSession(stranger);
      const unknown = await sClient(a, { sessIn: foreign.file });
      assert.ok(unknown.connected && !unknown.reused, unknown.output);
      assert.deepEqual(
        (await observed(a)).map((entry) => [entry.status, entry.decision, entry.reason]),
        [['NO_DECRYPT', 'IGNORE_RENEW', 'UNKNOWN_KEY']],
      );
    });

    test('decisions: each one has its visible effect on the wire', async () => {
      const session = await freshSession(a);
      await observed(a);
      const offer = async (decision: string) => {
        await a.send({ type: 'policy', force: decision });
        const out = sessionFile();
        const result = await sClient(a, { sessIn: session.file, sessOut: out });
        const [entry] = await observed(a);
        assert.equal(entry?.decision, decision);
        return { result, out };
      };
      try {
        const abort = await offer('ABORT');
        // ABORT fails the handshake: OpenSSL sends internal_error and no response comes.
        assert.equal(abort.result.receivedAlert, 'internal error', abort.result.output);
        assert.doesNotMatch(abort.result.output, /ok reused=/);

        const ignore = await offer('IGNORE');
        assert.ok(ignore.result.connected && !ignore.result.reused, ignore.result.output);
        // IGNORE: a full handshake and no new ticket.
        if (tls === '1.2') assert.equal(ignore.result.printedTicketHex, undefined);
        else assert.equal(ignore.result.postHandshakeTickets, 0);

        const ignoreRenew = await offer('IGNORE_RENEW');
        assert.ok(ignoreRenew.result.connected && !ignoreRenew.result.reused);
        // IGNORE_RENEW: a full handshake and a new ticket (TLS 1.3: the number-of-tickets setting, 2).
        if (tls === '1.2') assert.ok(ignoreRenew.result.printedTicketHex);
        else assert.equal(ignoreRenew.result.postHandshakeTickets, 2);
        assert.notEqual(sessionTicketHex(ignoreRenew.out), session.ticket);

        const use = await offer('USE');
        assert.ok(use.result.reused, use.result.output);
        // USE: resumed, and the client keeps the ticket it had (no new one in either version).
        if (tls === '1.2') assert.equal(use.result.printedTicketHex, session.ticket);
        else assert.equal(use.result.postHandshakeTickets, 0);

        const useRenew = await offer('USE_RENEW');
        assert.ok(useRenew.result.reused, useRenew.result.output);
        // USE_RENEW: resumed, and one new ticket under the ACTIVE key.
        const renewed = tls === '1.2' ? useRenew.result.printedTicketHex : sessionTicketHex(useRenew.out);
        if (tls === '1.3') assert.equal(useRenew.result.postHandshakeTickets, 1);
        assert.ok(renewed && renewed !== session.ticket, 'a new ticket was issued');
        assert.equal(renewed.slice(0, 32), k1.name);
      } finally {
        await a.send({ type: 'policy' });
      }
    });

    test("appdata written by node A is read by node B, with A's node id, epoch and user appdata", async () => {
      const session = await freshSession(a, { serverName: 'shop.example' });
      await observed(b);
      const resumed = await sClient(b, { sessIn: session.file, serverName: 'shop.example' });
      assert.ok(resumed.reused, resumed.output);
      const [entry] = await observed(b);
      assert.equal(entry?.issuerNodeId, 'node-a');
      assert.ok((entry?.issuerEpoch ?? 0) >= 1);
      assert.equal(entry?.appdata, 'hello from a');
      assert.equal(entry?.boundServerName, 'shop.example');
      assert.equal(entry?.serverName, 'shop.example');
    });

    test("the ring's max session age and SNI binding hold on both nodes", async () => {
      await feed([a, b], [k1], { maxSessionAgeMs: 60_000, bindServerName: true });
      try {
        const session = await freshSession(a, { serverName: 'one.example' });
        for (const server of [a, b]) {
          assert.ok((await sClient(server, { sessIn: session.file, serverName: 'one.example' })).reused);
          const other = await sClient(server, { sessIn: session.file, serverName: 'two.example' });
          assert.ok(other.connected && !other.reused, `another SNI resumed on ${server.port}`);
          await observed(server);
        }
        await Promise.all([a, b].map((server) => server.send({ type: 'clock', offsetMs: 120_000 })));
        for (const server of [a, b]) {
          const old = await sClient(server, { sessIn: session.file, serverName: 'one.example' });
          assert.ok(old.connected && !old.reused, `a too-old session resumed on ${server.port}`);
          assert.deepEqual(
            (await observed(server)).map((entry) => [entry.decision, entry.reason]),
            [['IGNORE_RENEW', 'SESSION_TOO_OLD']],
          );
        }
        assert.match(await metricsOf(b), /decision="IGNORE_RENEW",reason="SNI_MISMATCH"\} [1-9]/);
      } finally {
        await Promise.all([a, b].map((server) => server.send({ type: 'clock', offsetMs: 0 })));
        await feed([a, b], [k1]);
      }
    });

    test("the ring's ticket lifetime is the lifetime hint, and follows the ring when it changes", async () => {
      try {
        await feed([a], [k1], { ticketLifetimeHintMs: 50_000 });
        assert.equal((await sClient(a)).lifetimeHintSeconds, 50);
        await feed([a], [k1], { ticketLifetimeHintMs: 20_000 });
        assert.equal((await sClient(a)).lifetimeHintSeconds, 20);
      } finally {
        await feed([a], [k1]);
      }
    });

    test('a policy that throws aborts the handshake, is counted, and the server keeps serving', async () => {
      const session = await freshSession(a);
      await a.send({ type: 'policy', throwing: true });
      try {
        const failed = await sClient(a, { sessIn: session.file });
        assert.equal(failed.receivedAlert, 'internal error', failed.output);
      } finally {
        await a.send({ type: 'policy' });
      }
      assert.match(
        await metricsOf(a),
        /keyfleet_engine_ticket_callback_errors_total\{ring="default",callback="decrypt"\} [1-9]/,
      );
      assert.ok((await sClient(a, { sessIn: session.file })).reused, 'serving again');
    });

    test('SUCCESS_RENEW: a ticket under a DECRYPT_ONLY key resumes and is renewed under the ACTIVE key', async () => {
      const session = await freshSession(a);
      const now = Date.now();
      const k2 = newKey(now - 100, now - 50);
      await feed([a, b], [k1, k2]);
      await observed(b);
      const out = sessionFile();
      const result = await sClient(b, { sessIn: session.file, sessOut: out });
      assert.ok(result.reused, result.output);
      assert.deepEqual(
        (await observed(b)).map((entry) => [entry.status, entry.decision, entry.reason, entry.keyState]),
        [['SUCCESS_RENEW', 'USE_RENEW', 'KEY_RETIRED', 'decrypt-only']],
      );
      const renewed = tls === '1.2' ? result.printedTicketKeyName : sessionTicketKeyName(out);
      assert.equal(renewed, k2.name);
    });
  });
}

describe('without the native port', () => {
  test('the key hook decides alone, with a warning and the fallback gauge, and ring rules it cannot apply are said so', async () => {
    const plain = await start('no-port', { KEYFLEET_NATIVE_PORT: 'off' });
    assert.equal(plain.callbacks, 'unavailable');
    const now = Date.now();
    await feed([plain], [newKey(now - 5000, now - 1000)], { maxSessionAgeMs: 1000 });
    const file = sessionFile();
    assert.ok((await runSClient({ port: plain.port, sessOut: file })).connected);
    // Still resumes (the hook), but the ring's max session age cannot be applied:
    // five seconds later by the node's clock, the session still resumes.
    await plain.send({ type: 'clock', offsetMs: 5000 });
    assert.ok((await runSClient({ port: plain.port, sessIn: file })).reused);
    assert.deepEqual(await observed(plain), [], 'no policy ran');
    assert.match(await metricsOf(plain), /^keyfleet_engine_ticket_callbacks_fallback 1$/m);
    assert.match(plain.output(), /session-ticket callbacks are not installed/);
    assert.match(plain.output(), /KEYFLEET_NATIVE_PORT=off/);
    assert.match(plain.output(), /max session age and SNI binding need the session-ticket callbacks/);
  });
});

describe('client identity in the ticket, and a revoked client', () => {
  for (const tls of ['1.2', '1.3'] as TlsVersion[]) {
    test(`TLS ${tls}: the client certificate's SHA-256 rides in the appdata; once revoked, its sessions no longer resume`, async () => {
      const alice = pki.issueClient(`alice-${tls}`);
      const fingerprint = new X509Certificate(alice.certPem()).fingerprint256.replace(/:/g, '').toLowerCase();
      const mtls = await start(`mtls-${tls}`, { FIXTURE_CLIENT_CA: pki.root.certPath });
      const now = Date.now();
      await feed([mtls], [newKey(now - 5000, now - 1000)]);
      const asAlice = ['-cert', alice.certPath, '-key', alice.keyPath, '-cert_chain', alice.chainPath];
      const file = sessionFile();
      assert.ok((await runSClient({ port: mtls.port, tls, sessOut: file, extraArgs: asAlice })).connected);
      await observed(mtls);
      assert.ok((await runSClient({ port: mtls.port, tls, sessIn: file, extraArgs: asAlice })).reused);
      const [entry] = await observed(mtls);
      assert.equal(entry?.boundClientIdentity, fingerprint);
      assert.equal(entry?.clientIdentity, fingerprint);

      await mtls.send({ type: 'policy', revokedClients: [fingerprint] });
      const refused = await runSClient({ port: mtls.port, tls, sessIn: file, extraArgs: asAlice });
      assert.ok(refused.connected && !refused.reused, refused.output);
      assert.deepEqual(
        (await observed(mtls)).map((e) => [e.decision, e.reason]),
        [['IGNORE_RENEW', 'CLIENT_REVOKED']],
      );
    });
  }
});
