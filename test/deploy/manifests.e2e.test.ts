/**
 * Every kustomization renders with the pinned kustomize (`kustomize build`,
 * what `kubectl kustomize` runs); every object validates
 * against the Kubernetes OpenAPI schema (kubernetes-models' validators, no
 * cluster needed), custom resources get a structural check of our own; the
 * alerts pass `promtool check rules` and `promtool test rules`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse, stringify } from 'yaml';
import { parseClientRoles } from '@keyfleet/service-kit';
import { makeTempDir, pinnedTool, requireCommand } from '@keyfleet/test-support';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { unknownMetricNames } from './metric-names.js';

const root = path.resolve(import.meta.dirname, '../..');
const temp = makeTempDir('deploy');
after(() => temp.remove());

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
};

const kustomizations = [
  'deploy/k8s/base',
  'deploy/k8s/overlays/dev',
  'deploy/k8s/overlays/prod',
  'deploy/k8s/examples/engine-node',
  'deploy/k8s/examples/nginx-sidecar',
  'deploy/k8s/examples/envoy',
];

const kustomize = pinnedTool('kustomize');

function render(dir: string): K8sObject[] {
  const text = execFileSync(kustomize, ['build', path.join(root, dir)], { encoding: 'utf8' });
  return parseAllDocuments(text).map((doc) => doc.toJS() as K8sObject);
}
const rendered = new Map(kustomizations.map((dir) => [dir, render(dir)]));

/** kubernetes-models keeps one validating class per apiVersion/kind. */
async function validateCore(object: K8sObject): Promise<void> {
  const [group, version] = object.apiVersion.includes('/')
    ? object.apiVersion.split('/')
    : ['', object.apiVersion];
  const modulePath = `kubernetes-models/${group ? `${group}/` : ''}${version}/${object.kind}`;
  const module = (await import(modulePath)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = module[object.kind] ?? module.default;
  assert.ok(Model, `no schema for ${object.apiVersion} ${object.kind}`);
  new Model(object).validate();
}

const customResources: Record<string, (object: K8sObject) => void> = {
  'monitoring.coreos.com/v1/ServiceMonitor': (object) => {
    const spec = object.spec as { selector?: object; endpoints?: { port?: string; path?: string }[] };
    assert.ok(spec.selector, 'selector');
    assert.ok(
      spec.endpoints?.length && spec.endpoints.every((e) => e.port === 'metrics' && e.path === '/metrics'),
    );
  },
  'monitoring.coreos.com/v1/PrometheusRule': (object) => {
    const spec = object.spec as {
      groups?: { name: string; rules: { alert?: string; expr: string; for?: string }[] }[];
    };
    assert.ok(spec.groups?.length, 'groups');
    for (const group of spec.groups) {
      assert.equal(typeof group.name, 'string');
      for (const rule of group.rules) {
        assert.match(rule.alert ?? '', /^Keyfleet[A-Za-z]+$/);
        assert.equal(typeof rule.expr, 'string');
        if (rule.for) assert.match(rule.for, /^\d+[smh]$/);
      }
    }
  },
  'cert-manager.io/v1/Certificate': (object) => {
    const spec = object.spec as {
      secretName?: string;
      issuerRef?: { name?: string; kind?: string };
      usages?: string[];
    };
    assert.match(spec.secretName ?? '', /^[a-z0-9-]+$/);
    assert.ok(spec.issuerRef?.name && ['Issuer', 'ClusterIssuer'].includes(spec.issuerRef.kind ?? ''));
    assert.ok(spec.usages?.every((usage) => ['server auth', 'client auth'].includes(usage)));
  },
  'cert-manager.io/v1/Issuer': (object) => {
    assert.ok((object.spec as { ca?: { secretName?: string } }).ca?.secretName, 'ca.secretName');
  },
};

for (const [dir, objects] of rendered) {
  test(`${dir}: renders, and every object validates against its schema`, async () => {
    assert.ok(objects.length > 0);
    for (const object of objects) {
      const id = `${object.apiVersion} ${object.kind}/${object.metadata?.name}`;
      const custom = customResources[`${object.apiVersion}/${object.kind}`];
      try {
        if (custom) custom(object);
        else await validateCore(object);
      } catch (error) {
        throw new Error(`${dir}: ${id}: ${(error as Error).message}`, { cause: error });
      }
    }
  });
}

test('schema validation rejects a broken object (the check can fail)', async () => {
  const [deployment] = rendered.get('deploy/k8s/base')!.filter((o) => o.kind === 'Deployment');
  const broken = structuredClone(deployment!) as unknown as { spec: { replicas: unknown } };
  broken.spec.replicas = 'two';
  await assert.rejects(validateCore(broken as unknown as K8sObject), /replicas/);
});

for (const overlay of ['deploy/k8s/overlays/dev', 'deploy/k8s/overlays/prod']) {
  test(`${overlay}: services are highly available, hardened and probed`, () => {
    const objects = rendered.get(overlay)!;
    const deployments = objects.filter((o) => o.kind === 'Deployment');
    assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), ['ocsp-fetch', 'ticket-keys']);
    for (const deployment of deployments) {
      const spec = (deployment as unknown as IDeployment).spec!;
      const name = deployment.metadata.name;
      assert.ok((spec.replicas ?? 1) >= 2, `${name} replicas`);
      const pod = spec.template.spec!;
      assert.ok(pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.length);
      assert.equal(pod.securityContext?.runAsNonRoot, true);
      const container = pod.containers[0]!;
      assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
      assert.ok(container.resources?.requests?.cpu && container.resources.limits?.memory);
      assert.ok(container.readinessProbe && container.livenessProbe, `${name} probes`);
      // The services exit within 5 s of SIGTERM (test/service-shutdown.e2e.test.ts).
      assert.equal(pod.terminationGracePeriodSeconds, 5, `${name} terminationGracePeriodSeconds`);
      const env = new Map((container.env ?? []).map((e) => [e.name, e]));
      const tls = overlay.endsWith('/dev')
        ? []
        : ['KEYFLEET_TLS_CERT', 'KEYFLEET_TLS_KEY', 'KEYFLEET_TLS_CLIENT_CA', 'KEYFLEET_ROLES_FILE'];
      for (const variable of [
        'REDIS_URL',
        'KEYFLEET_GRPC_ADDRESS',
        'KEYFLEET_METRICS_ADDRESS',
        ...tls,
        'KEYFLEET_KEY_PREFIX',
      ]) {
        assert.ok(env.has(variable), `${name} ${variable}`);
      }
      if (name === 'ticket-keys') assert.ok(env.has('KEYFLEET_KEK_FILE'));
      const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === name);
      assert.ok(pdb, `${name} PodDisruptionBudget`);
      assert.ok(objects.some((o) => o.kind === 'Service' && o.metadata.name === name));
    }
    assert.ok(objects.some((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'keyfleet-redis'));
    assert.ok(
      objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('keyfleet-grafana-dashboard')),
    );
  });
}

