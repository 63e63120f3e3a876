/**
 * The dashboard and the alerts against the real thing. npm start's fleet
 * (Redis, ticket-keys, ocsp-fetch, the dev CA's `openssl ocsp`, engine nodes A
 * and B), plus an engine node C that reaches ticket-keys through a TCP relay
 * the test can cut, nginx and HAProxy behind their sync sidecars, two more
 * `openssl ocsp` responders whose staples last one minute, and a real
 * Prometheus scraping every /metrics on loopback each second with the
 * PrometheusRule's rules, unmodified.
 *
 * Ring `default` is retuned to rotate every 10 s (decrypt window 10 s): the
 * alerts measure against each ring's own interval and issuing bound, so they
 * can fire in seconds here and in hours on a default ring. With the rules as
 * shipped, an alert with a `for` clause shows as pending, not firing, within
 * a test; promtool's unit tests (deploy/prometheus/) cover `for`.
 *
 * 1. Every metric the code registers reaches Prometheus from the process that
 *    exports it.
 * 2. After a rotation, a revocation, resumptions on every terminator, a
 *    stapled handshake and a staple refresh, no alert expression holds.
 * 3. Faults made with the real processes (rotation queue paused, node C cut
 *    off, a responder stopped, nginx.conf broken) raise their alerts, and no
 *    alert unrelated to them.
 * 4. Every dashboard panel's every query returns series.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { parse, stringify } from 'yaml';
import { nginxTicketKeyFileName } from '@keyfleet/cli';
import { defaultKeyPrefix, redisKeys, rotationQueueName } from '@keyfleet/ticket-keys';
import {
  createTestPki,
  freePort,
  localFleetEnvironment,
  makeTempDir,
  requireCommand,
  runSClient,
  startLocalFleet,
  startOcspResponder,
  startProcess,
  startPrometheus,
  startTcpProxy,
  waitForListening,
  writeHaproxyConfig,
  writeNginxConfig,
  type LocalFleet,
  type LocalFleetPorts,
  type OcspResponder,
  type PromAlert,
  type RunningProcess,
  type TcpProxy,
  type TestPki,
  type TestPrometheus,
} from '@keyfleet/test-support';
import { registeredMetricNames } from './metric-names.js';

requireCommand('prometheus');
requireCommand('nginx');
requireCommand('haproxy');

const root = path.resolve(import.meta.dirname, '../..');
const temp = makeTempDir('prometheus-fleet');
const stateDir = path.join(temp.path, 'state');
const RING = 'default';
const ROTATION_INTERVAL_MS = 10_000;
const NGINX_SLOTS = 4;

let fleet: LocalFleet | undefined;
let ports: LocalFleetPorts;
let devPki: TestPki;
let prometheus: TestPrometheus | undefined;
let relay: TcpProxy | undefined;
/** Stays up: its certificate's staple is refreshed every ~30 s. */
let refreshedResponder: OcspResponder | undefined;
/** Stopped by the staple fault: its certificate's staple runs towards expiry. */
let expiringResponder: OcspResponder | undefined;
const pkis: TestPki[] = [];
const processes: RunningProcess[] = [];
let expiringCertificateLabel = '';
let refreshedResponderOrigin = '';
let nginx: { dir: string; conf: string; port: number; metrics: string };
let haproxy: { port: number; metrics: string };
let nodeC: { port: number; metrics: string };

/** node's arguments and options that run the keyfleet CLI against the fleet (plain-text gRPC, development mode). */
function cli(args: string[]): [string[], { cwd: string; env: NodeJS.ProcessEnv }] {
  const services = [
    '--ticket-keys',
    `127.0.0.1:${ports.ticketKeys}`,
    '--ocsp-fetch',
    `127.0.0.1:${ports.ocspFetch}`,
  ];
  return [
    ['--import', 'tsx', path.join(root, 'cli/src/main.ts'), ...services, ...args],
    { cwd: root, env: { ...process.env, KEYFLEET_INSECURE_DEV: 'true' } },
  ];
}

