/**
 * Minimal configurations for a real nginx and a real HAProxy terminating TLS on
 * loopback, resuming by ticket only (no session cache), as the sync sidecars
 * expect them: nginx names a fixed list of ticket-key files, HAProxy one
 * tls-ticket-keys file and an admin socket for live updates.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface NginxConfig {
  /** nginx's prefix (-p): pid, logs and temp files go here. */
  readonly dir: string;
  readonly port: number;
  readonly chainPath: string;
  readonly keyPath: string;
  /** One ssl_session_ticket_key line each, in order (the first seals). */
  readonly ticketKeyFiles: readonly string[];
  /** ssl_stapling_file, when stapling. */
  readonly staplingFile?: string;
}

/** Writes `<dir>/nginx.conf`; returns its path. Start with `nginx -p dir -c conf -g 'daemon off;'`. */
export function writeNginxConfig(config: NginxConfig): string {
  const { dir } = config;
  mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const file = path.join(dir, 'nginx.conf');
  const keys = config.ticketKeyFiles.map((keyFile) => `ssl_session_ticket_key ${keyFile};`).join('\n    ');
  const stapling = config.staplingFile
    ? `ssl_stapling on;\n    ssl_stapling_file ${config.staplingFile};`
    : '';
  writeFileSync(
    file,
    `error_log ${dir}/error.log notice;
pid ${dir}/nginx.pid;
worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  server {
    listen 127.0.0.1:${config.port} ssl;
    ssl_certificate ${config.chainPath};
    ssl_certificate_key ${config.keyPath};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ${keys}
    ${stapling}
    location / { return 200 "ok\\n"; }
  }
}
`,
  );
  return file;
}

export interface HaproxyConfig {
  readonly dir: string;
  readonly port: number;
  /** Chain and key in one PEM (HAProxy's crt); a `<pem>.ocsp` beside it is stapled. */
  readonly certificatePem: string;
  readonly ticketKeyFile: string;
  readonly socket: string;
}

/** Writes `<dir>/haproxy.cfg`; returns its path. Start with `haproxy -f cfg -db`. */
export function writeHaproxyConfig(config: HaproxyConfig): string {
  mkdirSync(config.dir, { recursive: true });
  const file = path.join(config.dir, 'haproxy.cfg');
  writeFileSync(
    file,
    `global
  stats socket ${config.socket} level admin
  # Resumption by ticket only: no session cache to resume from instead.
  tune.ssl.cachesize 0
defaults
  mode http
  timeout client 10s
  timeout connect 10s
  timeout server 10s
frontend tls
  bind 127.0.0.1:${config.port} ssl crt ${config.certificatePem} tls-ticket-keys ${config.ticketKeyFile}
  http-request return status 200 content-type text/plain string ok
`,
  );
  return file;
}
