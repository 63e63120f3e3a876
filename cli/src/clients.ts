import { Metadata, type CallOptions, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { StapleServiceClient, TicketKeyServiceClient } from '@keyfleet/proto';
import { channelCredentials, serviceConnectionFromEnv } from '@keyfleet/tls-engine';
import { environmentHasCredentials, localFleetConfigPath, type LocalFleetConfig } from './local-fleet.js';

/** Where the services are; flags win over the environment, which wins over the defaults. */
export interface ServiceAddresses {
  ticketKeys: string;
  ocspFetch: string;
  /** Deadline for each unary call. */
  timeoutMs: number;
}

/**
 * The gRPC clients a command uses, over mTLS unless KEYFLEET_INSECURE_DEV is
 * set, or plain text to the running local fleet's own addresses when the
 * environment names no credentials (see local-fleet.ts).
 */
export interface ServiceClients {
  ticketKeys(): TicketKeyServiceClient;
  staples(): StapleServiceClient;
  close(): void;
}

export function serviceClients(
  addresses: ServiceAddresses,
  env: NodeJS.ProcessEnv,
  localFleet?: LocalFleetConfig,
): ServiceClients {
  let ticketKeys: TicketKeyServiceClient | undefined;
  let staples: StapleServiceClient | undefined;
  // Credentials are read only when a command needs a service, so --help works without certificates.
  const credentials = (service: 'ticketKeys' | 'ocspFetch'): ChannelCredentials => {
    if (!environmentHasCredentials(env) && localFleet && localFleet[service] === addresses[service]) {
      return channelCredentials({ insecure: true });
    }
    try {
      return channelCredentials(serviceConnectionFromEnv(env));
    } catch (error) {
      throw new Error(
        `${(error as Error).message}; a local fleet started with npm start is found through ` +
          `${localFleetConfigPath(env)} while it runs`,
        { cause: error },
      );
    }
  };
  return {
    ticketKeys: () =>
      (ticketKeys ??= new TicketKeyServiceClient(addresses.ticketKeys, credentials('ticketKeys'))),
    staples: () => (staples ??= new StapleServiceClient(addresses.ocspFetch, credentials('ocspFetch'))),
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
