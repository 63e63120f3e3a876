/**
 * deploy/k8s/examples/envoy: the bootstrap and its file-based SDS sources pass
 * the strict check against Envoy's protos (./envoy-config.ts), and they fit
 * the Deployment, keyfleet's Services and certificates, and ocsp-fetch's
 * private-key path template. The checker itself can fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { checkEnvoyBootstrap, checkEnvoyMessage } from './envoy-config.js';

const root = path.resolve(import.meta.dirname, '../..');
const exampleDir = path.join(root, 'deploy/k8s/examples/envoy');
const read = (file: string) => readFileSync(path.join(exampleDir, file), 'utf8');
const readYamlDocuments = (file: string) =>
  parseAllDocuments(readFileSync(path.join(root, file), 'utf8')).map((doc) => doc.toJS() as Json);

type Json = Record<string, unknown>;
const bootstrapText = read('envoy.yaml');
const bootstrap = (): Json => parse(bootstrapText) as Json;

const secretTypeUrl = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
/** ocsp-fetch's KEYFLEET_SDS_PRIVATE_KEY_PATH, as the example tells the operator to set it. */
const privateKeyTemplate = '/etc/envoy/private/{certificate}.key';

/** Every [path, value] at and below `value`, depth first. */
function* walk(value: unknown, at = ''): Generator<[string, unknown]> {
  yield [at, value];
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) yield* walk(item, `${at}[${index}]`);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) yield* walk(item, at ? `${at}.${key}` : key);
  }
}

/** Each SdsSecretConfig ({name, sds_config}) in a config. */
function sdsSecretConfigs(config: unknown): { path: string; name: string; sds: Json }[] {
  return [...walk(config)]
    .filter(([, value]) => typeof value === 'object' && value !== null && 'sds_config' in value)
    .map(([at, value]) => {
      const { name, sds_config } = value as { name: string; sds_config: Json };
      return { path: at, name, sds: sds_config };
    });
}

const kustomization = parse(read('kustomization.yaml')) as {
  configMapGenerator: { name: string; files: string[] }[];
};
const [deployment] = parseAllDocuments(read('envoy-edge.yaml'))
  .map((doc) => doc.toJS() as Json)
  .filter((object) => object.kind === 'Deployment') as unknown as IDeployment[];
const pod = deployment!.spec!.template.spec!;
const envoyContainer = pod.containers.find((container) => container.name === 'envoy')!;
const configMapName = kustomization.configMapGenerator[0]!.name;
const configMount = envoyContainer.volumeMounts!.find(
  (mount) => pod.volumes!.find((volume) => volume.name === mount.name)?.configMap?.name === configMapName,
)!;

/** The ConfigMap's file that Envoy sees at `file`, or undefined. */
function configMapFile(file: string): string | undefined {
  const name = path.posix.relative(configMount.mountPath, file);
  return kustomization.configMapGenerator[0]!.files.includes(name) ? name : undefined;
}

test('the example bootstrap passes the strict check against Envoy’s protos', () => {
  assert.deepEqual(checkEnvoyBootstrap(bootstrap()), []);
});

