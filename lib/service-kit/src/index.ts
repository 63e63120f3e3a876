/**
 * What both keyfleet services share: configuration from the environment, the
 * error class and its gRPC mapping, mTLS roles, the gRPC server wiring (health,
 * reflection, metrics, roles around every handler), the /metrics endpoint,
 * logging, and the Redis connection. Services depend on this; lib/tls-engine
 * never does (a TLS node installs no Redis client).
 */
export { ErrorCode, KeyfleetError, invalidArgument } from './keyfleet-error.js';
export { toServiceError, statusName } from './grpc-status.js';
export {
  ConfigError,
  envBoolean,
  envInteger,
  envListenAddress,
  envOptionalString,
  envString,
  type Env,
} from './config-env.js';
export { createLogger, type Logger } from './logger.js';
export { runServiceProcess, type ServiceProcessOptions, type StartedService } from './service-process.js';
export {
  adminAccess,
  loadClientRoles,
  parseClientRoles,
  subjectAltNames,
  type Access,
  type ClientRoles,
  type Grant,
  type PeerIdentity,
} from './client-roles.js';
export {
  insecureDevOnNetworkVariable,
  insecureDevSecurity,
  isLoopbackAddress,
  mtlsSecurity,
  serverSecurityFromEnv,
  type MtlsFiles,
  type ServerSecurity,
} from './server-security.js';
export {
  livenessServiceName,
  methodAccess,
  startServiceServer,
  type CallContext,
  type MethodAccess,
  type RunningServiceServer,
  type ServerStreamHandler,
  type BidiStreamHandler,
  type ServiceBinding,
  type ServiceServerOptions,
  type UnaryHandler,
} from './service-server.js';
export { startMetricsServer, type MetricsServer } from './metrics-http.js';
export { createGrpcServerMetrics, createRedisUpGauge, type GrpcServerMetrics } from './service-metrics.js';
export {
  closeRedis,
  connectRedis,
  redisCommandTimeoutMs,
  redisIsReady,
  settlesWithin,
  withoutCommandTimeout,
} from './redis-connection.js';
export { catchUpAfterResubscribe } from './resubscribe.js';
export { startEmbeddedRedis, type EmbeddedRedis } from './embedded-redis.js';
export {
  envoyApiIncludeDirs,
  loadEnvoyRoot,
  packSecret,
  secretDiscoveryServiceDefinition,
  secretTypeUrl,
  unpackSecret,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DeltaResource,
  type DiscoveryRequest,
  type DiscoveryResponse,
  type EnvoyDataSource,
  type EnvoySecret,
  type PackedResource,
} from './sds/envoy-api.js';
export { createSdsMetrics, type SdsMetrics } from './sds/sds-metrics.js';
export {
  secretDiscoveryServiceBinding,
  type SecretDiscoveryOptions,
} from './sds/secret-discovery-service.js';
export type { BuiltSecret, SdsNode, SdsResource, SecretSource } from './sds/secret-source.js';
export { sharedBuiltSecret } from './sds/shared-built-secret.js';
export {
  fetchSecrets,
  secretDiscoveryClient,
  subscribeSecrets,
  subscribeSecretsDelta,
  type DeltaSubscription,
  type ResponseLog,
  type SecretDiscoveryClient,
  type StateOfWorldSubscription,
} from './sds/sds-client.js';
