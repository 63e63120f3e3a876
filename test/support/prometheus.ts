/**
 * A real Prometheus (Debian's `prometheus` package) scraping static targets on
 * loopback every second and evaluating a rule file every second, with its
 * HTTP API wrapped for the questions tests ask: what does this PromQL return
 * now, and which alerts are pending or firing.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startProcess } from './child-process.js';
import { freePort } from './ports.js';
import { requireCommand } from './system-commands.js';

export interface ScrapeJob {
  /** Becomes the `job` label. */
  readonly job: string;
  /** host:port of each /metrics endpoint. */
  readonly targets: readonly string[];
}

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface PromAlert {
  readonly labels: Record<string, string>;
  readonly state: 'pending' | 'firing';
}

export interface TestPrometheus {
  readonly url: string;
  /** An instant query (at `time`, Unix seconds, default now); throws on a PromQL error. */
  query(expr: string, time?: number): Promise<PromSample[]>;
  /** Values of a label across the series `match` selects (what a Grafana variable lists). */
  labelValues(label: string, match: string): Promise<string[]>;
  /** Alerts in state pending or firing now. */
  alerts(): Promise<PromAlert[]>;
  /** Health of each scrape target by job, as Prometheus last saw it. */
  targets(): Promise<{ job: string; instance: string; health: string; lastError: string }[]>;
  output(): string;
  stop(): Promise<void>;
}

interface ApiReply<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
}

export async function startPrometheus(options: {
  dir: string;
  jobs: readonly ScrapeJob[];
  /** A plain Prometheus rule file (`groups:`), already on disk. */
  ruleFile?: string;
}): Promise<TestPrometheus> {
  requireCommand('prometheus');
  const port = await freePort();
  const config = path.join(options.dir, 'prometheus.yml');
  writeFileSync(
    config,
    JSON.stringify({
      global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      rule_files: options.ruleFile ? [options.ruleFile] : [],
      scrape_configs: options.jobs.map((job) => ({
        job_name: job.job,
        static_configs: [{ targets: job.targets }],
      })),
    }),
  );
  const running = startProcess('prometheus', [
    `--config.file=${config}`,
    `--storage.tsdb.path=${path.join(options.dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--storage.tsdb.retention.time=1h',
    '--log.level=warn',
  ]);
  const url = `http://127.0.0.1:${port}`;

  async function api<T>(pathAndQuery: string): Promise<T> {
    const response = await fetch(`${url}${pathAndQuery}`);
    const reply = (await response.json()) as ApiReply<T>;
    if (reply.status !== 'success') throw new Error(`Prometheus ${pathAndQuery}: ${reply.error}`);
    return reply.data;
  }

  const deadline = Date.now() + 20_000;
  for (;;) {
    const ready = await fetch(`${url}/-/ready`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    if (running.child.exitCode !== null || Date.now() > deadline) {
      await running.stop();
      throw new Error(`prometheus did not become ready:\n${running.output()}`);
    }
    await sleep(100);
  }

  return {
    url,
    async query(expr, time) {
      const at = time === undefined ? '' : `&time=${time}`;
      const data = await api<{ resultType: string; result: PromSample[] }>(
        `/api/v1/query?query=${encodeURIComponent(expr)}${at}`,
      );
      if (data.resultType !== 'vector') throw new Error(`${expr}: a ${data.resultType}, not a vector`);
      return data.result;
    },
    async labelValues(label, match) {
      return api<string[]>(`/api/v1/label/${label}/values?match[]=${encodeURIComponent(match)}`);
    },
    async alerts() {
      return (await api<{ alerts: PromAlert[] }>('/api/v1/alerts')).alerts;
    },
    async targets() {
      const data = await api<{
        activeTargets: { labels: Record<string, string>; health: string; lastError: string }[];
      }>('/api/v1/targets?state=active');
      return data.activeTargets.map((target) => ({
        job: target.labels.job ?? '',
        instance: target.labels.instance ?? '',
        health: target.health,
        lastError: target.lastError,
      }));
    },
    output: () => running.output(),
    stop: () => running.stop(),
  };
}