test('the Deployment runs that bootstrap from the ConfigMap, each pod under its own node id', () => {
  const args = envoyContainer.args ?? [];
  const flag = (name: string) => args[args.indexOf(name) + 1];
  assert.equal(configMapFile(flag('--config-path') ?? ''), 'envoy.yaml');
  assert.equal(flag('--service-node'), '$(POD_NAME)');
  assert.equal(
    envoyContainer.env?.find((variable) => variable.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath,
    'metadata.name',
  );
  assert.equal(envoyContainer.image, 'envoyproxy/envoy:v1.40.0');
  // Admin on loopback only; the kubelet's probe reaches /ready through the health listener.
  const config = bootstrap() as {
    admin: { address: { socket_address: { address: string; port_value: number } } };
    static_resources: { listeners: { name: string; address: { socket_address: { port_value: number } } }[] };
  };
  assert.equal(config.admin.address.socket_address.address, '127.0.0.1');
  const probe = envoyContainer.readinessProbe!.httpGet!;
  assert.equal(probe.path, '/ready');
  const probePort = envoyContainer.ports!.find((port) => port.name === probe.port)!.containerPort;
  const health = config.static_resources.listeners.find((listener) => listener.name === 'health')!;
  assert.equal(health.address.socket_address.port_value, probePort);
  const https = config.static_resources.listeners.find((listener) => listener.name === 'https')!;
  assert.equal(
    https.address.socket_address.port_value,
    envoyContainer.ports!.find((port) => port.name === 'https')!.containerPort,
  );
});

test('file-based SDS sources are DiscoveryResponses of exactly the one Secret that names them', () => {
  // A file source hands all its resources to each secret reading it and Envoy
  // rejects the update unless there is exactly one; `envoy --mode validate`
  // does not notice.
  const fromFiles = sdsSecretConfigs(bootstrap()).filter(({ sds }) => sds.path_config_source);
  assert.ok(fromFiles.length >= 2, 'client certificate and CA come from files');
  for (const { path: at, name, sds } of fromFiles) {
    const file = (sds.path_config_source as { path: string }).path;
    const shipped = configMapFile(file);
    assert.ok(shipped, `${at}: ${file} is a file of the ConfigMap`);
    const response = parse(read(shipped)) as { resources: Json[] };
    assert.deepEqual(
      checkEnvoyMessage('envoy.service.discovery.v3.DiscoveryResponse', response),
      [],
      shipped,
    );
    assert.equal(response.resources.length, 1, `${shipped} holds one Secret`);
    assert.equal(response.resources[0]!['@type'], secretTypeUrl);
    assert.equal(response.resources[0]!.name, name, `${shipped} holds the secret ${at} names`);
  }
});

test('SDS from keyfleet: ticket-keys/edge and staple/<id> over HTTP/2 mTLS to the Services, waiting for them', () => {
  const config = bootstrap() as { static_resources: { clusters: Json[] } };
  const services = new Map(
    ['deploy/k8s/base/ticket-keys.yaml', 'deploy/k8s/base/ocsp-fetch.yaml']
      .flatMap(readYamlDocuments)
      .filter((object) => object.kind === 'Service')
      .map((object) => [
        (object.metadata as { name: string }).name,
        (object.spec as { ports: { name: string; port: number }[] }).ports.find((p) => p.name === 'grpc')!
          .port,
      ]),
  );
  const dnsNames = new Map(
    readYamlDocuments('deploy/k8s/components/cert-manager/certificates.yaml')
      .filter((object) => object.kind === 'Certificate')
      .map((object) => [
        (object.spec as { secretName: string }).secretName,
        (object.spec as { dnsNames?: string[] }).dnsNames ?? [],
      ]),
  );
  const expected: Record<string, { cluster: string; service: string }> = {
    'ticket-keys/edge': { cluster: 'keyfleet-ticket-keys', service: 'ticket-keys' },
  };
  const grpcSecrets = sdsSecretConfigs(bootstrap()).filter(({ sds }) => sds.api_config_source);
  const staples = grpcSecrets.filter(({ name }) => name.startsWith('staple/'));
  assert.equal(staples.length, 1);
  for (const { name } of staples) expected[name] = { cluster: 'keyfleet-ocsp-fetch', service: 'ocsp-fetch' };
  assert.deepEqual(grpcSecrets.map(({ name }) => name).sort(), Object.keys(expected).sort());

  for (const { path: at, name, sds } of grpcSecrets) {
    const want = expected[name]!;
    const source = sds.api_config_source as Json;
    assert.equal(source.api_type, 'GRPC', at);
    assert.equal(source.transport_api_version, 'V3', at);
    assert.equal(sds.resource_api_version, 'V3', at);
    // Not-ready until the secrets arrive, rather than LIVE without them after 15 s.
    assert.equal(sds.initial_fetch_timeout, '0s', at);
    assert.deepEqual(source.grpc_services, [{ envoy_grpc: { cluster_name: want.cluster } }], at);

    const cluster = config.static_resources.clusters.find((c) => c.name === want.cluster) as {
      load_assignment: {
        endpoints: { lb_endpoints: { endpoint: { address: { socket_address: Json } } }[] }[];
      };
      typed_extension_protocol_options: Record<string, { explicit_http_config?: Json }>;
      transport_socket: { typed_config: Json };
    };
    assert.ok(cluster, `${at}: cluster ${want.cluster}`);
    const address = cluster.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address;
    const host = `${want.service}.keyfleet.svc`;
    assert.equal(address.address, host);
    assert.equal(address.port_value, services.get(want.service));
    const options =
      cluster.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    assert.ok(options?.explicit_http_config?.http2_protocol_options, `${want.cluster}: HTTP/2`);

    const tls = cluster.transport_socket.typed_config as {
      '@type': string;
      sni: string;
      common_tls_context: {
        tls_certificate_sds_secret_configs: { name: string }[];
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: Json[] };
        };
      };
    };
    assert.equal(
      tls['@type'],
      'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    );
    assert.equal(tls.sni, host);
    assert.deepEqual(
      tls.common_tls_context.combined_validation_context.default_validation_context
        .match_typed_subject_alt_names,
      [{ san_type: 'DNS', matcher: { exact: host } }],
    );
    assert.ok(dnsNames.get(`keyfleet-${want.service}-tls`)?.includes(host), `${host} is in its certificate`);
    assert.deepEqual(
      tls.common_tls_context.tls_certificate_sds_secret_configs.map((secret) => secret.name),
      ['keyfleet-node-client'],
    );
  }
});