/** One keyfleet command, as an operator runs it, with --json. */
function keyfleet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const [argv, options] = cli(['--json', ...args]);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      argv,
      { ...options, encoding: 'utf8', timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function keyfleetJson<T>(...args: string[]): Promise<T> {
  const run = await keyfleet(...args);
  assert.equal(run.code, 0, `keyfleet ${args.join(' ')}: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as T;
}

/** A long-running CLI process (a sync sidecar), stopped in after(). */
function startKeyfleet(...args: string[]): RunningProcess {
  const running = startProcess(process.execPath, ...cli(args));
  processes.push(running);
  return running;
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** A second CA with its own `openssl ocsp` answering with one-minute staples, and its leaf registered. */
async function shortStapleCertificate(): Promise<{ pki: TestPki; responder: OcspResponder; id: string }> {
  const pki = createTestPki(await freePort());
  pkis.push(pki);
  const responder = await startOcspResponder(pki, { nextUpdateMinutes: 1 });
  const registered = await keyfleetJson<{ certificate: { id: string } }>(
    'staple',
    'register',
    pki.leaf.chainPath,
  );
  return { pki, responder, id: registered.certificate.id };
}

async function startNodeC(): Promise<void> {
  relay = await startTcpProxy({ host: '127.0.0.1', port: ports.ticketKeys });
  nodeC = { port: await freePort(), metrics: `127.0.0.1:${await freePort()}` };
  const node = startProcess(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'lib/tls-engine/src/node/main.ts')],
    {
      cwd: root,
      env: {
        ...process.env,
        KEYFLEET_INSECURE_DEV: 'true',
        KEYFLEET_LISTEN: `127.0.0.1:${nodeC.port}`,
        KEYFLEET_METRICS_ADDRESS: nodeC.metrics,
        KEYFLEET_NODE_ID: 'node-c',
        KEYFLEET_RING: RING,
        KEYFLEET_CERT_CHAIN: devPki.leaf.chainPath,
        KEYFLEET_KEY: devPki.leaf.keyPath,
        KEYFLEET_TICKET_KEYS_ADDRESS: `127.0.0.1:${relay.port}`,
        KEYFLEET_OCSP_FETCH_ADDRESS: `127.0.0.1:${ports.ocspFetch}`,
      },
    },
  );
  processes.push(node);
  await until(
    'node C is healthy',
    async () => (await fetch(`http://${nodeC.metrics}/healthz`)).ok,
    60_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}\n${node.output()}`);
  });
}

/** nginx behind `keyfleet sync nginx`: an init run writes the files, then nginx, then the sidecar. */
async function startNginx(): Promise<void> {
  const dir = path.join(temp.path, 'nginx');
  const keyDir = path.join(dir, 'keys');
  mkdirSync(keyDir, { recursive: true });
  const chain = path.join(dir, 'site.pem');
  copyFileSync(devPki.leaf.chainPath, chain);
  const sync = [
    ...['sync', 'nginx', '--ring', RING, '--key-dir', keyDir, '--slots', String(NGINX_SLOTS)],
    ...['--certificate', chain, '--node-id', 'nginx-sidecar'],
  ];
  const init = await keyfleet(...sync, '--once', '--reload-command', '');
  assert.equal(init.code, 0, init.stderr);
  const port = await freePort();
  const conf = writeNginxConfig({
    dir,
    port,
    chainPath: chain,
    keyPath: devPki.leaf.keyPath,
    ticketKeyFiles: Array.from({ length: NGINX_SLOTS }, (_, slot) =>
      path.join(keyDir, nginxTicketKeyFileName(slot)),
    ),
    staplingFile: `${chain}.ocsp`,
  });
  const server = startProcess('nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;']);
  processes.push(server);
  await waitForListening(port).catch((error: Error) => {
    throw new Error(`nginx did not start: ${server.output()}`, { cause: error });
  });
  const metrics = `127.0.0.1:${await freePort()}`;
  startKeyfleet(
    ...sync,
    ...['--reload-command', `nginx -p ${dir} -c ${conf} -s reload`, '--metrics-address', metrics],
  );
  nginx = { dir, conf, port, metrics };
}

/** HAProxy behind `keyfleet sync haproxy`, with live updates over its admin socket. */
async function startHaproxy(): Promise<void> {
  const dir = path.join(temp.path, 'haproxy');
  mkdirSync(dir, { recursive: true });
  const certificatePem = path.join(dir, 'site.pem');
  writeFileSync(certificatePem, devPki.leaf.chainPem() + devPki.leaf.keyPem());
  const ticketKeyFile = path.join(dir, 'tickets.keys');
  const socket = path.join(dir, 'admin.sock');
  const sync = [
    ...['sync', 'haproxy', '--ring', RING, '--ticket-key-file', ticketKeyFile],
    ...['--certificate', certificatePem, '--node-id', 'haproxy-sidecar'],
  ];
  const init = await keyfleet(...sync, '--once');
  assert.equal(init.code, 0, init.stderr);
  const port = await freePort();
  const config = writeHaproxyConfig({ dir, port, certificatePem, ticketKeyFile, socket });
  const server = startProcess('haproxy', ['-f', config, '-db']);
  processes.push(server);
  await waitForListening(port).catch((error: Error) => {
    throw new Error(`haproxy did not start: ${server.output()}`, { cause: error });
  });
  const metrics = `127.0.0.1:${await freePort()}`;
  startKeyfleet(...sync, '--socket', socket, '--metrics-address', metrics);
  haproxy = { port, metrics };
}

/** Jobs as a ServiceMonitor would name them; the rules group by ring, instance, target, not by job. */
function scrapeJobs() {
  return [
    { job: 'ticket-keys', targets: [`127.0.0.1:${ports.ticketKeysMetrics}`] },
    { job: 'ocsp-fetch', targets: [`127.0.0.1:${ports.ocspFetchMetrics}`] },
    {
      job: 'tls-node',
      targets: [`127.0.0.1:${ports.nodeAMetrics}`, `127.0.0.1:${ports.nodeBMetrics}`, nodeC.metrics],
    },
    { job: 'sync-sidecar', targets: [nginx.metrics, haproxy.metrics] },
  ];
}

/** The PrometheusRule's spec, as the plain rule file Prometheus loads. */
function ruleFile(): { file: string; alerts: { alert: string; expr: string }[] } {
  const rule = parse(readFileSync(path.join(root, 'deploy/k8s/base/prometheus-rule.yaml'), 'utf8')) as {
    spec: { groups: { rules: { alert: string; expr: string }[] }[] };
  };
  const file = path.join(temp.path, 'keyfleet-alerts.yaml');
  writeFileSync(file, stringify(rule.spec));
  return { file, alerts: rule.spec.groups.flatMap((group) => group.rules) };
}
const rules = ruleFile();

before(async () => {
  mkdirSync(stateDir, { recursive: true });
  const environment = await localFleetEnvironment(stateDir);
  ports = environment.ports;
  fleet = await startLocalFleet(environment.env);
  devPki = createTestPki(ports.responder, { dir: path.join(stateDir, 'dev-pki'), reuse: true });

  // Short rings and short staples, so every alert can be made to hold in seconds.
  await keyfleetJson(
    ...['ring', 'put', RING, '--rotation-interval-ms', String(ROTATION_INTERVAL_MS)],
    ...['--propagation-ms', '1000', '--decrypt-window-ms', String(ROTATION_INTERVAL_MS)],
  );
  const refreshed = await shortStapleCertificate();
  refreshedResponder = refreshed.responder;
  refreshedResponderOrigin = new URL(refreshed.responder.url).origin;

  await Promise.all([startNodeC(), startNginx(), startHaproxy()]);
  const promDir = path.join(temp.path, 'prometheus');
  mkdirSync(promDir, { recursive: true });
  prometheus = await startPrometheus({ dir: promDir, jobs: scrapeJobs(), ruleFile: rules.file });
  const jobs = scrapeJobs();
  const expected = jobs.reduce((count, job) => count + job.targets.length, 0);
  await until('Prometheus scrapes every target', async () => {
    const targets = await prometheus!.targets();
    return targets.length === expected && targets.every((target) => target.health === 'up');
  }).catch(async (error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify(await prometheus!.targets())}`);
  });
});

