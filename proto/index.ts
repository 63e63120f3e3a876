/**
 * The keyfleet.v1 contract: ts-proto messages, grpc-js service definitions and
 * clients, generated from the .proto files beside this one by `npm run gen`.
 * `protoRoot` is the include path for tools that load the .proto files at run
 * time (gRPC reflection, grpcurl, other languages' generators).
 */
import { fileURLToPath } from 'node:url';

export * from './gen/keyfleet/v1/common.js';
export * from './gen/keyfleet/v1/ticket_keys.js';
export * from './gen/keyfleet/v1/tickets.js';
export * from './gen/keyfleet/v1/staples.js';

/** Directory that holds `keyfleet/v1/*.proto`. */
export const protoRoot: string = fileURLToPath(new URL('.', import.meta.url));

/** The .proto files of the contract, relative to `protoRoot`. */
export const protoFiles: readonly string[] = [
  'keyfleet/v1/common.proto',
  'keyfleet/v1/ticket_keys.proto',
  'keyfleet/v1/tickets.proto',
  'keyfleet/v1/staples.proto',
];
