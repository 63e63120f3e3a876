import * as grpc from '@grpc/grpc-js';

/** A grpc-js server bound to 127.0.0.1 on a port the kernel picked. */
export interface TestGrpcServer {
  readonly server: grpc.Server;
  readonly port: number;
  readonly address: string;
  /** Drains in-flight calls (forcing after `graceMs`) and closes the port. */
  stop(graceMs?: number): Promise<void>;
}

/** Binds port 0 over plain text (tests only) after `register` adds services. */
export async function startGrpcServer(register: (server: grpc.Server) => void): Promise<TestGrpcServer> {
  const server = new grpc.Server();
  register(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    ),
  );
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    stop: (graceMs = 2000) => drainGrpcServer(server, graceMs),
  };
}

/** tryShutdown waits for calls to finish; streams never do, so force after a grace period. */
export function drainGrpcServer(server: grpc.Server, graceMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
