import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

// The metrics both services register, in constructors of their own so the
// deploy tests can list every name the code registers without starting one.

/** The metrics every keyfleet gRPC server exports (names fixed for dashboards and alerts). */
export interface GrpcServerMetrics {
  readonly requests: Counter<'service' | 'method' | 'code'>;
  readonly durations: Histogram<'service' | 'method'>;
  readonly streamsRejected: Counter<'service' | 'method'>;
}

export function createGrpcServerMetrics(registry: Registry): GrpcServerMetrics {
  return {
    requests: new Counter({
      name: 'keyfleet_grpc_requests_total',
      help: 'gRPC calls handled, by service, method and status code.',
      labelNames: ['service', 'method', 'code'] as const,
      registers: [registry],
    }),
    durations: new Histogram({
      name: 'keyfleet_grpc_request_duration_seconds',
      help: 'Time to answer unary gRPC calls.',
      labelNames: ['service', 'method'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    streamsRejected: new Counter({
      name: 'keyfleet_grpc_streams_rejected_total',
      help: 'Server streams refused because the caller holds its quota of open streams.',
      labelNames: ['service', 'method'] as const,
      registers: [registry],
    }),
  };
}

/** keyfleet_redis_up: 1 while connected. Created with the connection (connectRedis). */
export function createRedisUpGauge(registry: Registry): Gauge {
  return new Gauge({
    name: 'keyfleet_redis_up',
    help: '1 while the service is connected to Redis, else 0.',
    registers: [registry],
  });
}
