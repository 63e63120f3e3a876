import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface EmbeddedRedis {
  readonly url: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The local default when REDIS_URL is unset: a `redis-server` child on
 * 127.0.0.1 with its files in `dir`, stopped with its parent. Not for
 * production, where REDIS_URL points at a managed Redis, Sentinel or Cluster.
 * It runs in its own process group: a terminal's Ctrl-C (sent to the whole
 * foreground group) must not take Redis away before the services using it
 * have closed; the parent stops it last.
 */
export async function startEmbeddedRedis(dir: string, port: number): Promise<EmbeddedRedis> {
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '60 1', '--appendonly', 'no'],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let failure: Error | undefined;
  child.once('error', (error) => (failure = error));
  child.once('exit', (code) => (failure ??= new Error(`redis-server exited with code ${code}`)));
  const deadline = Date.now() + 10_000;
  while (!(await answersPing(port))) {
    if (failure) throw failure;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on 127.0.0.1:${port}`);
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.setTimeout(500, () => socket.destroy());
    socket.once('data', (data) => {
      socket.end();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}
