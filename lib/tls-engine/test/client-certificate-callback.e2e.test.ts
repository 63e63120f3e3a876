// OpenSSL's client-certificate callback (the native port) against
// `openssl s_server -Verify 1 -CAfile <one CA>`: a client holding three
// candidate chains from three CAs sends the one the server asks for, over
// TLS 1.2 and 1.3 (including a TLS 1.3-only server, which a TLS 1.2 probe
// cannot read).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  createClientCertificateContext,
  connectWithClientCertificate,
  type ClientCertificateCandidate,
} from '@keyfleet/tls-engine';
import {
  createTestPki,
  freePort,
  makeTempDir,
  startProcess,
  waitForListening,
  type RunningProcess,
  type TestPki,
} from '@keyfleet/test-support';

let pki: TestPki;
let dir: { path: string; remove(): void };
const candidates: ClientCertificateCandidate[] = [];
const caPath = (index: number) => path.join(dir.path, `ca${index}.pem`);

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Three CAs with distinct names, each issuing one client certificate. */
function makeThreeClientChains(): void {
  for (const index of [1, 2, 3]) {
    const ca = `ca${index}`;
    const client = `client${index}`;
    openssl(
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'].concat(
        ['-subj', `/CN=${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.pem`],
      ),
    );
    openssl(
      ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
        '-subj',
        `/CN=${client}`,
        '-keyout',
        `${client}.key`,
        '-out',
        `${client}.csr`,
      ]),
    );
    writeFileSync(path.join(dir.path, 'client.ext'), 'extendedKeyUsage = clientAuth\n');
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${client}.csr`,
        '-CA',
        `${ca}.pem`,
        '-CAkey',
        `${ca}.key`,
        '-CAcreateserial',
      ].concat(['-days', '2', '-extfile', 'client.ext', '-out', `${client}.pem`]),
    );
    candidates.push({
      label: client,
      key: readFileSync(path.join(dir.path, `${client}.key`)),
      chainPem: readFileSync(path.join(dir.path, `${client}.pem`), 'utf8'),
    });
  }
}

/** `openssl s_server` that requires a client certificate issued under `caFile`. */
async function startSServer(
  caFile: string,
  extra: string[],
): Promise<{ port: number; server: RunningProcess }> {
  const port = await freePort();
  const server = startProcess('openssl', [
    's_server',
    '-accept',
    String(port),
    '-cert',
    pki.leaf.certPath,
    '-key',
    pki.leaf.keyPath,
    '-Verify',
    '1',
    '-CAfile',
    caFile,
    // -www answers a GET and never reads stdin (whose end would stop s_server).
    '-www',
    ...extra,
  ]);
  await waitForListening(port);
  return { port, server };
}

async function connectOnce(port: number, version: 'TLSv1.2' | 'TLSv1.3') {
  const chosen: (string | undefined)[] = [];
  const { socket, mode } = await connectWithClientCertificate({
    candidates,
    onSelect: (selected) => chosen.push(selected?.label),
    connect: { host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: version, maxVersion: version },
  });
  await once(socket, 'secureConnect');
  const protocol = socket.getProtocol();
  // TLS 1.3 sends the client's certificate after the server's Finished: let it land.
  socket.write('GET / HTTP/1.0\r\n\r\n');
  await new Promise((resolve) => setTimeout(resolve, 200));
  socket.destroy();
  return { mode, chosen, protocol };
}

before(async () => {
  pki = createTestPki(await freePort());
  dir = makeTempDir('client-certs');
  makeThreeClientChains();
});

after(() => {
  pki?.remove();
  dir?.remove();
});

describe("OpenSSL's client-certificate callback in real handshakes", () => {
  // The TLS 1.3-only server (-tls1_3) is the one a TLS 1.2 probe cannot read.
  const cases = [
    { version: 'TLSv1.2', ca: 2, extra: ['-tls1_2'] },
    { version: 'TLSv1.3', ca: 3, extra: ['-tls1_3'] },
    { version: 'TLSv1.3', ca: 1, extra: [] },
  ] as const;
  for (const { version, ca, extra } of cases) {
    test(`${version} (s_server ${extra.join(' ') || 'default'}): s_server asks for ca${ca}, and client${ca} is sent`, async () => {
      const { port, server } = await startSServer(caPath(ca), [...extra]);
      try {
        const result = await connectOnce(port, version);
        assert.equal(result.mode, 'native');
        assert.equal(result.protocol, version);
        assert.deepEqual(result.chosen, [`client${ca}`]);
        // s_server verified the certificate it got against the one CA it trusts.
        await server.waitForOutput(new RegExp(`depth=0 CN ?= ?client${ca}[^]*verify return:1`));
        await server.stop();
        assert.doesNotMatch(server.output(), /verify error/);
      } finally {
        await server.stop();
      }
    });
  }

  test('a server that trusts none of the candidates gets no certificate (and says so)', async () => {
    const { port, server } = await startSServer(pki.root.certPath, ['-tls1_3']);
    try {
      const chosen: (string | undefined)[] = [];
      const { socket } = await connectWithClientCertificate({
        candidates,
        onSelect: (selected) => chosen.push(selected?.label),
        connect: { host: '127.0.0.1', port, rejectUnauthorized: false },
      });
      const failure = new Promise<Error | undefined>((resolve) => {
        socket.once('error', resolve);
        socket.once('close', () => resolve(undefined));
      });
      // The server requires a certificate: without one, TLS 1.3's certificate_required alert.
      assert.match(String(await failure), /certificate required/);
      socket.destroy();
      assert.deepEqual(chosen, [undefined]);
      await server.waitForOutput(/peer did not return a certificate|No client certificate/i);
    } finally {
      await server.stop();
    }
  });

  test('without the port: the TLS 1.2 probe still picks client2; a TLS 1.3-only server cannot be probed, so none is sent', async () => {
    const candidatesFile = path.join(dir.path, 'candidates.json');
    writeFileSync(candidatesFile, JSON.stringify(candidates.map((c) => ({ ...c, key: c.key.toString() }))));
    const script = fileURLToPath(new URL('./fixtures/client-certificate-fallback.ts', import.meta.url));
    const runFallback = (port: number) =>
      JSON.parse(
        execFileSync(process.execPath, ['--import', 'tsx', script, String(port), candidatesFile], {
          encoding: 'utf8',
          env: { ...process.env, KEYFLEET_NATIVE_PORT: 'off' },
        }),
      ) as { mode: string; chosen: (string | null)[]; connected: boolean };
    for (const [extra, expected] of [
      [['-tls1_2'], { mode: 'probe', chosen: ['client2'], connected: true }],
      [['-tls1_3'], { mode: 'probe', chosen: [null], connected: false }],
    ] as const) {
      const { port, server } = await startSServer(caPath(2), [...extra]);
      try {
        assert.deepEqual(runFallback(port), expected, extra.join(' '));
      } finally {
        await server.stop();
      }
    }
  });

  test('bad candidates are refused when the context is made, not at the handshake', () => {
    assert.throws(
      () =>
        createClientCertificateContext({ candidates: [{ key: candidates[0]!.key, chainPem: 'not a pem' }] }),
      /holds no certificate/,
    );
    assert.throws(
      () =>
        createClientCertificateContext({
          candidates: [{ key: candidates[0]!.key, chainPem: candidates[1]!.chainPem }],
        }),
      /does not match/,
    );
  });
});
