import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { requireCommand } from './system-commands.js';
import { freePort, waitForListening } from './ports.js';
import { makeTempDir } from './temp-dir.js';
import { startProcess, type RunningProcess } from './child-process.js';

/** A real redis-server on a loopback port, private to one test file. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Kill it hard, as a crash would. Data is lost (no persistence). */
  kill(): Promise<void>;
  /** Start it again on the same port after `kill`. */
  restart(): Promise<void>;
  /** SIGSTOP: connections stay open, nothing is answered (a frozen or black-holed server). */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** Stop it and remove its directory. */
  stop(): Promise<void>;
}

/**
 * Starts `redis-server` with no persistence in a temp dir. Fails at once, with
 * the install command, when redis-server is not installed.
 */
export async function startRedis(): Promise<TestRedis> {
  requireCommand('redis-server');
  const port = await freePort();
  const dir = makeTempDir('redis');
  mkdirSync(path.join(dir.path, 'data'), { recursive: true });
  let running: RunningProcess | undefined;

  const launch = async () => {
    running = startProcess('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      path.join(dir.path, 'data'),
      '--logfile',
      '',
      '--daemonize',
      'no',
    ]);
    try {
      await waitForListening(port);
    } catch (error) {
      throw new Error(`redis-server did not start: ${running.output()}`, { cause: error });
    }
  };
  await launch();

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: async () => running?.kill(),
    restart: launch,
    pause: () => void running?.child.kill('SIGSTOP'),
    resume: () => void running?.child.kill('SIGCONT'),
    stop: async () => {
      await running?.stop();
      dir.remove();
    },
  };
}
