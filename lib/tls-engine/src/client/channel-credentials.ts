import { readFileSync } from 'node:fs';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';

/**
 * How a node or tool reaches the services: mTLS with its own certificate (the
 * service maps the certificate to a role), or plain text for local
 * development only.
 */
export type ServiceConnection =
  { insecure: true } | { insecure?: false; caPath: string; certPath: string; keyPath: string };

export function channelCredentials(connection: ServiceConnection): ChannelCredentials {
  if (connection.insecure) return credentials.createInsecure();
  return credentials.createSsl(
    readFileSync(connection.caPath),
    readFileSync(connection.keyPath),
    readFileSync(connection.certPath),
  );
}

/**
 * Reads KEYFLEET_INSECURE_DEV, or KEYFLEET_CLIENT_CA / KEYFLEET_CLIENT_CERT /
 * KEYFLEET_CLIENT_KEY, throwing an error that names the missing variable.
 */
export function serviceConnectionFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): ServiceConnection {
  if (/^(1|true|yes|on)$/i.test(env.KEYFLEET_INSECURE_DEV ?? '')) return { insecure: true };
  const required = (name: string) => {
    const value = env[name]?.trim();
    if (!value) throw new Error(`${name}: required for mTLS to the services (or KEYFLEET_INSECURE_DEV=true)`);
    return value;
  };
  return {
    caPath: required('KEYFLEET_CLIENT_CA'),
    certPath: required('KEYFLEET_CLIENT_CERT'),
    keyPath: required('KEYFLEET_CLIENT_KEY'),
  };
}
