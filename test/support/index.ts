/**
 * Real-peer helpers for keyfleet's tests: a real redis-server, a throwaway PKI
 * made with the openssl CLI, `openssl ocsp` as a responder, gRPC servers on
 * port 0, npm start's fleet, nginx and HAProxy configurations, a cuttable TCP
 * relay, a real Prometheus and real Envoys. Nothing here mocks Redis, TLS or OCSP.
 */
export { startRedis, type TestRedis } from './redis-server.js';
export {
  createTestPki,
  type ClientOptions,
  type TestPki,
  type IssuedCertificate,
  type LeafOptions,
} from './test-pki.js';
export {
  fetchOcspResponse,
  startOcspResponder,
  type OcspResponder,
  type OcspResponderOptions,
} from './ocsp-responder.js';
export { startGrpcServer, drainGrpcServer, type TestGrpcServer } from './grpc-server.js';
export { freePort, waitForListening } from './ports.js';
export { makeTempDir, randomPrefix } from './temp-dir.js';
export { startProcess, type RunningProcess } from './child-process.js';
export { hasCommand, pinnedTool, requireCommand, systemPackageFor } from './system-commands.js';
export {
  runSClient,
  runSTime,
  sessionTicketHex,
  sessionTicketKeyName,
  ticketHexIn,
  ticketKeyNameIn,
  type SClientOptions,
  type SClientResult,
  type STimeOptions,
  type STimeResult,
  type TlsVersion,
} from './openssl-client.js';
export {
  localFleetEnvironment,
  startLocalFleet,
  type LocalFleet,
  type LocalFleetPorts,
} from './local-fleet.js';
export {
  writeHaproxyConfig,
  writeNginxConfig,
  type HaproxyConfig,
  type NginxConfig,
} from './terminator-configs.js';
export { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
export {
  startPrometheus,
  type PromAlert,
  type PromSample,
  type ScrapeJob,
  type TestPrometheus,
} from './prometheus.js';
export { startEnvoy, type EnvoyOptions, type EnvoyServerState, type TestEnvoy } from './envoy.js';
