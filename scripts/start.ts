/**
 * `npm start`: the whole keyfleet stack on loopback, for trying it out and for
 * development:
 *
 *   redis        REDIS_URL, or a `redis-server` child (files under .keyfleet/)
 *   ticket-keys  gRPC 127.0.0.1:50051 (ring `default` is created at start)
 *   ocsp-fetch   gRPC 127.0.0.1:50052
 *   a dev CA (openssl CLI, kept under the state directory and reused by the
 *   next start) with `openssl ocsp` as its responder; its leaf certificate is
 *   registered with ocsp-fetch, and leaves of earlier dev CAs unregistered
 *   node-a/b     two engine nodes on 127.0.0.1:8443 and :8444 serving ring
 *                `default` with the shared keys and the fetched staple
 *
 * Development mode: plain-text gRPC and every caller is admin. Every address is
 * overridable (KEYFLEET_DEV_*). Each part runs as a child process with its
 * output prefixed; Ctrl-C (or SIGTERM) stops them all and waits for them,
 * 5 s at most. While it runs, `<state dir>/client.json` tells the keyfleet
 * CLI where the fleet is (see cli/src/local-fleet.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { removeLocalFleetConfig, writeLocalFleetConfig } from '@keyfleet/cli';
import {
  ListCertificatesRequest,
  RegisterCertificateRequest,
  StapleServiceClient,
  UnregisterCertificateRequest,
} from '@keyfleet/proto';
import { startEmbeddedRedis, type EmbeddedRedis } from '@keyfleet/service-kit';
import { createTestPki, startOcspResponder, type OcspResponder, type TestPki } from '@keyfleet/test-support';

const root = path.resolve(import.meta.dirname, '..');
const env = process.env;
const defaultStateDir = path.join(root, '.keyfleet');
const stateDir = path.resolve(env.KEYFLEET_STATE_DIR ?? defaultStateDir);
/** Every child is gone this long after Ctrl-C / SIGTERM (SIGKILL for any that is not). */
const stopWithinMs = 4500;
const setting = (name: string, fallback: string) => env[`KEYFLEET_DEV_${name}`] ?? fallback;

const addresses = {
  redisPort: Number(setting('REDIS_PORT', '6380')),
  ticketKeys: setting('TICKET_KEYS', '127.0.0.1:50051'),
  ticketKeysMetrics: setting('TICKET_KEYS_METRICS', '127.0.0.1:9101'),
  ocspFetch: setting('OCSP_FETCH', '127.0.0.1:50052'),
  ocspFetchMetrics: setting('OCSP_FETCH_METRICS', '127.0.0.1:9102'),
  ocspResponderPort: Number(setting('OCSP_RESPONDER_PORT', '8888')),
  nodeA: setting('NODE_A', '127.0.0.1:8443'),
  nodeAMetrics: setting('NODE_A_METRICS', '127.0.0.1:9201'),
  nodeB: setting('NODE_B', '127.0.0.1:8444'),
  nodeBMetrics: setting('NODE_B_METRICS', '127.0.0.1:9202'),
};

interface Part {
  name: string;
  entry: string;
  env: Record<string, string>;
  /** host:port it serves on; start waits until it accepts connections. */
  address: string;
  /** host:port of its /healthz, when start should wait for it too. */
  healthAddress?: string;
  describe: string;
}

const children: ChildProcess[] = [];
/** Each child's part name, for messages. */
const names = new Map<ChildProcess, string>();
let redis: EmbeddedRedis | undefined;
let pki: TestPki | undefined;
let responder: OcspResponder | undefined;
let stopping = false;

function prefixOutput(name: string, stream: NodeJS.ReadableStream | null) {
  if (!stream) return;
  readline.createInterface({ input: stream }).on('line', (line) => console.log(`[${name}] ${line}`));
}

function splitAddress(address: string): { host: string; port: number } {
  const index = address.lastIndexOf(':');
  return { host: address.slice(0, index).replace(/^\[|\]$/g, ''), port: Number(address.slice(index + 1)) };
}

