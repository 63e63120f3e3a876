import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { createLogger, insecureDevSecurity } from '@keyfleet/service-kit';
import {
  createTicketKeysServer,
  newKekLine,
  parseKekFile,
  type RunningTicketKeysServer,
} from '@keyfleet/ticket-keys';
import { randomPrefix } from '@keyfleet/test-support';

/** A real ticket-keys service on port 0 over a real Redis, plain text, with its KEK file. */
export async function startTicketKeys(
  redisUrl: string,
  dir: string,
): Promise<{ server: RunningTicketKeysServer; kekFile: string; keyPrefix: string; oldKekLine: string }> {
  const oldKekLine = newKekLine('kek-old');
  const kekFile = path.join(dir, 'kek');
  writeFileSync(kekFile, `${oldKekLine}\n`, { mode: 0o600 });
  const keyPrefix = randomPrefix('cli');
  const server = await createTicketKeysServer({
    redisUrl,
    keyPrefix,
    keks: parseKekFile(oldKekLine),
    security: insecureDevSecurity(),
    address: '127.0.0.1:0',
    registry: new Registry(),
    logger: createLogger('ticket-keys-cli-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    bootstrapRings: [],
    runScheduler: false,
    watcherRefreshMs: 200,
  });
  return { server, kekFile, keyPrefix, oldKekLine };
}
