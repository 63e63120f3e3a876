// Two fixture PROCESSES share a ring through attach(): openssl s_client's
// session from one resumes on the other, across rotation, until the decrypt
// window ends or the key is revoked.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  createTestPki,
  freePort,
  makeTempDir,
  runSClient,
  sessionTicketKeyName,
  type TestPki,
  type TlsVersion,
} from '@keyfleet/test-support';
import { newFixtureKey, startFixtureServer, type FixtureServer } from './fixtures/fixture-process.js';
import type { FixtureKey } from './fixtures/fixture-protocol.js';

const decryptWindowMs = 60_000;
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

async function feed(targets: FixtureServer[], keys: FixtureKey[], revoked: string[] = []): Promise<void> {
  await Promise.all(targets.map((server) => server.send({ type: 'keys', keys, revoked })));
}

async function metricsOf(server: FixtureServer): Promise<string> {
  return (await server.send({ type: 'metrics' })) as string;
}

before(async () => {
  pki = createTestPki(await freePort());
  dir = makeTempDir('tickets');
});

after(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  pki?.remove();
  dir?.remove();
});

for (const tls of ['1.2', '1.3'] as TlsVersion[]) {
  describe(`TLS ${tls}: two processes on one ring`, () => {
    let a: FixtureServer;
    let b: FixtureServer;
    const t0 = Date.now() - 1000;
    const k1 = newKey(t0 - 5000, t0);
    let k2: FixtureKey;
    let ticketUnderK1: string;

    before(async () => {
      [a, b] = await Promise.all([start(`a-${tls}`), start(`b-${tls}`)]);
      assert.equal(a.mode, 'hook');
      await feed([a, b], [k1]);
    });

    test('a session from A resumes on B, and the ticket names the ACTIVE key', async () => {
      ticketUnderK1 = sessionFile();
      const first = await runSClient({ port: a.port, tls, sessOut: ticketUnderK1 });
      assert.ok(first.connected, first.output);
      assert.equal(first.reused, false);
      assert.equal(first.protocol, `TLSv${tls}`);
      assert.equal(sessionTicketKeyName(ticketUnderK1), k1.name);
      const second = await runSClient({ port: b.port, tls, sessIn: ticketUnderK1 });
      assert.ok(second.reused, second.output);
      assert.match(second.output, /ok reused=true/);
    });

    test('after a rotation the old ticket resumes on both and is replaced by one under the new key', async () => {
      const now = Date.now();
      k2 = newKey(now - 100, now - 50);
      await feed([a, b], [k1, k2]);
      for (const server of [a, b]) {
        const renewed = sessionFile();
        const result = await runSClient({ port: server.port, tls, sessIn: ticketUnderK1, sessOut: renewed });
        assert.ok(result.reused, result.output);
        // TLS 1.2: s_client prints the renewed ticket; TLS 1.3: it lands in the session file.
        const issuedUnder = tls === '1.2' ? result.printedTicketKeyName : sessionTicketKeyName(renewed);
        assert.equal(issuedUnder, k2.name, 'a new ticket under the ACTIVE key is issued');
      }
      const metrics = await metricsOf(a);
      assert.match(
        metrics,
        /keyfleet_engine_ticket_decisions_total\{[^}]*decision="USE_RENEW"[^}]*reason="KEY_RETIRED"[^}]*\} [1-9]/,
      );
    });

    test('after its decrypt window the old ticket no longer resumes, on either node', async () => {
      await Promise.all(
        [a, b].map((server) => server.send({ type: 'clock', offsetMs: decryptWindowMs + 5000 })),
      );
      try {
        for (const server of [a, b]) {
          const result = await runSClient({ port: server.port, tls, sessIn: ticketUnderK1 });
          assert.ok(result.connected, result.output);
          assert.equal(result.reused, false, `resumed on ${server.port} after the window`);
        }
        assert.match(await metricsOf(b), /decision="IGNORE_RENEW",reason="KEY_EXPIRED"\} [1-9]/);
      } finally {
        await Promise.all([a, b].map((server) => server.send({ type: 'clock', offsetMs: 0 })));
      }
    });

    test('a revoked key no longer resumes, on either node', async () => {
      const underK2 = sessionFile();
      const issued = await runSClient({ port: a.port, tls, sessOut: underK2 });
      assert.ok(issued.connected, issued.output);
      assert.equal(sessionTicketKeyName(underK2), k2.name);
      assert.ok(
        (await runSClient({ port: b.port, tls, sessIn: underK2 })).reused,
        'resumes before revocation',
      );
      const k3 = newKey(Date.now() - 10, Date.now() - 10);
      await feed([a, b], [k1, k3], [k2.name]);
      for (const server of [a, b]) {
        const result = await runSClient({ port: server.port, tls, sessIn: underK2 });
        assert.ok(result.connected, result.output);
        assert.equal(result.reused, false);
      }
      assert.match(await metricsOf(a), /decision="IGNORE_RENEW",reason="KEY_REVOKED"\} [1-9]/);
    });
  });
}