async function waitForPort(address: string, what: string, timeoutMs = 30_000): Promise<void> {
  const { host, port } = splitAddress(address);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, host, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (stopping) throw new Error('stopping');
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${address} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

function launch(part: Part, redisUrl: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, part.entry)], {
    cwd: root,
    env: {
      ...env,
      REDIS_URL: redisUrl,
      KEYFLEET_INSECURE_DEV: 'true',
      KEYFLEET_STATE_DIR: stateDir,
      ...part.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  prefixOutput(part.name, child.stdout);
  prefixOutput(part.name, child.stderr);
  child.once('exit', (code, signal) => {
    if (!stopping) {
      console.error(`[${part.name}] exited (${signal ?? code}); stopping the stack`);
      void shutdown(1);
    }
  });
  children.push(child);
  names.set(child, part.name);
  return child;
}

/** SIGTERM, then SIGKILL at `deadline` (performance.now()) if it has not exited by then. */
function stopChild(child: ChildProcess, deadline: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(
      () => {
        console.error(`[${names.get(child)}] still running ${stopWithinMs} ms after the stop began: SIGKILL`);
        child.kill('SIGKILL');
      },
      Math.max(0, deadline - performance.now()),
    );
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function shutdown(exitCode: number) {
  if (stopping) return;
  stopping = true;
  const began = performance.now();
  const deadline = began + stopWithinMs;
  console.log('\nstopping…');
  removeLocalFleetConfig(stateDir, process.pid);
  // Nodes first, then the services they watch, then what the services use
  // (Redis and the responder run in process groups of their own, so a
  // terminal's Ctrl-C reaches them only through here, after their clients).
  const nodes = children.filter((child) => names.get(child)?.startsWith('node-'));
  const services = children.filter((child) => !nodes.includes(child));
  await Promise.all(nodes.map((child) => stopChild(child, deadline)));
  await Promise.all(services.map((child) => stopChild(child, deadline)));
  await responder?.stop();
  await redis?.stop();
  console.log(`stopped (${Math.round(performance.now() - began)} ms)`);
  process.exit(exitCode);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

/**
 * Registers the dev leaf, and unregisters every other certificate whose OCSP
 * responder is the dev responder's URL: leaves of earlier dev CAs, which
 * that responder no longer answers for. So one start leaves one dev
 * certificate, however many came before.
 */
async function registerDevCertificate(
  address: string,
  chainPem: string,
  responderUrl: string,
): Promise<{ id: string; unregistered: number }> {
  const client = new StapleServiceClient(address, grpc.credentials.createInsecure());
  const call = <Response>(invoke: (done: (error: Error | null, response: Response) => void) => void) =>
    new Promise<Response>((resolve, reject) =>
      invoke((error, response) => (error ? reject(error) : resolve(response))),
    );
  try {
    let id = '';
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await call<{ certificate?: { id: string } }>((done) =>
          client.registerCertificate(RegisterCertificateRequest.fromPartial({ chainPem }), done),
        );
        id = response.certificate?.id ?? '';
        break;
      } catch (error) {
        if (attempt >= 20 || stopping) throw error;
        await sleep(250);
      }
    }
    const { certificates } = await call<{ certificates: { id: string; ocspUrl: string }[] }>((done) =>
      client.listCertificates(ListCertificatesRequest.fromPartial({}), done),
    );
    const stale = certificates.filter(
      (record) => record.id !== id && record.ocspUrl.replace(/\/$/, '') === responderUrl.replace(/\/$/, ''),
    );
    for (const record of stale) {
      await call((done) =>
        client.unregisterCertificate(UnregisterCertificateRequest.fromPartial({ id: record.id }), done),
      );
    }
    return { id, unregistered: stale.length };
  } finally {
    client.close();
  }
}

/**
 * A node is ready once /healthz says it holds a key set and its staples, and
 * its leaf's first staple has been fetched: so its first handshake is stapled.
 */
async function waitForHealthy(metricsAddress: string, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const healthy = await fetch(`http://${metricsAddress}/healthz`).then(
      (response) => response.ok,
      () => false,
    );
    if (healthy) return;
    if (stopping) throw new Error('stopping');
    if (Date.now() > deadline) throw new Error(`${what} was not healthy within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function main() {
  mkdirSync(stateDir, { recursive: true });
  console.log('keyfleet local stack (development mode: plain-text gRPC, every caller is admin)');
  let redisUrl = env.REDIS_URL;
  if (!redisUrl) {
    redis = await startEmbeddedRedis(path.join(stateDir, 'redis'), addresses.redisPort);
    redisUrl = redis.url;
    console.log(`  ${'redis'.padEnd(12)} ${redisUrl} (embedded; set REDIS_URL to use your own)`);
  } else {
    console.log(`  ${'redis'.padEnd(12)} ${redisUrl} (REDIS_URL)`);
  }

  const allServices: Part[] = [
    {
      name: 'ticket-keys',
      entry: 'services/ticket-keys/src/main.ts',
      env: {
        KEYFLEET_GRPC_ADDRESS: addresses.ticketKeys,
        KEYFLEET_METRICS_ADDRESS: addresses.ticketKeysMetrics,
        KEYFLEET_BOOTSTRAP_RINGS: 'default',
      },
      address: addresses.ticketKeys,
      describe: `gRPC ${addresses.ticketKeys}, metrics http://${addresses.ticketKeysMetrics}/metrics`,
    },
    {
      name: 'ocsp-fetch',
      entry: 'services/ocsp-fetch/src/main.ts',
      env: {
        KEYFLEET_GRPC_ADDRESS: addresses.ocspFetch,
        KEYFLEET_METRICS_ADDRESS: addresses.ocspFetchMetrics,
        // The throwaway CA's responder listens on loopback.
        KEYFLEET_OCSP_ALLOWED_NETWORKS: '127.0.0.0/8',
      },
      address: addresses.ocspFetch,
      describe: `gRPC ${addresses.ocspFetch}, metrics http://${addresses.ocspFetchMetrics}/metrics`,
    },
  ];
  const services = allServices.filter((part) => existsSync(path.join(root, part.entry)));
  for (const part of services) launch(part, redisUrl);
  for (const part of services) {
    await waitForPort(part.address, part.name);
    console.log(`  ${part.name.padEnd(12)} ${part.describe}`);
  }
  writeLocalFleetConfig(stateDir, {
    ticketKeys: addresses.ticketKeys,
    ocspFetch: addresses.ocspFetch,
    insecure: true,
    pid: process.pid,
  });

  const hasOcspFetch = services.some((part) => part.name === 'ocsp-fetch');
  // Kept under the state directory and reused, so the CA file to trust and
  // the registered leaf stay the same from one start to the next.
  pki = createTestPki(addresses.ocspResponderPort, { dir: path.join(stateDir, 'dev-pki'), reuse: true });
  if (hasOcspFetch) {
    responder = await startOcspResponder(pki, { nextUpdateMinutes: 60, ownProcessGroup: true });
    console.log(
      `  ${'ocsp'.padEnd(12)} ${responder.url} (openssl ocsp for the dev CA in ${pki.dir}, ${pki.reused ? 'kept from the last start' : 'new'})`,
    );
    const { id, unregistered } = await registerDevCertificate(
      addresses.ocspFetch,
      pki.leaf.chainPem(),
      responder.url,
    );
    const cleaned =
      unregistered === 0
        ? ''
        : `; ${unregistered} ${unregistered === 1 ? 'leaf of an earlier dev CA' : 'leaves of earlier dev CAs'} unregistered`;
    console.log(`  ${'registered'.padEnd(12)} ${pki.leaf.name} certificate ${id.slice(0, 16)}…${cleaned}`);
  }

  const nodeEntry = 'lib/tls-engine/src/node/main.ts';
  const nodes: Part[] = existsSync(path.join(root, nodeEntry))
    ? (
        [
          ['node-a', addresses.nodeA, addresses.nodeAMetrics],
          ['node-b', addresses.nodeB, addresses.nodeBMetrics],
        ] as const
      ).map(([name, address, metrics]) => ({
        name,
        entry: nodeEntry,
        address,
        healthAddress: metrics,
        describe: `https://${address} (ring default), metrics http://${metrics}/metrics`,
        env: {
          KEYFLEET_LISTEN: address,
          KEYFLEET_METRICS_ADDRESS: metrics,
          KEYFLEET_NODE_ID: name,
          KEYFLEET_RING: 'default',
          KEYFLEET_CERT_CHAIN: pki!.leaf.chainPath,
          KEYFLEET_KEY: pki!.leaf.keyPath,
          KEYFLEET_TICKET_KEYS_ADDRESS: addresses.ticketKeys,
          KEYFLEET_OCSP_FETCH_ADDRESS: addresses.ocspFetch,
        },
      }))
    : [];
  for (const part of nodes) launch(part, redisUrl);
  for (const part of nodes) {
    await waitForPort(part.address, part.name);
    if (part.healthAddress) await waitForHealthy(part.healthAddress, part.name);
    console.log(`  ${part.name.padEnd(12)} ${part.describe}`);
  }

  // The CLI finds the fleet through client.json in the state directory; a
  // state directory other than the default has to be named to it as well.
  const quoted = /^[\w@%+=:,./-]+$/.test(stateDir) ? stateDir : `'${stateDir.replace(/'/g, `'\\''`)}'`;
  const cli = `${stateDir === defaultStateDir ? '' : `KEYFLEET_STATE_DIR=${quoted} `}npm run keyfleet -- status`;
  console.log(`
The fleet's rings, keys and staples, from the keyfleet CLI (any terminal, no setup):
  ${cli}`);
  if (nodes.length === 2) {
    const ca = pki.root.certPath;
    const session = path.join(stateDir, 'session.pem');
    console.log(`
Try it (any replica resumes the other's ticket; the staple is there from the first handshake):
  openssl s_client -connect ${addresses.nodeA} -servername localhost -CAfile ${ca} -tls1_2 -sess_out ${session} </dev/null
  openssl s_client -connect ${addresses.nodeB} -servername localhost -CAfile ${ca} -tls1_2 -sess_in ${session} </dev/null | grep -E '^(New|Reused)'
  openssl s_client -connect ${addresses.nodeA} -servername localhost -CAfile ${ca} -status </dev/null | grep -A4 'OCSP Response Status'`);
  }
  console.log('ready. Ctrl-C stops everything.');
}

main().catch(async (error: unknown) => {
  if (!stopping) console.error(error instanceof Error ? error.message : error);
  await shutdown(1);
});
