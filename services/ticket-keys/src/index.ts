/**
 * @keyfleet/ticket-keys — the key service: ring schedule (pure), KEK-wrapped
 * Redis store, BullMQ rotation, WatchKeySet fan-out, gRPC server. The process
 * entry is ./main.ts; this is what other code (the keyless TicketService, the
 * integrator, tools) builds on.
 */
export {
  createTicketKeysServer,
  type ExtraServiceContext,
  type RunningTicketKeysServer,
  type TicketKeysServerOptions,
} from './server/ticket-keys-server.js';
export { ticketKeyServiceBinding, ticketKeyAccess } from './server/ticket-key-service.js';
export { keySetSourceOf, type KeySetSource } from './stream/key-set-cache.js';
export { compileTicketKeysConfig, type TicketKeysConfig } from './config/ticket-keys-config.js';
export {
  checkRingName,
  compileRingParams,
  ringParamDefaults,
  type ResolvedRingParams,
} from './schedule/ring-params.js';
export { planPromotion, planRevocation, planRotation, rotationIsDue } from './schedule/rotation-plan.js';
export { scheduleOfRing, toProtoKeySet, type RingState } from './schedule/key-set-view.js';
export { KekRing, ensureDevKekFile, loadKekFile, newKekLine, parseKekFile, type Kek } from './store/kek.js';
export { KeyStore, type RotateOutcome } from './store/key-store.js';
export { redisKeys, defaultKeyPrefix, type RedisKeys, type RingKeys } from './store/redis-keys.js';
export { rewrapAllKeys } from './cli/rewrap.js';
export { rotationQueueName } from './job/rotation-scheduler.js';
export { ticketKeySecretSource } from './sds/ticket-key-secret-source.js';
export {
  createTicketServiceBinding,
  type TicketServiceBindingOptions,
} from './keyless/ticket-service-binding.js';
export {
  createTicketKeysMetrics,
  type TicketKeysMetrics,
  type TicketKeysMetricsSource,
} from './metrics/ticket-keys-metrics.js';
