import type { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { KeySet, RingParams } from '@keyfleet/proto';
import { keyNameHex } from '@keyfleet/tls-engine';
import { unary } from '../clients.js';
import { commandContext, integerOption, keyNameArgument, type CommandContext } from '../command-context.js';
import {
  certificatesText,
  certificateView,
  keySetText,
  keySetView,
  ringStatusView,
  table,
} from '../output.js';
import { haproxyTicketKeyFileText, haproxyTicketKeyLines } from '../sync/haproxy-ticket-keys.js';
import { createFillerKeys } from '../sync/filler-keys.js';
import { nginxTicketKeyFileName, nginxTicketKeySlots } from '../sync/nginx-ticket-keys.js';
import { nodeTicketKeysFile } from '../sync/node-ticket-keys.js';
import { ticketKeyOrderAt } from '@keyfleet/tls-engine';

type Action = (context: CommandContext, ...args: never[]) => Promise<void>;

/** Wraps an action: builds the context, runs, always closes the clients. */
export function withContext(env: NodeJS.ProcessEnv, action: Action) {
  return async function (this: Command, ...args: unknown[]) {
    const context = commandContext(this, env);
    try {
      // commander passes the arguments, the options, then the command itself.
      await (action as (context: CommandContext, ...rest: unknown[]) => Promise<void>)(
        context,
        ...args.slice(0, -1),
      );
    } finally {
      context.clients.close();
    }
  };
}

async function getKeySet(context: CommandContext, ring: string, omitSecrets: boolean): Promise<KeySet> {
  const client = context.clients.ticketKeys();
  const response = await unary(client.getKeySet.bind(client), { ring, omitSecrets }, context.timeoutMs);
  if (!response.keySet) throw new Error(`the service returned no key set for ring ${ring}`);
  return response.keySet;
}

export function addTicketKeyCommands(program: Command, env: NodeJS.ProcessEnv): void {
  program
    .command('status')
    .description('rings, their keys and states, epochs, ack coverage; staples and their expiry')
    .option('--ring <ring>', 'only this ring')
    .option('--no-staples', 'leave out the staple service')
    .action(
      withContext(env, async (context, options: { ring?: string; staples: boolean }) => {
        const keysClient = context.clients.ticketKeys();
        const rings = (
          await unary(keysClient.listRings.bind(keysClient), {}, context.timeoutMs)
        ).rings.filter((ring) => !options.ring || ring.params?.ring === options.ring);
        const keySets = await Promise.all(
          rings.map((ring) => getKeySet(context, ring.params?.ring ?? '', true)),
        );
        const nowMs = context.clock();
        let certificates: Awaited<ReturnType<typeof listCertificates>> = [];
        if (options.staples) certificates = await listCertificates(context);
        context.output.result(
          {
            rings: rings.map((ring, index) => ({
              ...ringStatusView(ring),
              keySet: keySetView(keySets[index]!),
            })),
            certificates: certificates.map((record) => certificateView(record, nowMs)),
          },
          () =>
            [
              table(
                ['RING', 'EPOCH', 'ACTIVE KEY', 'ACTIVE SINCE', 'WATCHERS', 'ACK COVERAGE'],
                rings.map((ring) => {
                  const view = ringStatusView(ring);
                  return [
                    view.ring,
                    String(view.epoch),
                    view.activeKeyName.slice(0, 16),
                    view.activeSince,
                    String(view.watchers),
                    `${Math.round(view.ackCoverage * 100)}%`,
                  ];
                }),
              ),
              ...keySets.map((keySet) => `\n${keySetText(keySet)}`),
              ...(options.staples ? ['', certificatesText(certificates, nowMs)] : []),
            ].join('\n'),
        );
      }),
    );

  program
    .command('rotate <ring>')
    .description('publish a new key, ACTIVE after the ring’s propagation delay')
    .option(
      '--expected-epoch <epoch>',
      'compare-and-set: rotate only at this epoch',
      integerOption('--expected-epoch'),
    )
    .option('--reason <text>', 'for the audit log', '')
    .action(
      withContext(env, async (context, ring: string, options: { expectedEpoch?: number; reason: string }) => {
        const client = context.clients.ticketKeys();
        const response = await unary(
          client.rotate.bind(client),
          { ring, expectedEpoch: options.expectedEpoch, reason: options.reason },
          context.timeoutMs,
        );
        const published = keyNameHex(response.publishedKeyName);
        context.output.result(
          { publishedKeyName: published, keySet: response.keySet ? keySetView(response.keySet) : undefined },
          () => `published ${published}\n${response.keySet ? keySetText(response.keySet) : ''}`,
        );
      }),
    );

  program
    .command('revoke <ring> <key-name>')
    .description(
      'remove a key (32 hex digits) from every node at once; revoking the ACTIVE key replaces it at once',
    )
    .option('--reason <text>', 'for the audit log', '')
    .action(
      withContext(env, async (context, ring: string, keyName: string, options: { reason: string }) => {
        const client = context.clients.ticketKeys();
        const response = await unary(
          client.revokeKey.bind(client),
          { ring, keyName: keyNameArgument(keyName), reason: options.reason },
          context.timeoutMs,
        );
        context.output.result(response.keySet ? keySetView(response.keySet) : {}, () =>
          response.keySet ? keySetText(response.keySet) : 'revoked',
        );
      }),
    );

  const ring = program.command('ring').description('create, change and list rings');
  ring
    .command('put <ring>')
    .description('create a ring or change its parameters (omitted durations: the service default)')
    .option(
      '--rotation-interval-ms <ms>',
      'how often a key is published',
      integerOption('--rotation-interval-ms'),
    )
    .option('--propagation-ms <ms>', 'publication to first use', integerOption('--propagation-ms'))
    .option(
      '--decrypt-window-ms <ms>',
      'how long a retired key still opens',
      integerOption('--decrypt-window-ms'),
    )
    .option(
      '--ticket-lifetime-ms <ms>',
      'lifetime hint of each ticket',
      integerOption('--ticket-lifetime-ms'),
    )
    .option(
      '--max-session-age-ms <ms>',
      'do not resume older sessions',
      integerOption('--max-session-age-ms'),
    )
    .option('--bind-server-name', 'a ticket resumes only for the SNI it was issued on', false)
    .option('--promote-on-full-ack', 'activate a PENDING key once every watcher holds it', false)
    .action(
      withContext(env, async (context, name: string, options: Partial<RingParams>) => {
        const client = context.clients.ticketKeys();
        const params: RingParams = {
          ring: name,
          rotationIntervalMs: options.rotationIntervalMs ?? 0,
          propagationMs: options.propagationMs ?? 0,
          decryptWindowMs: options.decryptWindowMs ?? 0,
          ticketLifetimeMs: options.ticketLifetimeMs ?? 0,
          maxSessionAgeMs: options.maxSessionAgeMs ?? 0,
          bindServerName: options.bindServerName ?? false,
          promoteOnFullAck: options.promoteOnFullAck ?? false,
        };
        const response = await unary(client.putRing.bind(client), { params }, context.timeoutMs);
        context.output.result(
          response,
          () => `${response.created ? 'created' : 'updated'} ring ${name} at epoch ${response.epoch}`,
        );
      }),
    );
  ring
    .command('list')
    .description('every ring with its parameters and health')
    .action(
      withContext(env, async (context) => {
        const client = context.clients.ticketKeys();
        const response = await unary(client.listRings.bind(client), {}, context.timeoutMs);
        const views = response.rings.map(ringStatusView);
        context.output.result(views, () =>
          table(
            ['RING', 'EPOCH', 'ROTATION', 'WINDOW', 'ACTIVE SINCE', 'ACK COVERAGE'],
            views.map((view) => [
              view.ring,
              String(view.epoch),
              `${(view.params?.rotationIntervalMs ?? 0) / 1000}s`,
              `${(view.params?.decryptWindowMs ?? 0) / 1000}s`,
              view.activeSince,
              `${Math.round(view.ackCoverage * 100)}%`,
            ]),
          ),
        );
      }),
    );

  program
    .command('watch <ring>')
    .description('follow a ring: print each key set (names and states, never secrets) as it changes')
    .option('--node-id <id>', 'the name to watch under', `keyfleet-cli-${process.pid}`)
    .action(
      withContext(env, async (context, ringName: string, options: { nodeId: string }) => {
        const client = context.clients.ticketKeys();
        const stream = client.watchKeySet({ ring: ringName, nodeId: options.nodeId, heartbeatIntervalMs: 0 });
        const stop = () => stream.cancel();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        await new Promise<void>((resolve, reject) => {
          stream.on('data', (message: { keySet?: KeySet }) => {
            if (message.keySet) {
              const keySet = message.keySet;
              context.output.result(keySetView(keySet), () => `${keySetText(keySet)}\n`);
            }
          });
          stream.on('error', (error: Error & { code?: number }) =>
            error.code === 1 ? resolve() : reject(error),
          );
          stream.on('end', () => resolve());
        });
      }),
    );

  program
    .command('export <ring>')
    .description('write a ring’s keys once in a terminator’s format (nginx | haproxy | node)')
    .requiredOption('--format <format>', 'nginx | haproxy | node')
    .requiredOption('--out <path>', 'directory (nginx) or file (haproxy, node)')
    .option('--slots <count>', 'nginx slots', integerOption('--slots'), 4)
    .action(
      withContext(
        env,
        async (context, ringName: string, options: { format: string; out: string; slots: number }) => {
          const keySet = await getKeySet(context, ringName, false);
          const order = ticketKeyOrderAt(keySet, context.clock());
          const written: string[] = [];
          const write = (file: string, data: string | Buffer) => {
            writeFileSync(file, data, { mode: 0o600 });
            written.push(file);
          };
          if (options.format === 'nginx') {
            mkdirSync(options.out, { recursive: true });
            const layout = nginxTicketKeySlots(order, options.slots, createFillerKeys());
            layout.files.forEach((file, slot) =>
              write(path.join(options.out, nginxTicketKeyFileName(slot)), file),
            );
          } else if (options.format === 'haproxy') {
            write(options.out, haproxyTicketKeyFileText(haproxyTicketKeyLines(order, createFillerKeys())));
          } else if (options.format === 'node') {
            write(options.out, nodeTicketKeysFile(order));
          } else {
            throw new Error(`--format must be nginx, haproxy or node, got "${options.format}"`);
          }
          context.output.result({ ring: ringName, epoch: keySet.epoch, written }, () => written.join('\n'));
        },
      ),
    );
}

async function listCertificates(context: CommandContext) {
  const client = context.clients.staples();
  return (await unary(client.listCertificates.bind(client), {}, context.timeoutMs)).certificates;
}

export { listCertificates };
