// The client side: stapled responses from a real `openssl ocsp` responder are
// verified (signer, delegation, CertID, time window), the soft-/hard-fail
// helper acts on them over real TLS, and client-certificate selection sends a
// chain the server can build.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import {
  createTestPki,
  freePort,
  fetchOcspResponse,
  startOcspResponder,
  type IssuedCertificate,
  type OcspResponderOptions,
  type TestPki,
} from '@keyfleet/test-support';
import {
  acceptableIssuersFromPem,
  attach,
  certificateId,
  connectWithStapleCheck,
  probeCertificateRequest,
  selectClientCertificate,
  StapleCache,
  StapleCheckError,
  verifyStaple,
  type StapleCheckMode,
} from '@keyfleet/tls-engine';

let pki: TestPki;
let revokedLeaf: IssuedCertificate;
let mustStapleLeaf: IssuedCertificate;
const der = (cert: IssuedCertificate) => new X509Certificate(readFileSync(cert.certPath)).raw;

/** Runs a responder with `options` just long enough to fetch one response per certificate. */
async function fetchWith(options: OcspResponderOptions, certs: IssuedCertificate[]): Promise<Buffer[]> {
  const responder = await startOcspResponder(pki, options);
  try {
    return certs.map((cert) => fetchOcspResponse(pki, cert, { refreshIndex: true }));
  } finally {
    await responder.stop();
  }
}

const responses: Record<string, Buffer> = {};

before(async () => {
  pki = createTestPki(await freePort());
  revokedLeaf = pki.issueLeaf('revoked', { dnsNames: ['revoked.test'] });
  mustStapleLeaf = pki.issueLeaf('must', { dnsNames: ['must.test'], mustStaple: true });
  pki.revoke(revokedLeaf);
  const first = await fetchWith({}, [pki.leaf, revokedLeaf, mustStapleLeaf]);
  responses.good = first[0]!;
  responses.revoked = first[1]!;
  responses.must = first[2]!;
  responses.byIssuer = (await fetchWith({ signer: 'issuer' }, [pki.leaf]))[0]!;
  responses.unrelated = (await fetchWith({ signer: 'unrelated' }, [pki.leaf]))[0]!;
  responses.noEku = (await fetchWith({ signer: 'delegated-without-ocsp-signing' }, [pki.leaf]))[0]!;
  responses.noNextUpdate = (await fetchWith({ omitNextUpdate: true }, [pki.leaf]))[0]!;
});

after(() => pki?.remove());

describe('verifyStaple against openssl ocsp responses', () => {
  const verify = (response: Buffer, leaf: IssuedCertificate = pki.leaf, nowMs?: number) =>
    verifyStaple({
      responseDer: response,
      certificateDer: der(leaf),
      issuerDer: der(pki.intermediate),
      ...(nowMs !== undefined ? { nowMs } : {}),
    });

  test('good, signed by a delegated responder: accept', async () => {
    const result = await verify(responses.good!);
    assert.equal(result.outcome, 'accept', result.reason);
    assert.equal(result.certStatus, 'good');
    assert.equal(result.signer, 'delegated');
    assert.ok(result.nextUpdateMs! > Date.now());
  });

  test('good, signed by the issuer itself: accept', async () => {
    const result = await verify(responses.byIssuer!);
    assert.equal(result.outcome, 'accept', result.reason);
    assert.equal(result.signer, 'issuer');
  });

  test('revoked: reject', async () => {
    const result = await verify(responses.revoked!, revokedLeaf);
    assert.equal(result.outcome, 'reject');
    assert.equal(result.certStatus, 'revoked');
  });

  test('an unrelated signer: error', async () => {
    const result = await verify(responses.unrelated!);
    assert.equal(result.outcome, 'error');
    assert.match(result.reason, /signer|issuer/);
  });

  test('a responder certificate without id-kp-OCSPSigning: error', async () => {
    const result = await verify(responses.noEku!);
    assert.equal(result.outcome, 'error');
    assert.match(result.reason, /OCSPSigning/);
  });

  test('a response for another certificate (CertID): error', async () => {
    const result = await verify(responses.good!, revokedLeaf);
    assert.equal(result.outcome, 'error');
    assert.match(result.reason, /CertID/);
  });

  test('time window: past nextUpdate, thisUpdate in the future, or no nextUpdate: error', async () => {
    const expired = await verify(responses.good!, pki.leaf, Date.now() + 3_600_000);
    assert.equal(expired.outcome, 'error');
    assert.match(expired.reason, /expired/);
    // Signed by the issuer: the delegated responder's certificate is itself only minutes old.
    const early = await verify(responses.byIssuer!, pki.leaf, Date.now() - 3_600_000);
    assert.equal(early.outcome, 'error');
    assert.match(early.reason, /future/);
    const open = await verify(responses.noNextUpdate!);
    assert.equal(open.outcome, 'error');
    assert.match(open.reason, /nextUpdate/);
  });

  test('hostile input: truncated, oversized, random, bit-flipped; never throws, never accepts a forgery', async () => {
    const good = responses.good!;
    for (let length = 0; length < good.length; length += 13) {
      assert.equal((await verify(good.subarray(0, length))).outcome, 'error', `truncated to ${length}`);
    }
    assert.equal((await verify(Buffer.alloc(70_000, 0x30))).outcome, 'error');
    for (let i = 0; i < 20; i++) {
      const noise = Buffer.from(Array.from({ length: 200 }, () => Math.floor(Math.random() * 256)));
      assert.equal((await verify(noise)).outcome, 'error');
    }
    // Every byte matters: the envelope is strict DER, the response data is
    // signed, and the responder certificate (signature included) is signed by
    // the issuer. No flip anywhere may verify, so every one is an error.
    assert.equal((await verify(good)).outcome, 'accept');
    for (let position = 0; position < good.length; position++) {
      const flipped = Buffer.from(good);
      flipped[position]! ^= 0x01;
      const result = await verify(flipped);
      assert.equal(result.outcome, 'error', `flip at ${position} of ${good.length}: ${result.outcome}`);
    }
  });
});

