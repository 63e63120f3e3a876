import { readFileSync } from 'node:fs';
import { ServerCredentials } from '@grpc/grpc-js';
import { ConfigError, envBoolean, envOptionalString, type Env } from './config-env.js';
import { loadClientRoles, type ClientRoles } from './client-roles.js';

/**
 * How a service's gRPC port is secured: mTLS with roles from a file, or plain
 * text where every caller is admin — only with KEYFLEET_INSECURE_DEV=true.
 */
export type ServerSecurity =
  | { mode: 'mtls'; credentials: ServerCredentials; roles: ClientRoles }
  | { mode: 'insecure-dev'; credentials: ServerCredentials };

export interface MtlsFiles {
  certPath: string;
  keyPath: string;
  clientCaPath: string;
  rolesPath: string;
}

export function mtlsSecurity(files: MtlsFiles): ServerSecurity {
  const read = (variable: string, path: string) => {
    try {
      return readFileSync(path);
    } catch {
      throw new ConfigError(variable, `cannot read ${path}`);
    }
  };
  const credentials = ServerCredentials.createSsl(
    read('KEYFLEET_TLS_CLIENT_CA', files.clientCaPath),
    [
      {
        cert_chain: read('KEYFLEET_TLS_CERT', files.certPath),
        private_key: read('KEYFLEET_TLS_KEY', files.keyPath),
      },
    ],
    // Callers without a certificate still connect and are answered
    // UNAUTHENTICATED, which tells them more than a failed handshake.
    false,
  );
  return { mode: 'mtls', credentials, roles: loadClientRoles(files.rolesPath) };
}

export function insecureDevSecurity(): ServerSecurity {
  return { mode: 'insecure-dev', credentials: ServerCredentials.createInsecure() };
}

/** Reads KEYFLEET_TLS_CERT/KEY/CLIENT_CA/ROLES_FILE, or KEYFLEET_INSECURE_DEV. */
export function serverSecurityFromEnv(env: Env): ServerSecurity {
  if (envBoolean(env, 'KEYFLEET_INSECURE_DEV', false)) return insecureDevSecurity();
  const required = (name: string) => {
    const value = envOptionalString(env, name);
    if (!value) {
      throw new ConfigError(
        name,
        'required for mTLS (or set KEYFLEET_INSECURE_DEV=true for local development)',
      );
    }
    return value;
  };
  return mtlsSecurity({
    certPath: required('KEYFLEET_TLS_CERT'),
    keyPath: required('KEYFLEET_TLS_KEY'),
    clientCaPath: required('KEYFLEET_TLS_CLIENT_CA'),
    rolesPath: required('KEYFLEET_ROLES_FILE'),
  });
}
