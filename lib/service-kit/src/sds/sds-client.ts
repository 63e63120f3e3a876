/**
 * The Envoy side of SDS, on Envoy's own protos: what Envoy's SDS
 * subscription does on the wire (the first request names the node and the
 * resources, each response is ACKed with its version and nonce, a NACK keeps
 * the last good version, a reconnect sends the version it holds). The tests,
 * the SDS bench and debugging tools talk to keyfleet's SDS through it, so
 * they all speak the protocol the same way.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import {
  secretDiscoveryServiceDefinition,
  secretTypeUrl,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type DiscoveryRequest,
  type DiscoveryResponse,
} from './envoy-api.js';

export type SecretDiscoveryClient = grpc.Client & {
  StreamSecrets(): grpc.ClientDuplexStream<Partial<DiscoveryRequest>, DiscoveryResponse>;
  DeltaSecrets(): grpc.ClientDuplexStream<Partial<DeltaDiscoveryRequest>, DeltaDiscoveryResponse>;
  FetchSecrets(
    request: Partial<DiscoveryRequest>,
    callback: (error: grpc.ServiceError | null, response: DiscoveryResponse) => void,
  ): void;
};

/** A client of envoy.service.secret.v3.SecretDiscoveryService at host:port. */
export function secretDiscoveryClient(
  target: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
): SecretDiscoveryClient {
  const Client = grpc.makeGenericClientConstructor(
    secretDiscoveryServiceDefinition(),
    'SecretDiscoveryService',
  );
  return new Client(target, credentials, options) as unknown as SecretDiscoveryClient;
}

/** FetchSecrets as a promise. */
export function fetchSecrets(
  client: SecretDiscoveryClient,
  request: Partial<DiscoveryRequest>,
): Promise<DiscoveryResponse> {
  return new Promise((resolve, reject) =>
    client.FetchSecrets(request, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

/** What a stream has received so far, and a wait for the next. */
export interface ResponseLog<Response> {
  readonly responses: Response[];
  error(): grpc.ServiceError | undefined;
  /** Waits until `count` responses have arrived and returns the last of them. */
  next(count: number, timeoutMs?: number): Promise<Response>;
}

function responseLog<Response>(call: grpc.ClientDuplexStream<never, Response>): ResponseLog<Response> {
  const responses: Response[] = [];
  let error: grpc.ServiceError | undefined;
  call.on('data', (response: Response) => responses.push(response));
  call.on('error', (e: grpc.ServiceError) => (error = e));
  return {
    responses,
    error: () => error,
    async next(count: number, timeoutMs = 10_000): Promise<Response> {
      const deadline = Date.now() + timeoutMs;
      while (responses.length < count) {
        if (error) throw error;
        if (Date.now() > deadline) throw new Error(`no response ${count} within ${timeoutMs} ms`);
        await sleep(20);
      }
      return responses[count - 1]!;
    },
  };
}

export interface StateOfWorldSubscription extends ResponseLog<DiscoveryResponse> {
  ack(response: DiscoveryResponse): void;
  /** Rejects a response, keeping `lastGood` as the version held. */
  nack(response: DiscoveryResponse, lastGood: string, message?: string): void;
  close(): void;
}

/** One StreamSecrets stream subscribed to `names`, as Envoy opens it. */
export function subscribeSecrets(
  client: SecretDiscoveryClient,
  request: { nodeId: string; names: readonly string[]; heldVersion?: string },
): StateOfWorldSubscription {
  const call = client.StreamSecrets();
  const log = responseLog(call as grpc.ClientDuplexStream<never, DiscoveryResponse>);
  const resource_names = [...request.names];
  call.write({
    node: { id: request.nodeId, cluster: 'keyfleet-sds-client' },
    resource_names,
    type_url: secretTypeUrl,
    version_info: request.heldVersion ?? '',
  });
  return {
    ...log,
    ack: (response) =>
      call.write({
        version_info: response.version_info,
        response_nonce: response.nonce,
        resource_names,
        type_url: secretTypeUrl,
      }),
    nack: (response, lastGood, message = 'rejected by the client') =>
      call.write({
        version_info: lastGood,
        response_nonce: response.nonce,
        resource_names,
        type_url: secretTypeUrl,
        error_detail: { code: grpc.status.INVALID_ARGUMENT, message },
      }),
    close: () => call.cancel(),
  };
}

export interface DeltaSubscription extends ResponseLog<DeltaDiscoveryResponse> {
  send(request: Partial<DeltaDiscoveryRequest>): void;
  ack(response: DeltaDiscoveryResponse): void;
  close(): void;
}

/** One DeltaSecrets stream; `first` carries the subscriptions and any held versions. */
export function subscribeSecretsDelta(
  client: SecretDiscoveryClient,
  nodeId: string,
  first: Partial<DeltaDiscoveryRequest>,
): DeltaSubscription {
  const call = client.DeltaSecrets();
  const log = responseLog(call as grpc.ClientDuplexStream<never, DeltaDiscoveryResponse>);
  call.write({ node: { id: nodeId, cluster: 'keyfleet-sds-client' }, type_url: secretTypeUrl, ...first });
  return {
    ...log,
    send: (request) => call.write({ type_url: secretTypeUrl, ...request }),
    ack: (response) => call.write({ type_url: secretTypeUrl, response_nonce: response.nonce }),
    close: () => call.cancel(),
  };
}
