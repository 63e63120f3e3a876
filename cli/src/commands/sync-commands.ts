import { Option, type Command } from 'commander';
import { Registry } from 'prom-client';
import { startMetricsServer } from '@keyfleet/service-kit';
import { defaultNodeId } from '@keyfleet/tls-engine';
import { unary } from '../clients.js';
import { integerOption } from '../command-context.js';
import { filesTarget } from '../sync/files-target.js';
import { haproxyRuntimeApi } from '../sync/haproxy-runtime-api.js';
import { haproxyTarget } from '../sync/haproxy-target.js';
import { nginxTarget } from '../sync/nginx-target.js';
import { parseCommandLine } from '../sync/reload-command.js';
import { stapleDestinations } from '../sync/staple-destinations.js';
import { startSyncRunner } from '../sync/sync-runner.js';
import { syncMetrics, type SyncStream } from '../sync/sync-metrics.js';
import type { SyncTarget } from '../sync/sync-target.js';
import { withContext } from './ticket-key-commands.js';

interface CommonSyncOptions {
  ring?: string;
  certificate: string[];
  stapleDir?: string;
  staples: boolean;
  reloadCommand?: string;
  nodeId: string;
  once: boolean;
  metricsAddress?: string;
}

/** host:port (IPv6 in brackets) → where to listen; throws a usage error naming the option. */
function listenAddress(text: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new Error(`--metrics-address: expected host:port, got "${text}"`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

const collect = (value: string, previous: string[]) => [...previous, value];

function commonSyncOptions(command: Command): Command {
  return command
    .addOption(new Option('--ring <ring>', 'the ring whose keys to sync').env('KEYFLEET_RING'))
    .option(
      '--certificate <pem>',
      'a certificate file whose staple goes to <pem>.ocsp (repeatable)',
      collect,
      [],
    )
    .option('--staple-dir <dir>', 'also write every staple to <dir>/<certificate id>.der')
    .option('--no-staples', 'do not follow WatchStaples')
    .option('--reload-command <command>', 'run after files changed (split on spaces, no shell)')
    .option(
      '--node-id <id>',
      'the name this sidecar watches and acknowledges under (default: host name + random, unique per process)',
      defaultNodeId(),
    )
    .option('--once', 'apply the first key set and staples, then exit (for init containers)', false)
    .addOption(
      new Option(
        '--metrics-address <host:port>',
        'serve GET /metrics (applied epoch, last success and failure, reload failures, staple age) and /healthz',
      ).env('KEYFLEET_SYNC_METRICS_ADDRESS'),
    );
}

/** Runs a sync target until SIGTERM/SIGINT (or once), logging one JSON line per event. */
async function runSync(
  context: Parameters<Parameters<typeof withContext>[1]>[0],
  target: SyncTarget,
  options: CommonSyncOptions,
): Promise<void> {
  const log = (event: object) => console.log(JSON.stringify({ time: new Date().toISOString(), ...event }));
  if (options.once) {
    const nowMs = context.clock();
    if (options.ring) {
      const client = context.clients.ticketKeys();
      const response = await unary(
        client.getKeySet.bind(client),
        { ring: options.ring, omitSecrets: false },
        context.timeoutMs,
      );
      if (response.keySet)
        log({ event: 'key set applied', ...(await target.applyKeySet(response.keySet, nowMs)) });
    }
    if (options.staples) {
      // Without the staple service a terminator still starts (it staples
      // nothing yet: nginx gets a tryLater placeholder, HAProxy no file); the
      // long-running sidecar fills the staples in once the service answers.
      const client = context.clients.staples();
      const certificates = await unary(client.listCertificates.bind(client), {}, context.timeoutMs).then(
        (response) => response.certificates,
        (error: Error) => {
          log({ event: 'staples unavailable', error: error.message });
          return [];
        },
      );
      log({ event: 'staples applied', ...(await target.applyStaples(certificates, nowMs)) });
    }
    return;
  }
  const streams: SyncStream[] = [
    ...(options.ring ? ['keys' as const] : []),
    ...(options.staples ? ['staples' as const] : []),
  ];
  const registry = new Registry();
  const metrics = syncMetrics(registry, target.kind, streams, context.clock);
  const address = options.metricsAddress ? listenAddress(options.metricsAddress) : undefined;
  const metricsServer = address ? await startMetricsServer(registry, address.host, address.port) : undefined;
  const runner = startSyncRunner({
    metrics,
    target,
    ring: options.ring,
    ticketKeys: options.ring ? context.clients.ticketKeys() : undefined,
    staples: options.staples ? context.clients.staples() : undefined,
    certificateIds: [],
    nodeId: options.nodeId,
    clock: context.clock,
    log,
  });
  log({
    event: 'sync started',
    target: target.kind,
    ring: options.ring,
    staples: options.staples,
    ...(metricsServer ? { metricsPort: metricsServer.port } : {}),
  });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  runner.stop();
  await runner.settled();
  await metricsServer?.stop();
}

export function addSyncCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const sync = program
    .command('sync')
    .description('keep a terminator’s ticket keys and staples in step with the fleet (a sidecar)');

  commonSyncOptions(
    sync
      .command('nginx')
      .description(
        'write ssl_session_ticket_key files key-0.key…key-<N-1>.key and staples, then reload nginx',
      )
      .requiredOption('--key-dir <dir>', 'where the key files go (nginx.conf names them)')
      .option('--slots <count>', 'ssl_session_ticket_key lines in nginx.conf', integerOption('--slots'), 4),
  ).action(
    withContext(env, async (context, options: CommonSyncOptions & { keyDir: string; slots: number }) => {
      const target = nginxTarget({
        keyDir: options.keyDir,
        slotCount: options.slots,
        reloadCommand: parseCommandLine(options.reloadCommand ?? 'nginx -s reload'),
        staples: stapleDestinations({ stapleDir: options.stapleDir, certificatePaths: options.certificate }),
      });
      await runSync(context, target, options);
    }),
  );

  commonSyncOptions(
    sync
      .command('haproxy')
      .description(
        'write the tls-ticket-keys file and .ocsp staples, and push both live over the runtime API',
      )
      .requiredOption('--ticket-key-file <file>', 'the tls-ticket-keys file the bind lines name')
      .option('--socket <path>', 'HAProxy stats socket with level admin (live updates without reload)'),
  ).action(
    withContext(
      env,
      async (context, options: CommonSyncOptions & { ticketKeyFile: string; socket?: string }) => {
        const target = haproxyTarget({
          ticketKeyFile: options.ticketKeyFile,
          runtimeApi: options.socket ? haproxyRuntimeApi(options.socket) : undefined,
          reloadCommand: parseCommandLine(options.reloadCommand ?? ''),
          staples: stapleDestinations({
            stapleDir: options.stapleDir,
            certificatePaths: options.certificate,
          }),
        });
        await runSync(context, target, options);
      },
    ),
  );

  commonSyncOptions(
    sync
      .command('files')
      .description(
        'write Node’s 48-byte ticketKeys (the ACTIVE key) and DER staples for servers that read files',
      )
      .option('--node-ticket-keys <file>', 'where the 48-byte ticketKeys go'),
  ).action(
    withContext(env, async (context, options: CommonSyncOptions & { nodeTicketKeys?: string }) => {
      const target = filesTarget({
        nodeTicketKeysFile: options.nodeTicketKeys,
        reloadCommand: parseCommandLine(options.reloadCommand ?? ''),
        staples: stapleDestinations({ stapleDir: options.stapleDir, certificatePaths: options.certificate }),
      });
      await runSync(context, target, options);
    }),
  );
}