test('dev runs one Redis StatefulSet; prod none (it points at an existing Redis)', () => {
  const dev = rendered.get('deploy/k8s/overlays/dev')!;
  const prod = rendered.get('deploy/k8s/overlays/prod')!;
  assert.equal(dev.filter((o) => o.kind === 'StatefulSet').length, 1);
  assert.equal(prod.filter((o) => o.kind === 'StatefulSet').length, 0);
  assert.ok(
    prod.some((o) => o.kind === 'Certificate'),
    'prod includes the cert-manager component',
  );
  // Dev's plain-text gRPC is what lets native gRPC probes work; prod probes /readyz and /livez.
  const firstContainer = (objects: K8sObject[]): IContainer =>
    (objects.find((o) => o.kind === 'Deployment') as unknown as IDeployment).spec!.template.spec!
      .containers[0]!;
  assert.equal(firstContainer(prod).readinessProbe?.httpGet?.path, '/readyz');
  // Liveness never follows Redis.
  assert.equal(firstContainer(prod).livenessProbe?.httpGet?.path, '/livez');
  assert.equal(firstContainer(dev).livenessProbe?.grpc?.service, 'liveness');
  assert.ok(firstContainer(dev).readinessProbe?.grpc?.port);
});

test('dev has its own namespace and plain text without TLS variables; gRPC ingress selects namespaces too', () => {
  const dev = rendered.get('deploy/k8s/overlays/dev')!;
  const prod = rendered.get('deploy/k8s/overlays/prod')!;
  const namespaces = (objects: K8sObject[]) =>
    new Set(
      objects.map((o) => (o.kind === 'Namespace' ? o.metadata.name : o.metadata.namespace)).filter(Boolean),
    );
  assert.deepEqual([...namespaces(dev)], ['keyfleet-dev']);
  assert.deepEqual([...namespaces(prod)], ['keyfleet']);
  for (const deployment of dev.filter((o) => o.kind === 'Deployment') as unknown as IDeployment[]) {
    const env = deployment.spec!.template.spec!.containers[0]!.env ?? [];
    const names = env.map((variable) => variable.name);
    assert.ok(names.includes('KEYFLEET_INSECURE_DEV'));
    assert.ok(names.includes('KEYFLEET_INSECURE_DEV_ON_NETWORK_EVERY_CALLER_IS_ADMIN'));
    for (const tls of [
      'KEYFLEET_TLS_CERT',
      'KEYFLEET_TLS_KEY',
      'KEYFLEET_TLS_CLIENT_CA',
      'KEYFLEET_ROLES_FILE',
    ]) {
      assert.ok(!names.includes(tls), `${deployment.metadata!.name}: ${tls} beside the dev flag`);
    }
  }
  for (const objects of [dev, prod]) {
    const policy = objects.find(
      (o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'keyfleet-services',
    ) as unknown as {
      spec: { ingress: { from: { namespaceSelector?: { matchLabels?: Record<string, string> } }[] }[] };
    };
    for (const rule of policy.spec.ingress) {
      for (const peer of rule.from) {
        assert.ok(
          Object.keys(peer.namespaceSelector?.matchLabels ?? {}).length > 0,
          'no "any namespace" peer',
        );
      }
    }
  }
});

test('egress: ocsp-fetch reaches responders only outside private, loopback and metadata ranges', () => {
  for (const overlay of ['deploy/k8s/overlays/dev', 'deploy/k8s/overlays/prod']) {
    const objects = rendered.get(overlay)!;
    const egress = objects.find(
      (o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'keyfleet-ocsp-responders-egress',
    ) as unknown as { spec: { egress: { to: { ipBlock: { cidr: string; except: string[] } }[] }[] } };
    assert.ok(egress, `${overlay}: egress policy`);
    const block = egress.spec.egress[0]!.to[0]!.ipBlock;
    for (const range of ['10.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16']) {
      assert.ok(block.except.includes(range), `${overlay}: ${range} is excepted`);
    }
    assert.ok(
      objects.some((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'keyfleet-services-egress'),
    );
  }
});

function extractRules(): string {
  const rule = parse(
    readFileSync(path.join(root, 'deploy/k8s/base/prometheus-rule.yaml'), 'utf8'),
  ) as K8sObject;
  const file = path.join(temp.path, 'keyfleet-alerts.yaml');
  writeFileSync(file, stringify(rule.spec));
  copyFileSync(
    path.join(root, 'deploy/prometheus/alerts.test.yaml'),
    path.join(temp.path, 'alerts.test.yaml'),
  );
  return file;
}

test('alerts: promtool check rules, and promtool test rules on their unit tests', () => {
  requireCommand('promtool');
  const rulesFile = extractRules();
  const check = execFileSync('promtool', ['check', 'rules', rulesFile], { encoding: 'utf8' });
  assert.match(check, /SUCCESS: \d+ rules found/);
  const unit = execFileSync('promtool', ['test', 'rules', 'alerts.test.yaml'], {
    cwd: temp.path,
    encoding: 'utf8',
  });
  assert.match(unit, /SUCCESS/);
});

test('alerts use only the fixed metric names, and every alert has a unit test', () => {
  const rule = parse(readFileSync(path.join(root, 'deploy/k8s/base/prometheus-rule.yaml'), 'utf8')) as {
    spec: { groups: { rules: { alert: string; expr: string }[] }[] };
  };
  const tests = readFileSync(path.join(root, 'deploy/prometheus/alerts.test.yaml'), 'utf8');
  const alerts = rule.spec.groups.flatMap((group) => group.rules);
  for (const alert of [
    'KeyfleetRotationStalled',
    'KeyfleetActiveKeyTooOld',
    'KeyfleetAckCoverageLow',
    'KeyfleetStapleExpiringSoon',
    'KeyfleetStapleRevoked',
    'KeyfleetOcspResponderFailing',
    'KeyfleetRedisDown',
  ]) {
    assert.ok(
      alerts.some((a) => a.alert === alert),
      alert,
    );
  }
  for (const { alert, expr } of alerts) {
    assert.deepEqual(unknownMetricNames(expr), [], alert);
    assert.ok(tests.includes(`alertname: ${alert}`), `${alert} has a promtool unit test`);
  }
});

test('the engine-node example leaves a node its 5 s to stop', () => {
  const [deployment] = rendered
    .get('deploy/k8s/examples/engine-node')!
    .filter((o) => o.kind === 'Deployment');
  const pod = (deployment as unknown as IDeployment).spec!.template.spec!;
  assert.equal(pod.terminationGracePeriodSeconds, 5);
});

test('Dockerfile: multi-stage, non-root user, on the Node 24 that CI tests', () => {
  const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2);
  const pinned = JSON.parse(readFileSync(path.join(root, 'scripts/pinned-tools.json'), 'utf8')) as {
    node: Record<string, string>;
  };
  for (const [, image] of dockerfile.matchAll(/^FROM (\S+)/gm)) {
    assert.equal(image, `node:${pinned.node['24']}-bookworm-slim`);
  }
  const user = /^USER (\S+)/m.exec(dockerfile)?.[1] ?? '';
  assert.ok(user && !/^(0|root)(:|$)/.test(user), `USER ${user}`);
  // The build stage builds the native TLS port for the image's Node.
  assert.match(dockerfile, /^RUN node scripts\/build-native\.mjs/m);
});

test('the shipped roles file parses with the service’s own parser: keyfleet-admin is admin, keyfleet-node a node of edge only', () => {
  const text = readFileSync(path.join(root, 'deploy/k8s/base/roles.json'), 'utf8');
  assert.doesNotMatch(text, /cn:\*/);
  const roles = parseClientRoles(text);
  const peer = (commonName: string) => ({ commonName, fingerprintSha256: '00', uris: [], dnsNames: [] });
  assert.equal(roles.accessOf(peer('keyfleet-admin')).admin, true);
  const node = roles.accessOf(peer('keyfleet-node'));
  assert.equal(node.admin, false);
  assert.equal(node.allows('node', 'edge'), true);
  assert.equal(node.allows('reader', 'other'), false);
  assert.equal(roles.accessOf(peer('anyone-else')).known, false);
});

test('the dev KEK file has the format ticket-keys reads (and is marked development-only)', async () => {
  const { parseKekFile } = await import('@keyfleet/ticket-keys');
  const keks = parseKekFile(readFileSync(path.join(root, 'deploy/k8s/overlays/dev/kek.dev'), 'utf8'));
  assert.equal(keks.primary.id, 'dev-1');
  assert.match(
    readFileSync(path.join(root, 'deploy/k8s/overlays/dev/kustomization.yaml'), 'utf8'),
    /DEVELOPMENT ONLY/,
  );
});
