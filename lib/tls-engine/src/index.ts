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
