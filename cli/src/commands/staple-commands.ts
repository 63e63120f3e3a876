import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { unary } from '../clients.js';
import { certificatesText, certificateView } from '../output.js';
import { listCertificates, withContext } from './ticket-key-commands.js';

export function addStapleCommands(program: Command, env: NodeJS.ProcessEnv): void {
  const staple = program
    .command('staple')
    .description('register certificates and inspect their OCSP staples');
  staple
    .command('register <chain-pem>')
    .description('register a certificate chain (leaf first, then its issuer); its first fetch starts at once')
    .action(
      withContext(env, async (context, chainPath: string) => {
        const client = context.clients.staples();
        const response = await unary(
          client.registerCertificate.bind(client),
          { chainPem: readFileSync(chainPath, 'utf8') },
          context.timeoutMs,
        );
        const record = response.certificate;
        const view = record ? certificateView(record, context.clock()) : undefined;
        context.output.result(
          { created: response.created, certificate: view },
          () =>
            `${response.created ? 'registered' : 'already registered'} ${view?.id ?? ''} (${view?.status ?? ''})`,
        );
      }),
    );
  staple
    .command('unregister <id>')
    .description('forget a certificate and its staple; nodes stop stapling it (re-register to fetch afresh)')
    .action(
      withContext(env, async (context, id: string) => {
        if (!/^[0-9a-f]{64}$/.test(id)) throw new Error('a certificate id is 64 lower-case hex digits');
        const client = context.clients.staples();
        await unary(client.unregisterCertificate.bind(client), { id }, context.timeoutMs);
        context.output.result({ unregistered: id }, () => `unregistered ${id}`);
      }),
    );
  staple
    .command('list')
    .description('every registered certificate with its staple status and expiry')
    .action(
      withContext(env, async (context) => {
        const records = await listCertificates(context);
        const nowMs = context.clock();
        context.output.result(
          records.map((record) => certificateView(record, nowMs)),
          () => certificatesText(records, nowMs),
        );
      }),
    );
  staple
    .command('get <id>')
    .description('one certificate’s record and staple; --der-out writes the staple')
    .option('--der-out <file>', 'write the DER OCSP response here')
    .action(
      withContext(env, async (context, id: string, options: { derOut?: string }) => {
        if (!/^[0-9a-f]{64}$/.test(id)) throw new Error('a certificate id is 64 lower-case hex digits');
        const client = context.clients.staples();
        const response = await unary(client.getStaple.bind(client), { id }, context.timeoutMs);
        const record = response.certificate;
        if (!record) throw new Error(`no certificate ${id}`);
        if (options.derOut) {
          if (!record.staple)
            throw new Error(`certificate ${id.slice(0, 16)} has no staple (${record.status})`);
          writeFileSync(options.derOut, record.staple.der);
        }
        const view = certificateView(record, context.clock());
        context.output.result(view, () => JSON.stringify(view, undefined, 2));
      }),
    );
}
