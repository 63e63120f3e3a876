import { Metadata, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import { StapleServiceClient, TicketKeyServiceClient } from '@keyfleet/proto';
import { channelCredentials, serviceConnectionFromEnv } from '@keyfleet/tls-engine';

/** Where the services are; flags win over the environment, which wins over the defaults. */
export interface ServiceAddresses {
  ticketKeys: string;
  ocspFetch: string;
  /** Deadline for each unary call. */
  timeoutMs: number;
}

/** The gRPC clients a command uses, over mTLS unless KEYFLEET_INSECURE_DEV is set. */
export interface ServiceClients {
  ticketKeys(): TicketKeyServiceClient;
  staples(): StapleServiceClient;
  close(): void;
}

export function serviceClients(addresses: ServiceAddresses, env: NodeJS.ProcessEnv): ServiceClients {
  let ticketKeys: TicketKeyServiceClient | undefined;
  let staples: StapleServiceClient | undefined;
  // Credentials are read only when a command needs a service, so --help works without certificates.
  const credentials = () => channelCredentials(serviceConnectionFromEnv(env));
  return {
    ticketKeys: () => (ticketKeys ??= new TicketKeyServiceClient(addresses.ticketKeys, credentials())),
    staples: () => (staples ??= new StapleServiceClient(addresses.ocspFetch, credentials())),
    close() {
      ticketKeys?.close();
      staples?.close();
    },
  };
}

type UnaryMethod<Request, Response> = (
  request: Request,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Response) => void,
) => unknown;

/** Calls a unary method with a deadline and turns it into a promise. */
export function unary<Request, Response>(
  method: UnaryMethod<Request, Response>,
  request: Request,
  timeoutMs: number,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    method(request, new Metadata(), { deadline: Date.now() + timeoutMs }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}
