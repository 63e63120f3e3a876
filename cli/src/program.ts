import { Command, Option } from 'commander';
import { addKekCommands } from './commands/kek-commands.js';
import { addStapleCommands } from './commands/staple-commands.js';
import { addSyncCommands } from './commands/sync-commands.js';
import { addTicketKeyCommands } from './commands/ticket-key-commands.js';

/**
 * The `keyfleet` command. Global options say where the services are and how
 * to print; credentials come from the environment as for every client
 * (KEYFLEET_CLIENT_CA / _CERT / _KEY, or KEYFLEET_INSECURE_DEV=true). With
 * none of those, while `npm start` runs, its client config points the
 * commands at the local fleet (see local-fleet.ts).
 */
export function createProgram(env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('keyfleet')
    .description(
      'Drive and watch keyfleet: rings, keys, staples, and the nginx / HAProxy / file sync sidecars.',
    )
    .addOption(
      new Option('--ticket-keys <address>', 'ticket-keys service host:port')
        .env('KEYFLEET_TICKET_KEYS_ADDRESS')
        .default('127.0.0.1:50051'),
    )
    .addOption(
      new Option('--ocsp-fetch <address>', 'ocsp-fetch service host:port')
        .env('KEYFLEET_OCSP_FETCH_ADDRESS')
        .default('127.0.0.1:50052'),
    )
    .addOption(new Option('--timeout-ms <ms>', 'deadline of each call').default('10000'))
    .option('--json', 'print JSON (one document per result, one per line for streams)', false)
    .showHelpAfterError();
  addTicketKeyCommands(program, env);
  addStapleCommands(program, env);
  addSyncCommands(program, env);
  addKekCommands(program);
  return program;
}
