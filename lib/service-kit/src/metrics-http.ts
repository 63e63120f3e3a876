import http from 'node:http';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * GET /metrics in Prometheus text format from an explicit registry;
 * readiness on GET /readyz and GET /healthz, 200 while `ready()` says so
 * (the replica holds a cache it can serve), else 503; liveness on GET /livez,
 * 200 whenever the process answers at all. Liveness never follows Redis: a
 * restart would only throw the cache away.
 */
export async function startMetricsServer(
  registry: Registry,
  host: string,
  port: number,
  ready: () => boolean = () => true,
): Promise<MetricsServer> {
  const server = http.createServer((request, response) => {
    if (request.method === 'GET' && request.url === '/metrics') {
      registry.metrics().then(
        (body) => response.writeHead(200, { 'content-type': registry.contentType }).end(body),
        () => response.writeHead(500).end('metrics failed\n'),
      );
    } else if (request.method === 'GET' && request.url === '/livez') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (request.method === 'GET' && (request.url === '/healthz' || request.url === '/readyz')) {
      const ok = ready();
      response.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
