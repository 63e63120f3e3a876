/**
 * `npm start`'s whole fleet (Redis, both services, the dev CA's responder, two
 * engine nodes) on free loopback ports and a state directory of the test's,
 * started exactly as the README says and stopped the way a terminal would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

const repositoryRoot = path.resolve(import.meta.dirname, '../..');

/** Every port npm start binds, by the KEYFLEET_DEV_* setting that moves it. */
const portSettings = {
  redis: 'REDIS_PORT',
  ticketKeys: 'TICKET_KEYS',
  ticketKeysMetrics: 'TICKET_KEYS_METRICS',
  ocspFetch: 'OCSP_FETCH',
  ocspFetchMetrics: 'OCSP_FETCH_METRICS',
  responder: 'OCSP_RESPONDER_PORT',
  nodeA: 'NODE_A',
  nodeAMetrics: 'NODE_A_METRICS',
  nodeB: 'NODE_B',
  nodeBMetrics: 'NODE_B_METRICS',
} as const;

export type LocalFleetPorts = Record<keyof typeof portSettings, number>;

/** Free ports for every part, and the environment that puts npm start on them. */
export async function localFleetEnvironment(
  stateDir: string,
): Promise<{ ports: LocalFleetPorts; env: NodeJS.ProcessEnv }> {
  const ports = {} as LocalFleetPorts;
  const env: NodeJS.ProcessEnv = { ...process.env, KEYFLEET_STATE_DIR: stateDir };
  delete env.REDIS_URL;
  for (const [part, setting] of Object.entries(portSettings) as [keyof LocalFleetPorts, string][]) {
    ports[part] = await freePort();
    // The bare-port settings take a number, the others host:port.
    env[`KEYFLEET_DEV_${setting}`] = setting.endsWith('PORT')
      ? String(ports[part])
      : `127.0.0.1:${ports[part]}`;
  }
  return { ports, env };
}

export interface LocalFleet {
  readonly child: ChildProcess;
  /** Everything npm start printed so far. */
  output(): string;
  untilOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGINT to npm, as a supervisor sends it; resolves with its exit code. */
  stop(): Promise<number | null>;
}

/**
 * `npm start` with `env`; resolves once it prints its ready line.
 * `ownGroup`: in a process group of its own, as a terminal runs a foreground
 * job, so a test can send Ctrl-C's SIGINT to the whole group.
 */
export async function startLocalFleet(
  env: NodeJS.ProcessEnv,
  options: { ownGroup?: boolean; readyWithinMs?: number } = {},
): Promise<LocalFleet> {
  let output = '';
  const child = spawn('npm', ['start'], {
    cwd: repositoryRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownGroup === true,
  });
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const fleet: LocalFleet = {
    child,
    output: () => output,
    async untilOutput(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(output);
        if (match) return match;
        if (child.exitCode !== null) throw new Error(`npm start exited early:\n${output}`);
        if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${output}`);
        await sleep(100);
      }
    },
    stop() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGINT');
      return exited;
    },
  };
  await fleet.untilOutput(/^ready\. Ctrl-C stops everything\.$/m, options.readyWithinMs ?? 90_000);
  return fleet;
}
