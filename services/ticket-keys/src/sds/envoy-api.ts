/**
 * Envoy's SDS contract, loaded from the protos Envoy publishes (shipped in
 * @grpc/grpc-js-xds under deps/): the SecretDiscoveryService definition for
 * the gRPC server, and the Secret message to pack into `Any`. Nothing of
 * Envoy's API is copied here; the shapes below name only the fields we use,
 * as proto-loader presents them (keepCase: snake_case, as in the .proto).
 */
import { accessSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

export const secretTypeUrl = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

const require = createRequire(import.meta.url);
const depsDir = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

/** Where Envoy's protos and the ones they import live. */
export const envoyApiIncludeDirs: readonly string[] = [
  'envoy-api',
  'xds',
  'googleapis',
  'protoc-gen-validate',
].map((dir) => path.join(depsDir, dir));

/** A DiscoveryRequest (SotW), as it arrives. */
export interface DiscoveryRequest {
  version_info: string;
  node: { id: string; cluster: string } | null;
  resource_names: string[];
  type_url: string;
  response_nonce: string;
  error_detail: { code: number; message: string } | null;
}

export interface PackedResource {
  type_url: string;
  value: Buffer;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: PackedResource[];
  type_url: string;
  nonce: string;
}

/** The Secret fields keyfleet fills in. */
export interface EnvoySecret {
  name: string;
  session_ticket_keys?: { keys: { inline_bytes: Buffer }[] };
}

const loaderOptions: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
  includeDirs: [...envoyApiIncludeDirs],
};

let definition: grpc.ServiceDefinition | undefined;
/** envoy.service.secret.v3.SecretDiscoveryService (loaded once). */
export function secretDiscoveryServiceDefinition(): grpc.ServiceDefinition {
  definition ??= protoLoader.loadSync('envoy/service/secret/v3/sds.proto', loaderOptions)[
    'envoy.service.secret.v3.SecretDiscoveryService'
  ] as grpc.ServiceDefinition;
  return definition;
}

function loadRoot(file: string): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of envoyApiIncludeDirs) {
      const candidate = path.join(dir, target);
      try {
        accessSync(candidate);
        return candidate;
      } catch {
        // not in this directory
      }
    }
    return target;
  };
  root.loadSync(file, { keepCase: true });
  return root;
}

let secretType: protobuf.Type | undefined;
/** A Secret packed as google.protobuf.Any, as `resources` carries it. */
export function packSecret(secret: EnvoySecret): PackedResource {
  secretType ??= loadRoot('envoy/extensions/transport_sockets/tls/v3/secret.proto').lookupType(
    'envoy.extensions.transport_sockets.tls.v3.Secret',
  );
  return {
    type_url: secretTypeUrl,
    value: Buffer.from(secretType.encode(secretType.fromObject(secret)).finish()),
  };
}

/** The inverse, for tests and clients. */
export function unpackSecret(resource: PackedResource): EnvoySecret {
  secretType ??= loadRoot('envoy/extensions/transport_sockets/tls/v3/secret.proto').lookupType(
    'envoy.extensions.transport_sockets.tls.v3.Secret',
  );
  return secretType.toObject(secretType.decode(resource.value), {
    bytes: Buffer,
    defaults: true,
  }) as EnvoySecret;
}
