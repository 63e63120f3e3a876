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

/** A DeltaDiscoveryRequest, as it arrives. */
export interface DeltaDiscoveryRequest {
  node: { id: string; cluster: string } | null;
  type_url: string;
  resource_names_subscribe: string[];
  resource_names_unsubscribe: string[];
  initial_resource_versions: Record<string, string>;
  response_nonce: string;
  error_detail: { code: number; message: string } | null;
}

/** One resource of a DeltaDiscoveryResponse. */
export interface DeltaResource {
  name: string;
  version: string;
  resource: PackedResource;
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: DeltaResource[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
}

/** An Envoy DataSource as keyfleet fills it: bytes inline, or a file on the Envoy's disk. */
export type EnvoyDataSource = { inline_bytes: Buffer } | { filename: string };

/** The Secret fields keyfleet fills in. */
export interface EnvoySecret {
  name: string;
  session_ticket_keys?: { keys: { inline_bytes: Buffer }[] };
  tls_certificate?: {
    certificate_chain: EnvoyDataSource;
    private_key: EnvoyDataSource;
    ocsp_staple?: EnvoyDataSource;
  };
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

/** A protobufjs root holding the named Envoy proto files and what they import (keepCase). */
export function loadEnvoyRoot(...files: string[]): protobuf.Root {
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
  root.loadSync(files, { keepCase: true });
  return root;
}

let secretType: protobuf.Type | undefined;
function secretMessage(): protobuf.Type {
  secretType ??= loadEnvoyRoot('envoy/extensions/transport_sockets/tls/v3/secret.proto').lookupType(
    'envoy.extensions.transport_sockets.tls.v3.Secret',
  );
  return secretType;
}

/** A Secret packed as google.protobuf.Any, as `resources` carries it. */
export function packSecret(secret: EnvoySecret): PackedResource {
  const secretType = secretMessage();
  return {
    type_url: secretTypeUrl,
    value: Buffer.from(secretType.encode(secretType.fromObject(secret)).finish()),
  };
}

/** The inverse, for tests and clients. */
export function unpackSecret(resource: PackedResource): EnvoySecret {
  const secretType = secretMessage();
  return secretType.toObject(secretType.decode(resource.value), {
    bytes: Buffer,
    defaults: true,
  }) as EnvoySecret;
}
