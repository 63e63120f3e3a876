import { Option, type Command } from 'commander';
import { createOutput } from '../output.js';

/**
 * `keyfleet kek rewrap`: the ticket-keys service's own rewrap, run from the
 * operator's seat. It talks to Redis directly (the only command that does), so
 * it needs REDIS_URL and the KEK file, not the gRPC endpoints; the service
 * package (and its Redis client) is loaded only when this command runs.
 */
export function addKekCommands(program: Command): void {
  const kek = program.command('kek').description('key-encryption key maintenance');
  kek
    .command('rewrap')
    .description(
      'rewrap every stored key under the FIRST KEK of the KEK file (after putting a new KEK first)',
    )
    .addOption(new Option('--redis-url <url>', 'the services’ Redis').env('REDIS_URL').makeOptionMandatory())
    .addOption(
      new Option('--kek-file <file>', 'lines <kek-id>:<base64 32 bytes>, the first wraps')
        .env('KEYFLEET_KEK_FILE')
        .makeOptionMandatory(),
    )
    .addOption(new Option('--key-prefix <prefix>', 'Redis key prefix').env('KEYFLEET_KEY_PREFIX'))
    .action(async function (
      this: Command,
      options: { redisUrl: string; kekFile: string; keyPrefix?: string },
    ) {
      const output = createOutput(this.optsWithGlobals<{ json: boolean }>().json);
      const { rewrapAllKeys } = await import('@keyfleet/ticket-keys');
      const result = await rewrapAllKeys(options);
      output.result(
        result,
        () => `rewrapped ${result.rewrapped} keys in ${result.rings} rings under KEK ${result.kekId}`,
      );
    });
}