after(async () => {
  for (const running of processes.reverse()) await running.stop();
  await relay?.stop();
  await prometheus?.stop();
  await refreshedResponder?.stop();
  await expiringResponder?.stop();
  const code = await fleet?.stop();
  if (code !== 0 && fleet) console.error(fleet.output().slice(-3000));
  for (const pki of pkis) pki.remove();
  temp.remove();
});

const session = (name: string) => path.join(temp.path, `${name}.pem`);
const handshake = (port: number, options: { sessOut?: string; sessIn?: string; status?: boolean } = {}) =>
  runSClient({ port, serverName: 'localhost', caFile: devPki.root.certPath, tls: '1.2', ...options });

/** Each registered metric name, or its histogram series, as Prometheus holds it for `job`. */
async function missingMetrics(job: string, names: readonly string[]): Promise<string[]> {
  const held = new Set(await prometheus!.labelValues('__name__', `{job="${job}"}`));
  return names.filter((name) => !held.has(name) && !held.has(`${name}_count`));
}

test('every metric the code registers reaches Prometheus from the process that exports it', async () => {
  // Series that exist only once their event happens, and none of this test's
  // events is one: a stream refused for a limit, a Node lacking an internal,
  // an Envoy taking keys over SDS.
  const onlyAfterTheirEvent = new Set([
    'keyfleet_grpc_streams_rejected_total',
    'keyfleet_engine_node_internal_missing',
    'keyfleet_sds_pushes_total',
    'keyfleet_sds_nacks_total',
    'keyfleet_sds_convergence_seconds',
  ]);
  const byJob: Record<string, string> = {
    'ticket-keys': 'ticket-keys',
    'ocsp-fetch': 'ocsp-fetch',
    'TLS node': 'tls-node',
    'sync sidecar': 'sync-sidecar',
  };
  // Resumptions and a stapled handshake create the engine's per-decision series.
  const saved = session('metrics-a');
  await handshake(ports.nodeA, { sessOut: saved, status: true });
  assert.equal((await handshake(ports.nodeB, { sessIn: saved })).reused, true);
  for (const [process, names] of Object.entries(registeredMetricNames)) {
    const job = byJob[process]!;
    const wanted = names.filter((name) => !onlyAfterTheirEvent.has(name));
    const missing = await until(`${process}: every metric in Prometheus`, async () => {
      const left = await missingMetrics(job, wanted);
      return left.length === 0 ? left : undefined;
    }).catch(async () => missingMetrics(job, wanted));
    assert.deepEqual(missing, [], `${process} (job ${job}) exports these names but Prometheus holds none`);
  }
});