test('every file Envoy reads is mounted; the site key where ocsp-fetch’s template puts it', () => {
  const files: string[] = [];
  const collect = (config: unknown) => {
    for (const [at, value] of walk(config)) {
      if (/\.(filename|path_config_source\.path|watched_directory\.path)$/.test(at))
        files.push(value as string);
    }
  };
  collect(bootstrap());
  for (const file of kustomization.configMapGenerator[0]!.files) {
    if (file !== 'envoy.yaml') collect(parse(read(file)));
  }
  const mounts = envoyContainer.volumeMounts ?? [];
  const volumeAt = (file: string) => {
    const mount = mounts.find((m) => file === m.mountPath || file.startsWith(`${m.mountPath}/`));
    return mount && pod.volumes!.find((volume) => volume.name === mount.name);
  };
  assert.ok(files.length >= 6, files.join(' '));
  for (const file of files) assert.ok(volumeAt(file), `${file} is under a volume mount`);
  // The client identity: keyfleet-node-client, CN=keyfleet-node (a node of ring edge).
  assert.equal(volumeAt('/etc/keyfleet/client/tls.crt')?.secret?.secretName, 'keyfleet-node-client');

  const staple = sdsSecretConfigs(bootstrap()).find(({ name }) => name.startsWith('staple/'))!;
  const id = staple.name.slice('staple/'.length);
  assert.match(id, /^[0-9a-f]{64}$/, 'a certificate id is 64 lower-case hex digits');
  const keyFile = privateKeyTemplate.replace('{certificate}', id);
  const keyVolume = volumeAt(keyFile);
  assert.ok(keyVolume?.secret, `${keyFile} is mounted from a Secret`);
  const mountPath = mounts.find((m) => m.name === keyVolume.name)!.mountPath;
  assert.deepEqual(keyVolume.secret.items, [
    { key: 'tls.key', path: path.posix.relative(mountPath, keyFile) },
  ]);
  // The operator is told which template to run ocsp-fetch with, and which command prints the id.
  for (const text of [bootstrapText, read('kustomization.yaml')]) {
    assert.ok(text.includes(`KEYFLEET_SDS_PRIVATE_KEY_PATH=${privateKeyTemplate}`));
  }
  assert.match(bootstrapText, /keyfleet staple register/);
});

