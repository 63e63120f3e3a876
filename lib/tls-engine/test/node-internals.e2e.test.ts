// The engine relies on undocumented Node internals. Each one is hidden in
// turn: attach() must say which one is missing and on which Node version (a
// log line and keyfleet_engine_node_internal_missing), fall back, and leave a
// server that still completes real handshakes (openssl s_client as the peer).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import { Registry } from 'prom-client';
import { attach, staticKeySource } from '@keyfleet/tls-engine';
import { createTestPki, freePort, runSClient, type TestPki } from '@keyfleet/test-support';

let pki: TestPki;

before(async () => {
  pki = createTestPki(await freePort());
});
after(() => pki?.remove());

type Holder = Record<string | symbol, unknown>;

/** Where each internal lives, and how to hide it from one server (returns the undo). */
const hiders: Record<string, (server: tls.Server) => () => void> = {
  'server._sharedCreds': (server) => shadow(server as unknown as Holder, '_sharedCreds'),
  'server._contexts': (server) => shadow(server as unknown as Holder, '_contexts'),
  'server[snicallback]': (server) => {
    const holder = server as unknown as Holder;
    const symbol = Object.getOwnPropertySymbols(server).find((s) => s.description === 'snicallback')!;
    const value = holder[symbol];
    delete holder[symbol];
    return () => void (holder[symbol] = value);
  },
  'context.enableTicketKeyCallback': (server) => shadow(nativeContext(server), 'enableTicketKeyCallback'),
  'context.setSessionIdContext': (server) => shadow(nativeContext(server), 'setSessionIdContext'),
  'context.setSessionTimeout': (server) => shadow(nativeContext(server), 'setSessionTimeout'),
  'context.setTicketKeys': (server) => shadow(nativeContext(server), 'setTicketKeys'),
  'context._external': (server) => shadow(nativeContext(server), '_external'),
};

function nativeContext(server: tls.Server): Holder {
  return (server as unknown as { _sharedCreds: { context: Holder } })._sharedCreds.context;
}

/** An own property that reads undefined, over whatever the object or its prototype had. */
function shadow(target: Holder, name: string): () => void {
  const own = Object.getOwnPropertyDescriptor(target, name);
  Object.defineProperty(target, name, { value: undefined, configurable: true, writable: true });
  return () => {
    delete target[name];
    if (own) Object.defineProperty(target, name, own);
  };
}

describe('each Node internal the engine relies on, hidden in turn', () => {
  for (const [internal, hide] of Object.entries(hiders)) {
    test(`without ${internal}: the engine says so, counts it, falls back, and the server still handshakes`, async () => {
      const warnings: { message: string; fields?: Record<string, unknown> }[] = [];
      const registry = new Registry();
      const now = Date.now();
      const keys = staticKeySource(
        [
          {
            name: randomBytes(16),
            secret: randomBytes(32),
            publishedAtMs: now - 5000,
            activatesAtMs: now - 1000,
          },
        ],
        60_000,
      );
      const server = tls.createServer({ cert: pki.leaf.chainPem(), key: pki.leaf.keyPem() }, (socket) =>
        socket.end('ok\n'),
      );
      server.on('tlsClientError', () => {});
      const undo = hide(server);
      let engine: ReturnType<typeof attach>;
      try {
        engine = attach(server, {
          keys,
          registry,
          logger: { warn: (message, fields) => warnings.push({ message, ...(fields ? { fields } : {}) }) },
        });
      } finally {
        // Node itself needs some of these to serve at all; the engine has decided by now.
        undo();
      }
      try {
        const named = warnings.find((warning) => warning.fields?.internal === internal);
        assert.ok(named, `no warning names ${internal}: ${JSON.stringify(warnings)}`);
        assert.equal(named.fields?.node, process.version);
        assert.match(named.message, new RegExp(`Node ${process.version.replace(/\./g, '\\.')} lacks`));
        const metrics = await registry.metrics();
        assert.match(
          metrics,
          new RegExp(`keyfleet_engine_node_internal_missing\\{internal="${escape(internal)}"\\} 1`),
        );
        // Only the hidden one is reported missing.
        assert.equal(metrics.match(/keyfleet_engine_node_internal_missing\{[^}]*\} 1/g)?.length, 1);
        if (internal === 'context.enableTicketKeyCallback') assert.equal(engine.ticketKeyMode, 'static');
        if (internal === 'context._external') assert.equal(engine.ticketCallbacks, 'unavailable');

        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const port = (server.address() as { port: number }).port;
        const result = await runSClient({ port, request: '' });
        assert.ok(result.connected && result.receivedAlert === undefined, result.output);
      } finally {
        engine.detach();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  }
});

function escape(text: string): string {
  return text.replace(/[.[\]]/g, (char) => `\\${char}`);
}
