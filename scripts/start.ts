/**
 * `npm start`: the whole keyfleet stack on loopback, for trying it out and for
 * development. Uses REDIS_URL when set; otherwise starts a `redis-server` child
 * with its files under .keyfleet/. Every part runs as a child process with its
 * output prefixed; Ctrl-C (or SIGTERM) stops them all and waits for them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { startEmbeddedRedis, type EmbeddedRedis } from '@keyfleet/service-kit';

const root = path.resolve(import.meta.dirname, '..');
const stateDir = path.join(root, '.keyfleet');

interface Part {
  name: string;
  entry: string;
  env: Record<string, string>;
  /** What to print once it runs. */
  listens: string;
}

const env = process.env;
const redisPort = Number(env.KEYFLEET_REDIS_PORT ?? 6380);
const ticketKeysAddress = env.TICKET_KEYS_ADDRESS ?? '127.0.0.1:50051';
const ocspFetchAddress = env.OCSP_FETCH_ADDRESS ?? '127.0.0.1:50052';

const children: ChildProcess[] = [];
let redis: EmbeddedRedis | undefined;
let stopping = false;

function prefixOutput(name: string, stream: NodeJS.ReadableStream | null) {
  if (!stream) return;
  readline.createInterface({ input: stream }).on('line', (line) => console.log(`[${name}] ${line}`));
}

function launch(part: Part, redisUrl: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, part.entry)], {
    cwd: root,
    env: { ...env, REDIS_URL: redisUrl, KEYFLEET_INSECURE_DEV: 'true', ...part.env },
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
  console.log(`  ${part.name.padEnd(12)} ${part.listens}`);
}

async function shutdown(exitCode: number) {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping…');
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
  await redis?.stop();
  console.log('stopped');
  process.exit(exitCode);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

async function main() {
  mkdirSync(stateDir, { recursive: true });
  let redisUrl = env.REDIS_URL;
  console.log('keyfleet local stack (development mode: plain-text gRPC, every caller is admin)');
  if (!redisUrl) {
    redis = await startEmbeddedRedis(path.join(stateDir, 'redis'), redisPort);
    redisUrl = redis.url;
    console.log(`  ${'redis'.padEnd(12)} ${redisUrl} (embedded; set REDIS_URL to use your own)`);
  } else {
    console.log(`  ${'redis'.padEnd(12)} ${redisUrl} (REDIS_URL)`);
  }

  const parts: Part[] = [
    {
      name: 'ticket-keys',
      entry: 'services/ticket-keys/src/main.ts',
      env: {
        KEYFLEET_GRPC_ADDRESS: ticketKeysAddress,
        KEYFLEET_METRICS_ADDRESS: env.TICKET_KEYS_METRICS ?? '127.0.0.1:9101',
      },
      listens: `gRPC ${ticketKeysAddress}, metrics http://${env.TICKET_KEYS_METRICS ?? '127.0.0.1:9101'}/metrics`,
    },
    {
      name: 'ocsp-fetch',
      entry: 'services/ocsp-fetch/src/main.ts',
      env: {
        KEYFLEET_GRPC_ADDRESS: ocspFetchAddress,
        KEYFLEET_METRICS_ADDRESS: env.OCSP_FETCH_METRICS ?? '127.0.0.1:9102',
      },
      listens: `gRPC ${ocspFetchAddress}, metrics http://${env.OCSP_FETCH_METRICS ?? '127.0.0.1:9102'}/metrics`,
    },
  ];
  for (const part of parts) {
    if (existsSync(path.join(root, part.entry))) launch(part, redisUrl);
  }
  console.log('Ctrl-C stops everything.');
}

main().catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  await shutdown(1);
});