describe('session-id context', () => {
  test("with Node's per-process default, two processes with the same keys do not resume each other", async () => {
    const key = newKey(Date.now() - 5000, Date.now() - 5000);
    const [c, d] = await Promise.all([
      start('c', { FIXTURE_SESSION_ID_CONTEXT: 'node-default' }),
      start('d', { FIXTURE_SESSION_ID_CONTEXT: 'node-default' }),
    ]);
    await feed([c, d], [key]);
    const file = sessionFile();
    assert.ok((await runSClient({ port: c.port, tls: '1.2', sessOut: file })).connected);
    assert.equal(sessionTicketKeyName(file), key.name, 'both use the shared key');
    assert.ok((await runSClient({ port: c.port, tls: '1.2', sessIn: file })).reused, 'same process resumes');
    const other = await runSClient({ port: d.port, tls: '1.2', sessIn: file });
    assert.equal(other.reused, false, 'the other process refuses: its session-id context differs');

    // The same pair with the ring's context resumes (what attach does by default).
    const [e, f] = await Promise.all([start('e'), start('f')]);
    await feed([e, f], [key]);
    const ringFile = sessionFile();
    assert.ok((await runSClient({ port: e.port, tls: '1.2', sessOut: ringFile })).connected);
    assert.ok((await runSClient({ port: f.port, tls: '1.2', sessIn: ringFile })).reused);
  });
});

describe('fallback to the static single-key API', () => {
  test('forced fallback: exports the gauge, seals under the ACTIVE key, interoperates with the hook', async () => {
    const key = newKey(Date.now() - 5000, Date.now() - 5000);
    const [fallback, hooked] = await Promise.all([
      start('static', { FIXTURE_TICKET_HOOK: 'static' }),
      start('hooked'),
    ]);
    assert.equal(fallback.mode, 'static');
    await feed([fallback, hooked], [key]);
    assert.match(await metricsOf(fallback), /^keyfleet_engine_ticket_hook_fallback 1$/m);
    assert.match(await metricsOf(hooked), /^keyfleet_engine_ticket_hook_fallback 0$/m);
    const file = sessionFile();
    const first = await runSClient({ port: fallback.port, tls: '1.2', sessOut: file });
    assert.ok(first.connected, first.output);
    assert.equal(sessionTicketKeyName(file), key.name);
    assert.ok((await runSClient({ port: hooked.port, tls: '1.2', sessIn: file })).reused);
    const back = sessionFile();
    assert.ok((await runSClient({ port: hooked.port, tls: '1.2', sessOut: back })).connected);
    assert.ok((await runSClient({ port: fallback.port, tls: '1.2', sessIn: back })).reused);

    // A rotation: the fallback follows the ACTIVE key, and (its documented
    // limit) holds only that one, so the retired key's ticket gets a full
    // handshake there while the hook still resumes it.
    const next = newKey(Date.now() - 10, Date.now() - 10);
    await feed([fallback, hooked], [key, next]);
    const fresh = sessionFile();
    assert.ok((await runSClient({ port: fallback.port, tls: '1.2', sessOut: fresh })).connected);
    assert.equal(sessionTicketKeyName(fresh), next.name);
    assert.equal((await runSClient({ port: fallback.port, tls: '1.2', sessIn: file })).reused, false);
    assert.ok((await runSClient({ port: hooked.port, tls: '1.2', sessIn: file })).reused);
  });
});

// Node 20 copies only the certificate from an SNI context (the default
// context's hook and session-id context stay in charge); attach prepares SNI
// contexts as well. Either way, what must hold is this.
describe('SNI names share the ring too', () => {
  for (const via of ['addContext', 'callback'] as const) {
    test(`a context from ${via}: sessions resume across processes under the ring's key`, async () => {
      const sniLeaf = pki.issueLeaf(`sni-${via}`, { dnsNames: ['sni.test'] });
      const env = {
        FIXTURE_SNI_CERT: sniLeaf.chainPath,
        FIXTURE_SNI_KEY: sniLeaf.keyPath,
        FIXTURE_SNI_VIA: via,
      };
      const key = newKey(Date.now() - 5000, Date.now() - 5000);
      const [g, h] = await Promise.all([start(`g-${via}`, env), start(`h-${via}`, env)]);
      await feed([g, h], [key]);
      for (const tls of ['1.2', '1.3'] as const) {
        const file = sessionFile();
        const first = await runSClient({ port: g.port, tls, sessOut: file, serverName: 'sni.test' });
        assert.ok(first.connected, first.output);
        assert.match(first.output, /subject=CN = sni\.test/, 'the SNI certificate was served');
        assert.equal(sessionTicketKeyName(file), key.name);
        const second = await runSClient({ port: h.port, tls, sessIn: file, serverName: 'sni.test' });
        assert.ok(second.reused, second.output);
      }
    });
  }
});