interface KeyView {
  name: string;
  state: string;
}
async function ringKeys(): Promise<KeyView[]> {
  const status = await keyfleetJson<{ rings: { keySet: { keys: KeyView[] } }[] }>(
    ...['status', '--ring', RING, '--no-staples'],
  );
  return status.rings[0]!.keySet.keys;
}

/** Evaluates every alert's expression at one instant; returns those with series. */
async function holdingAlerts(): Promise<{ alert: string; series: string[] }[]> {
  const at = Date.now() / 1000;
  const results = await Promise.all(
    rules.alerts.map(async (rule) => ({
      alert: rule.alert,
      series: (await prometheus!.query(rule.expr, at)).map((sample) => JSON.stringify(sample.metric)),
    })),
  );
  return results.filter((result) => result.series.length > 0);
}

test('a healthy fleet after a rotation, a revocation, resumptions and a staple refresh: no alert expression holds', async () => {
  // The staple the fault test lets expire: registered now, so its first
  // refresh (about 30 s on) falls after the faults begin and fails, and its
  // minute runs out within the fault test.
  const expiring = await shortStapleCertificate();
  expiringResponder = expiring.responder;
  expiringCertificateLabel = expiring.id.slice(0, 16);

  // Rotation, then revocation of the key it retired.
  const before = await ringKeys();
  await keyfleetJson('rotate', RING, '--reason', 'prometheus test');
  const retired = before.find((key) => key.state === 'active')!.name;
  await until('the key the rotation retired is DECRYPT_ONLY', async () =>
    (await ringKeys()).some((key) => key.name === retired && key.state === 'decrypt_only'),
  );
  await keyfleetJson('revoke', RING, retired, '--reason', 'prometheus test');
  // A call that fails (the gRPC error panel has something to show).
  assert.notEqual((await keyfleet('rotate', 'no-such-ring')).code, 0);

  // Resumptions on every terminator, across engine nodes, and stapled handshakes.
  const engine = session('engine');
  assert.ok((await handshake(ports.nodeA, { sessOut: engine, status: true })).stapled);
  for (const port of [ports.nodeB, nodeC.port])
    assert.equal((await handshake(port, { sessIn: engine })).reused, true, 'cross-node resumption');
  for (const [name, port] of [
    ['nginx', nginx.port],
    ['haproxy', haproxy.port],
  ] as const) {
    await until(`${name} resumes its own ticket`, async () => {
      await handshake(port, { sessOut: session(name), status: true });
      return (await handshake(port, { sessIn: session(name) })).reused;
    });
  }

  // A staple refresh: the short staples are fetched again at about half their minute.
  await until(
    'a staple was refreshed (a second good fetch from its responder)',
    async () => {
      const fetches = await prometheus!.query(
        `sum(keyfleet_ocsp_fetches_total{result="ok",responder="${refreshedResponderOrigin}"})`,
      );
      return Number(fetches[0]?.value[1] ?? 0) >= 2;
    },
    60_000,
  );

  // Every node holds the ring's newest epoch (acks settle in milliseconds).
  await until('every watcher acknowledged the newest epoch', async () => {
    const coverage = await prometheus!.query(`min(keyfleet_ack_coverage_ratio{ring="${RING}"})`);
    return Number(coverage[0]?.value[1]) === 1;
  });
  // An expression that holds for one evaluation (an ack in flight during a
  // rotation every 10 s) is what `for` absorbs; an alert must hold twice, 2 s
  // apart, to count as raised on a healthy fleet.
  const first = await holdingAlerts();
  await sleep(2000);
  const again = new Set((await holdingAlerts()).map((result) => result.alert));
  assert.deepEqual(
    first.filter((result) => again.has(result.alert)),
    [],
    'alerts whose expression holds on a healthy fleet',
  );
  assert.deepEqual(
    (await prometheus!.alerts()).filter((alert) => again.has(alert.labels.alertname ?? '')),
    [],
  );
});