describe('connectWithStapleCheck over real TLS', () => {
  let server: https.Server;
  let port: number;
  const staples = new StapleCache();
  const stapleFor = (cert: IssuedCertificate, response: Buffer | undefined) =>
    staples.set(
      certificateId(der(cert)),
      response && { der: response, thisUpdateMs: 0, nextUpdateMs: Date.now() + 600_000, certStatus: 'good' },
    );

  before(async () => {
    server = https.createServer({ cert: pki.leaf.chainPem(), key: pki.leaf.keyPem() }, (_q, r) =>
      r.end('ok'),
    );
    attach(server, { staples });
    server.addContext('revoked.test', { cert: revokedLeaf.chainPem(), key: revokedLeaf.keyPem() });
    server.addContext('must.test', { cert: mustStapleLeaf.chainPem(), key: mustStapleLeaf.keyPem() });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const connect = (servername: string, mode: StapleCheckMode) =>
    connectWithStapleCheck(
      { host: '127.0.0.1', port, servername, ca: pki.root.certPem(), checkServerIdentity: () => undefined },
      { mode },
    );

  test('a good staple: both modes proceed with an accepted staple', async () => {
    stapleFor(pki.leaf, responses.good);
    for (const mode of ['soft-fail', 'hard-fail'] as const) {
      const { socket, staple } = await connect('localhost', mode);
      socket.destroy();
      assert.equal(staple.stapled, true);
      assert.equal(staple.verification?.outcome, 'accept');
      assert.equal(staple.proceed, true);
    }
  });

  test('a revoked staple: both modes refuse', async () => {
    stapleFor(revokedLeaf, responses.revoked);
    for (const mode of ['soft-fail', 'hard-fail'] as const) {
      await assert.rejects(connect('revoked.test', mode), (error: unknown) => {
        assert.ok(error instanceof StapleCheckError);
        assert.equal(error.result.verification?.certStatus, 'revoked');
        return true;
      });
    }
  });

  test('no staple: soft-fail proceeds, hard-fail refuses', async () => {
    stapleFor(pki.leaf, undefined);
    const soft = await connect('localhost', 'soft-fail');
    soft.socket.destroy();
    assert.equal(soft.staple.stapled, false);
    await assert.rejects(connect('localhost', 'hard-fail'), StapleCheckError);
  });

  test('an unverifiable staple (unrelated signer): soft-fail proceeds, hard-fail refuses', async () => {
    stapleFor(pki.leaf, responses.unrelated);
    const soft = await connect('localhost', 'soft-fail');
    soft.socket.destroy();
    assert.equal(soft.staple.verification?.outcome, 'error');
    await assert.rejects(connect('localhost', 'hard-fail'), StapleCheckError);
  });

  test('a must-staple certificate without a staple is refused even in soft-fail', async () => {
    await assert.rejects(connect('must.test', 'soft-fail'), (error: unknown) => {
      assert.ok(error instanceof StapleCheckError);
      assert.equal(error.result.mustStaple, true);
      return true;
    });
    stapleFor(mustStapleLeaf, responses.must);
    const { socket, staple } = await connect('must.test', 'soft-fail');
    socket.destroy();
    assert.equal(staple.verification?.outcome, 'accept');
  });
});

describe('client-certificate selection', () => {
  let alice: IssuedCertificate;
  let server: tls.Server;
  let port: number;

  before(async () => {
    alice = pki.issueClient('alice');
    // The server trusts only the root: a client must send its intermediate.
    server = tls.createServer(
      {
        cert: pki.leaf.chainPem(),
        key: pki.leaf.keyPem(),
        ca: pki.root.certPem(),
        requestCert: true,
        rejectUnauthorized: false,
      },
      (socket) => {
        const peer = socket.getPeerCertificate();
        socket.end(
          `${socket.authorized ? 'authorized' : `unauthorized:${String(socket.authorizationError)}`} ${String(peer.subject?.CN ?? '-')}\n`,
        );
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function handshakeAs(options: { key: string | Buffer; cert: string }): Promise<string> {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: pki.root.certPem(),
      servername: 'localhost',
      ...options,
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await once(socket, 'end');
    socket.destroy();
    return text.trim();
  }

  test('picks the candidate whose chain reaches an accepted CA, and its whole chain is what authorizes', async () => {
    const candidates = [
      { key: pki.unrelated.keyPem(), chainPem: pki.unrelated.certPem(), label: 'unrelated' },
      { key: alice.keyPem(), chainPem: alice.chainPem(), label: 'alice' },
    ];
    const selected = selectClientCertificate(candidates, acceptableIssuersFromPem(pki.root.certPem()));
    assert.equal(selected?.label, 'alice');
    assert.match(selected.matchedIssuer, /keyfleet test root/);
    assert.equal(await handshakeAs(selected.connectOptions), 'authorized alice');
    // The leaf alone does not chain to the root: why the whole chain matters.
    assert.match(await handshakeAs({ key: alice.keyPem(), cert: alice.certPem() }), /^unauthorized/);
  });

  test('the acceptable issuers can be learnt from the server itself (a TLS 1.2 probe), and pick the same', async () => {
    const probe = await probeCertificateRequest({ host: '127.0.0.1', port, serverName: 'localhost' });
    assert.equal(probe.kind, 'requested', JSON.stringify(probe));
    const issuers = probe.kind === 'requested' ? probe.acceptableIssuers : [];
    assert.deepEqual(issuers, acceptableIssuersFromPem(pki.root.certPem()));
    const candidates = [
      { key: pki.unrelated.keyPem(), chainPem: pki.unrelated.certPem(), label: 'unrelated' },
      { key: alice.keyPem(), chainPem: alice.chainPem(), label: 'alice' },
    ];
    const selected = selectClientCertificate(candidates, issuers);
    assert.equal(selected?.label, 'alice');
    assert.equal(await handshakeAs(selected.connectOptions), 'authorized alice');
  });

  test('the probe: a server that asks for no certificate says so; a TLS 1.3-only server is an error', async () => {
    const plain = tls.createServer({ cert: pki.leaf.chainPem(), key: pki.leaf.keyPem() }, (socket) =>
      socket.end(),
    );
    const modern = tls.createServer(
      { cert: pki.leaf.chainPem(), key: pki.leaf.keyPem(), minVersion: 'TLSv1.3', requestCert: true },
      (socket) => socket.end(),
    );
    for (const server of [plain, modern]) server.on('tlsClientError', () => {});
    await Promise.all(
      [plain, modern].map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))),
    );
    try {
      const portOf = (server: tls.Server) => (server.address() as { port: number }).port;
      assert.deepEqual(await probeCertificateRequest({ host: '127.0.0.1', port: portOf(plain) }), {
        kind: 'not-requested',
      });
      assert.equal(
        (await probeCertificateRequest({ host: '127.0.0.1', port: portOf(modern) })).kind,
        'error',
      );
    } finally {
      await Promise.all([plain, modern].map((server) => new Promise((resolve) => server.close(resolve))));
    }
  });

  test('matches on an intermediate too; nothing acceptable → none; an empty list → the first', () => {
    const candidates = [
      { key: pki.unrelated.keyPem(), chainPem: pki.unrelated.certPem(), label: 'unrelated' },
      { key: alice.keyPem(), chainPem: alice.chainPem(), label: 'alice' },
    ];
    assert.equal(
      selectClientCertificate(candidates, acceptableIssuersFromPem(pki.intermediate.certPem()))?.label,
      'alice',
    );
    assert.equal(
      selectClientCertificate(candidates, acceptableIssuersFromPem(pki.unrelated.certPem()))?.label,
      'unrelated',
    );
    assert.equal(
      selectClientCertificate(candidates, acceptableIssuersFromPem(pki.responder.certPem())),
      undefined,
    );
    assert.equal(selectClientCertificate(candidates, [])?.label, 'unrelated');
  });
});
