/**
 * deploy/k8s/examples/envoy as a test runs it: the example's own bootstrap
 * and file-based SDS sources, read from the repository, with only what a
 * machine without Kubernetes must change: listener ports, the two keyfleet
 * clusters' addresses (loopback instead of the Services' DNS names), the
 * paths of the mounted certificates, the node id and the staple's
 * certificate id; and one thing for the test's client: the HTTP connection
 * manager closes at once after its answer, where Envoy would wait a second
 * (delayed_close_timeout) for `openssl s_client`, which waits for the
 * server's close, to close first. Everything else (mTLS to keyfleet with SAN checks, HTTP/2
 * keepalive, session_ticket_keys_sds_secret_config, LENIENT stapling,
 * initial_fetch_timeout 0s, tickets only) is what users deploy.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

const exampleDir = path.resolve(import.meta.dirname, '../../deploy/k8s/examples/envoy');

type Json = Record<string, unknown>;
const readExample = (file: string): Json => parse(readFileSync(path.join(exampleDir, file), 'utf8')) as Json;

export interface ExampleBootstrapOptions {
  /** Envoy's node.id: ticket-keys counts ACKs per mTLS identity and node id. */
  readonly nodeId: string;
  /** The TLS listener's port (the example's :8443). */
  readonly httpsPort: number;
  /** The health listener's port (the example's :8081). */
  readonly healthPort: number;
  /** ticket-keys' and ocsp-fetch's gRPC ports on 127.0.0.1. */
  readonly ticketKeysPort: number;
  readonly ocspFetchPort: number;
  /** The ring: the secret is named ticket-keys/<ring>. */
  readonly ring: string;
  /** The registered certificate's id: the secret is named staple/<id>. */
  readonly certificateId: string;
  /** The client certificate Envoy presents to keyfleet (chain and key PEM files) and the CA that signed keyfleet's. */
  readonly clientChainPath: string;
  readonly clientKeyPath: string;
  readonly caPath: string;
  /** Where the rewritten file-based SDS sources go (the example's /etc/envoy/config). */
  readonly dir: string;
}

/** The example bootstrap, rewritten as the module comment says, as a plain object for startEnvoy(). */
export function exampleBootstrap(options: ExampleBootstrapOptions): Json {
  const bootstrap = readExample('envoy.yaml');
  // startEnvoy() adds an admin endpoint on a port the kernel picks.
  delete bootstrap.admin;
  bootstrap.node = { ...(bootstrap.node as Json), id: options.nodeId };

  const clientSource = path.join(options.dir, 'sds-keyfleet-client.json');
  const caSource = path.join(options.dir, 'sds-keyfleet-ca.json');
  writeFileSync(clientSource, JSON.stringify(clientSecretSource(options)));
  writeFileSync(caSource, JSON.stringify(caSecretSource(options)));

  const text = JSON.stringify(bootstrap)
    .replaceAll('/etc/envoy/config/sds-keyfleet-client.yaml', clientSource)
    .replaceAll('/etc/envoy/config/sds-keyfleet-ca.yaml', caSource)
    .replaceAll('"ticket-keys/edge"', JSON.stringify(`ticket-keys/${options.ring}`))
    .replace(/"staple\/0{64}"/, JSON.stringify(`staple/${options.certificateId}`));
  const rewritten = JSON.parse(text) as Json;

  const resources = rewritten.static_resources as { listeners: Json[]; clusters: Json[] };
  const ports: Record<string, number> = { https: options.httpsPort, health: options.healthPort };
  for (const listener of resources.listeners) {
    const port = ports[listener.name as string];
    if (port === undefined)
      throw new Error(`the example has a listener this test does not know: ${String(listener.name)}`);
    // Loopback only: the test's machine is not a pod.
    Object.assign(socketAddressOf(listener), { address: '127.0.0.1', port_value: port });
    for (const chain of listener.filter_chains as { filters: { typed_config: Json }[] }[]) {
      for (const filter of chain.filters) filter.typed_config.delayed_close_timeout = '0s';
    }
  }
  const upstreams: Record<string, number> = {
    'keyfleet-ticket-keys': options.ticketKeysPort,
    'keyfleet-ocsp-fetch': options.ocspFetchPort,
  };
  for (const cluster of resources.clusters) {
    const port = upstreams[cluster.name as string];
    if (port === undefined) continue;
    // A literal address needs no DNS; the SNI and SAN checks keep the Services' names.
    cluster.type = 'STATIC';
    const address = socketAddressOf(
      (cluster.load_assignment as { endpoints: { lb_endpoints: { endpoint: Json }[] }[] }).endpoints[0]!
        .lb_endpoints[0]!.endpoint,
    );
    address.address = '127.0.0.1';
    address.port_value = port;
  }
  return rewritten;
}

function socketAddressOf(holder: Json): Json {
  return (holder.address as { socket_address: Json }).socket_address;
}

/** sds-keyfleet-client.yaml with the mounted Secret's paths replaced. */
function clientSecretSource(options: ExampleBootstrapOptions): Json {
  const source = readExample('sds-keyfleet-client.yaml') as { resources: Json[] };
  const secret = source.resources[0]!;
  secret.tls_certificate = {
    certificate_chain: { filename: options.clientChainPath },
    private_key: { filename: options.clientKeyPath },
  };
  return source;
}

/** sds-keyfleet-ca.yaml with the mounted CA's path replaced. */
function caSecretSource(options: ExampleBootstrapOptions): Json {
  const source = readExample('sds-keyfleet-ca.yaml') as { resources: Json[] };
  source.resources[0]!.validation_context = { trusted_ca: { filename: options.caPath } };
  return source;
}