test('faults made with the real processes raise their alerts, and nothing else', async (t) => {
  const raised = new Map<string, PromAlert>();
  const faultsAt = Date.now();
  const watch = async () => {
    for (const alert of await prometheus!.alerts()) {
      const name = alert.labels.alertname!;
      if (!raised.has(name))
        t.diagnostic(`${name} ${alert.state} ${Date.now() - faultsAt} ms after the faults`);
      raised.set(name, alert);
    }
  };

  // nginx.conf broken, then a rotation: the nginx sidecar writes the new keys,
  // nginx -s reload refuses the configuration.
  appendFileSync(nginx.conf, '\nthis_is_not_a_directive on;\n');
  await keyfleetJson('rotate', RING, '--reason', 'prometheus test: reload fails');
  // The rotation scheduler stopped: BullMQ's queue paused, ticket-keys still up.
  const queue = new Queue(rotationQueueName, {
    connection: { host: '127.0.0.1', port: ports.redis },
    prefix: redisKeys(defaultKeyPrefix).bullmqPrefix,
  });
  try {
    await queue.pause();
  } finally {
    await queue.close();
  }
  // Node C cut off from ticket-keys (it keeps serving, and exporting).
  relay!.cut();
  // The responder of the expiring staple gone: refreshes fail, the staple ages.
  await expiringResponder!.stop();
  expiringResponder = undefined;

  const wanted: Record<string, Record<string, string>> = {
    KeyfleetSyncApplyFailing: { target: 'nginx', stream: 'keys', instance: nginx.metrics },
    KeyfleetRotationStalled: { ring: RING },
    KeyfleetActiveKeyTooOld: { ring: RING },
    KeyfleetNodeKeySetStale: { ring: RING },
    KeyfleetNodeStoppedIssuingTickets: { ring: RING, instance: nodeC.metrics },
    KeyfleetStapleExpiringSoon: { certificate: expiringCertificateLabel },
  };
  await until(
    `alerts ${Object.keys(wanted).join(', ')} pending or firing`,
    async () => {
      await watch();
      return Object.keys(wanted).every((name) => raised.has(name));
    },
    75_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; raised: ${[...raised.keys()].join(', ') || 'none'}`);
  });
  for (const [name, labels] of Object.entries(wanted)) {
    const alert = raised.get(name)!;
    for (const [label, value] of Object.entries(labels))
      assert.equal(alert.labels[label], value, `${name} ${label}: ${JSON.stringify(alert.labels)}`);
  }
  // Also raised by these faults: nginx's sidecar no longer acknowledges (ack
  // coverage), the stopped responder's fetches fail. Nothing else may be.
  const consequences = new Set(['KeyfleetAckCoverageLow', 'KeyfleetOcspResponderFailing']);
  const unrelated = [...raised.keys()].filter((name) => !(name in wanted) && !consequences.has(name));
  assert.deepEqual(unrelated, [], 'alerts no fault here should raise');
});

test('every dashboard panel’s every query returns series', async () => {
  const dashboard = JSON.parse(readFileSync(path.join(root, 'deploy/grafana/keyfleet.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
    templating: { list: { name: string; definition?: string; allValue?: string }[] };
  };
  // The ring variable's own query lists the ring; the panels use its "All" value.
  const ringVariable = dashboard.templating.list.find((variable) => variable.name === 'ring')!;
  const [, selector, label] = /label_values\((.+), (\w+)\)/.exec(ringVariable.definition!) ?? [];
  assert.ok((await prometheus!.labelValues(label ?? '', selector ?? '')).includes(RING));
  const empty: string[] = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      const expr = target.expr.replaceAll('$ring', ringVariable.allValue ?? '.*');
      if ((await prometheus!.query(expr)).length === 0) empty.push(`"${panel.title}": ${target.expr}`);
    }
  }
  assert.deepEqual(empty, [], 'panels whose query returns no series');
});
