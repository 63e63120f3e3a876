import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { X509Certificate } from 'node:crypto';
import { StapleServiceClient, StapleStatus, TicketKeyServiceClient } from '@keyfleet/proto';
import { certificateId } from '../staples/certificate-id.js';
import { channelCredentials } from '../client/channel-credentials.js';
import { KeySetProvider } from '../providers/key-set-provider.js';
import { WatchStaplesProvider } from '../staples/watch-staples-provider.js';
import { attach, type AttachedTlsEngine } from '../node-tls/attach.js';
import type { EngineLogger } from '../node-tls/attach-options.js';
import type { EngineNodeConfig } from './node-config.js';

/** A running engine node. */
export interface EngineNode {
  /** The TLS port (useful with KEYFLEET_LISTEN port 0). */
  readonly port: number;
  readonly metricsPort: number | undefined;
  readonly engine: AttachedTlsEngine;
  /** Stops accepting, lets open connections finish (up to the grace period), then closes everything. */
  stop(): Promise<void>;
}

export interface NodeLogger extends EngineLogger {
  info(message: string, fields?: Record<string, unknown>): void;
}

/** One JSON line per event on stderr; never given key or staple bytes. */
export const jsonLogger: NodeLogger = {
  info: (msg, fields) =>
    process.stderr.write(`${JSON.stringify({ level: 'info', name: 'engine-node', msg, ...fields })}\n`),
  warn: (msg, fields) =>
    process.stderr.write(`${JSON.stringify({ level: 'warn', name: 'engine-node', msg, ...fields })}\n`),
};

function listen(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

/**
 * A TLS-terminating node of the fleet: an HTTPS responder (or, with an
 * upstream, a TCP proxy) whose tickets are sealed and opened under the ring's
 * shared keys (KeySetProvider on WatchKeySet) and whose staples come from
 * WatchStaples; /metrics and /healthz on their own port.
 */
export async function startEngineNode(
  config: EngineNodeConfig,
  logger: NodeLogger = jsonLogger,
): Promise<EngineNode> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const credentials = channelCredentials(config.connection);
  const keyClient = new TicketKeyServiceClient(config.ticketKeysAddress, credentials);
  const keys = new KeySetProvider({
    ring: config.ring,
    client: keyClient,
    nodeId: config.nodeId,
    metrics: registry,
    onProblem: (problem, error) => logger.warn(problem, error ? { error: error.message } : undefined),
  });
  const stapleClient = config.ocspFetchAddress
    ? new StapleServiceClient(config.ocspFetchAddress, credentials)
    : undefined;
  const staples = stapleClient
    ? new WatchStaplesProvider({
        client: stapleClient,
        nodeId: config.nodeId,
        onDisconnect: (error, nextAttemptInMs) =>
          logger.warn('WatchStaples ended; reconnecting', { nextAttemptInMs, error: error?.message }),
      })
    : undefined;

  const secure = { cert: readFileSync(config.certChainPath), key: readFileSync(config.keyPath) };
  const leafPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(
    secure.cert.toString('utf8'),
  );
  if (!leafPem) throw new Error(`KEYFLEET_CERT_CHAIN: no PEM certificate in ${config.certChainPath}`);
  const leafId = certificateId(new X509Certificate(leafPem[0]).raw);
  const startedAtMs = Date.now();
  const upstream = config.upstream;
  let server: tls.Server;
  if (upstream) {
    server = tls.createServer(secure, (client) => {
      const target = net.connect(upstream.port, upstream.host);
      client.pipe(target).pipe(client);
      const close = () => {
        client.destroy();
        target.destroy();
      };
      client.on('error', close);
      target.on('error', close);
    });
  } else {
    server = https.createServer(secure, (request, response) => {
      const socket = request.socket as tls.TLSSocket;
      response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(
        `keyfleet engine node ${config.nodeId}\nring: ${config.ring}\nprotocol: ${socket.getProtocol() ?? '?'}\nresumed: ${socket.isSessionReused()}\n`,
      );
    });
  }
  const engine = attach(server, {
    keys,
    ...(staples ? { staples } : {}),
    strictMustStaple: config.strictMustStaple,
    registry,
    logger,
    nodeId: config.nodeId,
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const port = await listen(server, config.listen.host, config.listen.port);

  let metricsServer: http.Server | undefined;
  let metricsPort: number | undefined;
  if (config.metrics) {
    metricsServer = http.createServer((request, response) => {
      if (request.method === 'GET' && request.url === '/metrics') {
        registry.metrics().then(
          (body) => response.writeHead(200, { 'content-type': registry.contentType }).end(body),
          () => response.writeHead(500).end('metrics failed\n'),
        );
      } else if (request.method === 'GET' && request.url === '/healthz') {
        // Ready once a key set is held (before that no tickets are issued) and
        // the staple snapshot arrived, with the leaf's first staple in hand when
        // the service is still fetching or retrying it (so the first handshake
        // is stapled), for at most stapleWaitMs: a responder that is down must
        // not keep the node out.
        const leafStatus = staples?.statusOf(leafId);
        const pendingStaple =
          staples !== undefined &&
          (leafStatus === StapleStatus.PENDING || leafStatus === StapleStatus.FETCH_FAILING) &&
          staples.lookup(leafId, Date.now()).kind !== 'fresh' &&
          Date.now() - startedAtMs < config.stapleWaitMs;
        const missing = [
          ...(keys.schedule() === undefined ? ['no key set yet'] : []),
          ...(staples && !staples.synced ? ['no staple snapshot yet'] : []),
          ...(pendingStaple ? ['first staple still being fetched'] : []),
        ];
        response
          .writeHead(missing.length === 0 ? 200 : 503, { 'content-type': 'text/plain' })
          .end(missing.length === 0 ? 'ok\n' : `${missing.join(', ')}\n`);
      } else {
        response.writeHead(404).end();
      }
    });
    metricsPort = await listen(metricsServer, config.metrics.host, config.metrics.port);
  }
  logger.info('engine node listening', {
    listen: `${config.listen.host}:${port}`,
    ring: config.ring,
    nodeId: config.nodeId,
    ticketKeyMode: engine.ticketKeyMode,
    ticketCallbacks: engine.ticketCallbacks,
    metricsPort,
    upstream: upstream ? `${upstream.host}:${upstream.port}` : undefined,
  });

  let stopping: Promise<void> | undefined;
  return {
    port,
    metricsPort,
    engine,
    stop: () =>
      (stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Idle keep-alive connections would hold close() forever: ask them to go.
        if (server instanceof https.Server) server.closeIdleConnections();
        const timer = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, config.shutdownGraceMs);
        await closed;
        clearTimeout(timer);
        engine.detach();
        keys.close();
        staples?.close();
        keyClient.close();
        stapleClient?.close();
        if (metricsServer) {
          metricsServer.closeAllConnections();
          await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
        }
      })()),
  };
}
