import { readFileSync } from 'node:fs';
import { ServerCredentials, experimental } from '@grpc/grpc-js';
import { ConfigError, envBoolean, envOptionalString, type Env } from './config-env.js';
import { loadClientRoles, type ClientRoles } from './client-roles.js';

/**
 * How a service's gRPC port is secured: mTLS with roles from a file, or plain
 * text where every caller is admin — only with KEYFLEET_INSECURE_DEV=true.
 */
export type ServerSecurity =
  | {
      mode: 'mtls';
      credentials: ServerCredentials;
      roles: ClientRoles;
      /** Resolves once the certificate files have been loaded (handshakes before that fail). */
      ready(): Promise<void>;
    }
  | { mode: 'insecure-dev'; credentials: ServerCredentials };

export interface MtlsFiles {
  certPath: string;
  keyPath: string;
  clientCaPath: string;
  rolesPath: string;
}

export function mtlsSecurity(files: MtlsFiles, refreshIntervalMs = 60_000): ServerSecurity {
  // Read once here so a missing file stops start-up with the variable's name;
  // the provider below re-reads them, so renewed certificates (cert-manager)
  // apply without a restart.
  const check = (variable: string, path: string) => {
    try {
      readFileSync(path);
    } catch {
      throw new ConfigError(variable, `cannot read ${path}`);
    }
  };
  check('KEYFLEET_TLS_CERT', files.certPath);
  check('KEYFLEET_TLS_KEY', files.keyPath);
  check('KEYFLEET_TLS_CLIENT_CA', files.clientCaPath);
  const provider = new experimental.FileWatcherCertificateProvider({
    certificateFile: files.certPath,
    privateKeyFile: files.keyPath,
    caCertificateFile: files.clientCaPath,
    refreshIntervalMs,
  });
  // Ask every client for a certificate but do not fail the handshake without
  // one: such callers are answered UNAUTHENTICATED, which tells them more.
  // grpc-js reports only certificates that chain to the CA.
  const credentials = experimental.createCertificateProviderServerCredentials(provider, provider, false);
  // Our listeners go away once the files are loaded: a listener keeps the
  // provider's refresh timer (and so the process) alive.
  const ready = () =>
    new Promise<void>((resolve) => {
      let identityLoaded = false;
      let caLoaded = false;
      const settle = () => {
        if (!identityLoaded || !caLoaded) return;
        provider.removeIdentityCertificateListener(onIdentity);
        provider.removeCaCertificateListener(onCa);
        resolve();
      };
      const onIdentity = (update: unknown) => {
        identityLoaded ||= Boolean(update);
        settle();
      };
      const onCa = (update: unknown) => {
        caLoaded ||= Boolean(update);
        settle();
      };
      provider.addIdentityCertificateListener(onIdentity);
      provider.addCaCertificateListener(onCa);
    });
  return { mode: 'mtls', credentials, roles: loadClientRoles(files.rolesPath), ready };
}

export function insecureDevSecurity(): ServerSecurity {
  return { mode: 'insecure-dev', credentials: ServerCredentials.createInsecure() };
}

/** The variable that lets plain-text development mode listen beyond loopback. Its name is the warning. */
export const insecureDevOnNetworkVariable = 'KEYFLEET_INSECURE_DEV_ON_NETWORK_EVERY_CALLER_IS_ADMIN';

const tlsVariables = [
  'KEYFLEET_TLS_CERT',
  'KEYFLEET_TLS_KEY',
  'KEYFLEET_TLS_CLIENT_CA',
  'KEYFLEET_ROLES_FILE',
];

/** Whether host:port listens on loopback only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackAddress(address: string): boolean {
  const at = address.lastIndexOf(':');
  const host = (at < 0 ? address : address.slice(0, at)).replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * Reads KEYFLEET_TLS_CERT/KEY/CLIENT_CA/ROLES_FILE, or KEYFLEET_INSECURE_DEV.
 * The development flag never silently wins: with any TLS variable set it is
 * a configuration error (which one was meant?), and on an address other than
 * loopback (`listenAddress`) it is one too, unless
 * KEYFLEET_INSECURE_DEV_ON_NETWORK_EVERY_CALLER_IS_ADMIN=true says so.
 */
export function serverSecurityFromEnv(env: Env, listenAddress?: string): ServerSecurity {
  if (envBoolean(env, 'KEYFLEET_INSECURE_DEV', false)) {
    const tls = tlsVariables.filter((name) => envOptionalString(env, name));
    if (tls.length > 0) {
      throw new ConfigError(
        'KEYFLEET_INSECURE_DEV',
        `is set together with ${tls.join(', ')}: plain text would override mTLS; unset one or the other`,
      );
    }
    if (
      listenAddress !== undefined &&
      !isLoopbackAddress(listenAddress) &&
      !envBoolean(env, insecureDevOnNetworkVariable, false)
    ) {
      throw new ConfigError(
        'KEYFLEET_INSECURE_DEV',
        `plain text with every caller admin on ${listenAddress}, which is not loopback: listen on 127.0.0.1, ` +
          `or set ${insecureDevOnNetworkVariable}=true if that is really meant (development clusters only)`,
      );
    }
    return insecureDevSecurity();
  }
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