/** The first error of a mutated copy of the example bootstrap. */
function errorsAfter(
  change: (config: Json & { static_resources: { listeners: Json[]; clusters: Json[] } }) => void,
) {
  const config = bootstrap() as Json & { static_resources: { listeners: Json[]; clusters: Json[] } };
  change(config);
  return checkEnvoyBootstrap(config);
}
const downstreamTls = (config: { static_resources: { listeners: Json[] } }) =>
  (config.static_resources.listeners[0] as { filter_chains: { transport_socket: { typed_config: Json } }[] })
    .filter_chains[0]!.transport_socket.typed_config;
const downstreamPath = 'static_resources.listeners[0].filter_chains[0].transport_socket.typed_config';

test('the check can fail: a misspelt field, named with its path', () => {
  const errors = errorsAfter((config) => {
    const tls = downstreamTls(config);
    tls.ocsp_stapel_policy = tls.ocsp_staple_policy;
    delete tls.ocsp_staple_policy;
  });
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(
    errors[0]!,
    /^static_resources\.listeners\[0\]\.filter_chains\[0\]\.transport_socket\.typed_config\.ocsp_stapel_policy: unknown field of envoy\.extensions\.transport_sockets\.tls\.v3\.DownstreamTlsContext \(did you mean ocsp_staple_policy\?\)$/,
  );
});

test('the check can fail: a wrong enum name', () => {
  const errors = errorsAfter((config) => {
    downstreamTls(config).ocsp_staple_policy = 'LENIENT';
  });
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.ok(
    errors[0]!.startsWith(`${downstreamPath}.ocsp_staple_policy: string "LENIENT" is no value of enum`),
    errors[0],
  );
  assert.match(errors[0]!, /did you mean LENIENT_STAPLING\?/);
});

test('the check can fail: two members of one oneof', () => {
  const errors = errorsAfter((config) => {
    downstreamTls(config).disable_stateless_session_resumption = true;
  });
  assert.deepEqual(errors, [
    `${downstreamPath}: at most one of oneof session_ticket_keys_type may be set, got session_ticket_keys_sds_secret_config and disable_stateless_session_resumption`,
  ]);
});

test('the check can fail: an @type that names no loaded message', () => {
  const errors = errorsAfter((config) => {
    downstreamTls(config)['@type'] =
      'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContex';
  });
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.ok(
    errors[0]!.startsWith(
      `${downstreamPath}["@type"]: envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContex is not a loaded message`,
    ),
    errors[0],
  );
});

test('the check can fail: shapes, well-known types, deprecated fields and validate rules', () => {
  const cluster = 'static_resources.clusters[0]';
  const errors = errorsAfter((config) => {
    const first = config.static_resources.clusters[0] as Json & { load_assignment: Json };
    first.connect_timeout = 2; // a Duration is a string
    first.load_assignment.endpoints = {}; // repeated
    first.typed_extension_protocol_options = []; // map
    first.http2_protocol_options = {}; // deprecated in v3
    first.per_connection_buffer_limit_bytes = { value: 1024 }; // a wrapper is its bare scalar
    (config.admin as { address: { socket_address: Json } }).address.socket_address.port_value = 70000;
    delete (
      config.static_resources.listeners[0] as { filter_chains: { filters: { typed_config: Json }[] }[] }
    ).filter_chains[0]!.filters[0]!.typed_config.stat_prefix;
  });
  const expectations: [string, RegExp][] = [
    [`${cluster}.connect_timeout`, /expected a Duration string/],
    [`${cluster}.load_assignment.endpoints`, /expected an array/],
    [`${cluster}.typed_extension_protocol_options`, /expected an object \(map\)/],
    [`${cluster}.http2_protocol_options`, /deprecated/],
    [`${cluster}.per_connection_buffer_limit_bytes`, /expected an integer \(uint32\)/],
    ['admin.address.socket_address.port_value', /at most 65535/],
    [
      'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefix (left out)',
      /length of at least 1/,
    ],
  ];
  for (const [at, message] of expectations) {
    assert.ok(
      errors.some((error) => error.startsWith(`${at}: `) && message.test(error)),
      `${at} ${message}:\n${errors.join('\n')}`,
    );
  }
  assert.equal(errors.length, expectations.length, errors.join('\n'));
});
