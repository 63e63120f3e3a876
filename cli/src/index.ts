/**
 * @keyfleet/cli — the `keyfleet` command and the sync sidecars' building
 * blocks, for tools that embed them: the program, the terminator targets, the
 * runner that feeds them from WatchKeySet / WatchStaples, and the pure
 * layouts (nginx slots, HAProxy's three-key ring, Node's ticketKeys).
 */
export { createProgram } from './program.js';
export {
  localFleetConfigPath,
  readLocalFleetConfig,
  removeLocalFleetConfig,
  writeLocalFleetConfig,
  type LocalFleetConfig,
} from './local-fleet.js';
export {
  nginxTicketKeySlots,
  nginxTicketKeyFileName,
  type NginxTicketKeyLayout,
} from './sync/nginx-ticket-keys.js';
export {
  HAPROXY_TICKET_KEY_COUNT,
  haproxyTicketKeyFileText,
  haproxyTicketKeyLines,
  haproxyTicketKeyPushes,
  type HaproxyTicketKeyLayout,
} from './sync/haproxy-ticket-keys.js';
export { nodeTicketKeysFile } from './sync/node-ticket-keys.js';
export { createFillerKeys, type FillerKey } from './sync/filler-keys.js';
export { writeFileAtomic, removeFileIfPresent } from './sync/atomic-file.js';
export { OCSP_TRY_LATER_DER, certificateIdOfPem, servableStaple } from './sync/staple-files.js';
export { stapleDestinations, type StapleDestinations } from './sync/staple-destinations.js';
export { haproxyRuntimeApi, parseShowTlsKeys, type HaproxyRuntimeApi } from './sync/haproxy-runtime-api.js';
export { nginxTarget, type NginxTargetOptions } from './sync/nginx-target.js';
export { haproxyTarget, type HaproxyTargetOptions } from './sync/haproxy-target.js';
export { filesTarget, type FilesTargetOptions } from './sync/files-target.js';
export {
  startSyncRunner,
  type SyncEvent,
  type SyncRunner,
  type SyncRunnerOptions,
} from './sync/sync-runner.js';
export type { ApplyReport, SyncTarget } from './sync/sync-target.js';
export { parseCommandLine, runReloadCommand, type ReloadResult } from './sync/reload-command.js';
export { syncMetrics, type SyncMetrics, type SyncStream } from './sync/sync-metrics.js';
