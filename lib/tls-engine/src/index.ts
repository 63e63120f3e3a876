/**
 * @keyfleet/tls-engine — what runs inside a TLS node. It depends on the
 * contract and on crypto, never on Redis: a node installs only what it needs.
 */

// The key schedule and key material: pure, shared with the services.
export {
  KEY_NAME_BYTES,
  KEY_SECRET_BYTES,
  keyNameHex,
  keyNameLabel,
  type TicketKeyRecord,
} from './keys/ticket-key.js';
export {
  KeySchedule,
  ticketLifetimeHintMs,
  type ScheduledKey,
  type ScheduledKeyState,
} from './keys/key-schedule.js';
export { keyScheduleOfKeySet } from './keys/key-schedule-of-key-set.js';
export { ticketKeyOrderAt, nextTransitionMs, type TicketKeyOrder } from './keys/ticket-key-order.js';
export {
  derivationLabels,
  engineAeadKey,
  haproxyTicketKey,
  nginxTicketKeyFile,
  node128Keys,
  nodeTicketKeys,
  openssl256Keys,
} from './keys/key-material.js';

// Reaching the services.
export {
  channelCredentials,
  serviceConnectionFromEnv,
  type ServiceConnection,
} from './client/channel-credentials.js';
export { startWatchLoop, type WatchLoop, type WatchLoopOptions } from './client/watch-loop.js';
// Node TLS servers: shared ticket keys, session-id context, OpenSSL ticket callbacks, OCSP stapling.
export { attach, type AttachedTlsEngine } from './node-tls/attach.js';
export {
  compileAttachOptions,
  type AttachOptions,
  type CompiledAttachOptions,
  type EngineLogger,
} from './node-tls/attach-options.js';
export { staticKeySource, type StaticKeySource, type TicketKeySource } from './node-tls/key-source.js';
export { sessionIdContextForRing } from './node-tls/session-id-context.js';
export {
  connectWithClientCertificate,
  createClientCertificateContext,
  type ClientCertificateContext,
  type ClientCertificateContextOptions,
} from './node-tls/client-certificate-context.js';
export { loadNativePort, type NativePortStatus } from './node-tls/native-port.js';
export type { UserAppdataSource } from './node-tls/session-ticket-callbacks.js';
export { decodeTicketAppdata, encodeTicketAppdata, type TicketAppdata } from './node-tls/ticket-appdata.js';
export {
  TicketKeyResponder,
  TicketKeyResult,
  type OpenAnswer,
  type SealAnswer,
} from './node-tls/ticket-key-responder.js';
// Staples for the node: cache, WatchStaples provider, must-staple detection.
export { certificateId, certificateLabel } from './staples/certificate-id.js';
export {
  StapleCache,
  type CachedStaple,
  type StapleLookup,
  type StapleSource,
} from './staples/staple-cache.js';
export {
  WatchStaplesProvider,
  cachedStapleOf,
  type WatchStaplesClient,
  type WatchStaplesProviderOptions,
} from './staples/watch-staples-provider.js';
export { isMustStaple, TLS_FEATURE_OID } from './staples/must-staple.js';
// Engine tickets (format v1), decisions, key-set provider and engine metrics.
export {
  aeadKey,
  nobleTicketAead,
  nodeTicketAead,
  type AeadKey,
  type TicketAead,
} from './tickets/xchacha-aead.js';
export {
  defaultTicketAead,
  loadNativeTicketAead,
  type NativeTicketAeadStatus,
} from './tickets/native-ticket-aead.js';
export { TICKET_VERSION_1, ticketLimits, type TicketPayload } from './tickets/ticket-format.js';
export {
  createTicketCodec,
  type CodecKeys,
  type OpenedTicket,
  type TicketCodec,
  type TicketCodecOptions,
} from './tickets/ticket-codec.js';
export {
  composePolicies,
  enforceLegalDecision,
  type PolicyInput,
  type PolicyRingRules,
  type PolicyVerdict,
  type TicketConnection,
  type TicketPolicy,
} from './decisions/ticket-policy.js';
export {
  defaultTicketPolicies,
  issuedInFuturePolicy,
  keyStatePolicy,
  maxSessionAgePolicy,
  revokedClientPolicy,
  serverNameBindingPolicy,
  type RevokedClientSource,
} from './decisions/default-policies.js';
export {
  createTicketKeyRing,
  InvalidKeySetError,
  staticKeyRingSource,
  ticketKeyRingFromKeySet,
  type RingRules,
  type TicketKeyRing,
  type TicketKeyRingInput,
  type TicketKeyRingSource,
} from './engine/ticket-key-ring.js';
export {
  compileTicketEngineOptions,
  createTicketEngine,
  NoActiveKeyError,
  type GeneratedTicket,
  type ListenableKeySource,
  type TicketDecryptResult,
  type TicketEngine,
  type TicketEngineOptions,
} from './engine/ticket-engine.js';
export {
  compileKeySetProviderOptions,
  defaultNodeId,
  KeySetProvider,
  type KeySetListener,
  type KeySetProviderOptions,
  type KeySetServiceClient,
} from './providers/key-set-provider.js';
export {
  engineMetrics,
  decisionLabel,
  reasonLabel,
  type EngineMetrics,
  type RingMetricsView,
} from './metrics/engine-metrics.js';
// OCSP response validation (RFC 6960), shared by the staple service and the client-side check.
export {
  defaultMaxResponseBytes,
  defaultSkewMs,
  validateOcspResponse,
  type AnyHashCertId,
  type OcspSignerKind,
  type OcspValidationInput,
  type OcspValidationResult,
  type ValidatedStaple,
} from './ocsp/validate-response.js';
export { FetchResult, fetchFailure, type FetchFailure } from './ocsp/fetch-result.js';
export { certIdFor, certIdHashOf, type CertIdHashName } from './ocsp/cert-id.js';
export { parseDerStrict } from './ocsp/der.js';
export { ensurePkiEngine } from './ocsp/crypto-engine.js';
// Client side: stapled OCSP verification and client-certificate selection.
export {
  verifyStaple,
  type StapleOutcome,
  type StapleVerification,
  type VerifyStapleInput,
} from './ocsp-client/verify-staple.js';
export {
  connectWithStapleCheck,
  stapleDecision,
  StapleCheckError,
  type StapleCheckMode,
  type StapleCheckOptions,
  type StapleCheckResult,
} from './ocsp-client/staple-check.js';
export {
  acceptableIssuersFromPem,
  selectClientCertificate,
  type ClientCertificateCandidate,
  type SelectedClientCertificate,
} from './ocsp-client/client-certificate.js';
// The runnable engine node (src/node/main.ts) as a library: config and start.
export {
  compileEngineNodeConfig,
  ConfigError,
  type EngineNodeConfig,
  type HostPort,
} from './node/node-config.js';
export { startEngineNode, type EngineNode, type NodeLogger } from './node/engine-node.js';
export {
  parseServerFlight,
  probeCertificateRequest,
  type CertificateRequestProbe,
} from './ocsp-client/certificate-request.js';
