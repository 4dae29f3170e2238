/**
 * The real Prometheus server (Debian package `prometheus`, as promtool is for test/unit/alerts.test.ts)
 * as a child process on 127.0.0.1: a generated prometheus.yml scraping given targets as one job, the
 * given alert rules, a throw-away TSDB in a temp dir. Read through its HTTP API, as a dashboard or
 * Alertmanager would. `stop` always ends the process (SIGTERM, then SIGKILL) and removes the dir.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ROOT } from './stack.ts';

export const SHIPPED_RULES = join(ROOT, 'ops/prometheus/alerts.yml');

/**
 * The shipped rules with every `for:` set to `duration` and nothing else changed, so that a test of
 * a minute or two can see an alert go pending and then fire. Throws if the file has no `for:`, so a
 * reformatted rule file cannot silently leave the real durations in place.
 */
export function shippedRulesWithFor(duration: string): string {
  const shipped = readFileSync(SHIPPED_RULES, 'utf8');
  if (!/^\s+for: /m.test(shipped)) throw new Error(`${SHIPPED_RULES} has no "for:" line to shorten`);
  return shipped.replace(/^(\s+for: )\S+$/gm, `$1${duration}`);
}

const alertSchema = z.object({
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()),
  state: z.enum(['pending', 'firing']),
  activeAt: z.string(),
  value: z.string(),
});
export type PrometheusAlert = z.infer<typeof alertSchema>;

const sampleSchema = z.object({ metric: z.record(z.string(), z.string()), value: z.tuple([z.number(), z.string()]) });
export type PrometheusSample = z.infer<typeof sampleSchema>;

const ruleGroupsSchema = z.object({
  groups: z.array(z.object({ name: z.string(), rules: z.array(z.object({ name: z.string(), type: z.string(), health: z.string() })) })),
});

const envelopeSchema = z.object({ status: z.literal('success'), data: z.unknown() });

export interface PrometheusOptions {
  /** job_name of the one scrape job. */
  readonly job: string;
  /** host:port targets of that job; each is scraped on /metrics. */
  readonly targets: readonly string[];
  /** Alert rules, as YAML text (written to the temp dir). */
  readonly rules: string;
  /** scrape_interval and evaluation_interval; 1s by default. */
  readonly interval?: string;
}

export interface RunningPrometheus {
  readonly url: string;
  /** What Prometheus logged so far (for failure messages). */
  readonly output: () => string;
  /** Active alerts (pending or firing), from /api/v1/alerts. */
  alerts(): Promise<PrometheusAlert[]>;
  /** An instant query, from /api/v1/query; the result must be a vector. */
  query(expr: string): Promise<PrometheusSample[]>;
  /** The loaded rules, by group, from /api/v1/rules. */
  rules(): Promise<z.infer<typeof ruleGroupsSchema>['groups']>;
  /** SIGTERM, SIGKILL if it has not exited after 10 s, then removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function prometheusYml(o: PrometheusOptions, rulesFile: string): string {
  const interval = o.interval ?? '1s';
  // JSON is YAML: no quoting to get wrong. scrape_timeout may not exceed scrape_interval.
  return JSON.stringify(
    {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: [rulesFile],
      scrape_configs: [{ job_name: o.job, metrics_path: '/metrics', static_configs: [{ targets: o.targets }] }],
    },
    null,
    2,
  );
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => child.once('exit', () => resolve()));
}

export async function startPrometheus(o: PrometheusOptions): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'tow-and-go-prometheus-'));
  const rulesFile = join(dir, 'alerts.yml');
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(rulesFile, o.rules);
  writeFileSync(configFile, prometheusYml(o, rulesFile));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=info'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const append = (d: Buffer): void => {
    // Bounded: a long run must not grow without limit; the end is what explains a failure.
    out = (out + d.toString('utf8')).slice(-64_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  const ended = exited(child);
  // If the test runner exits without afterAll (a crash), the child goes with it rather than linger.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await ended;
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  async function get<T extends z.ZodType>(path: string, data: T): Promise<z.infer<T>> {
    const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(5000) });
    const body: unknown = await res.json();
    if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${JSON.stringify(body)}`);
    return data.parse(envelopeSchema.parse(body).data);
  }

  // Not stack.ts' waitFor: it retries through errors, and an exited Prometheus must fail at once.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const why =
      spawnError !== undefined
        ? `prometheus could not run (${spawnError.message}); install it with scripts/ensure-test-tools.sh (Debian package prometheus)`
        : child.exitCode !== null
          ? `prometheus exited ${child.exitCode}`
          : Date.now() > deadline
            ? 'prometheus was not ready after 30 s'
            : undefined;
    if (why !== undefined) {
      await stop();
      throw new Error(`${why}; its log:\n${out}`);
    }
    const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) }).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return {
    url,
    output: () => out,
    alerts: async () => (await get('/api/v1/alerts', z.object({ alerts: z.array(alertSchema) }))).alerts,
    query: async (expr) => {
      const data = await get(`/api/v1/query?query=${encodeURIComponent(expr)}`, z.object({ resultType: z.literal('vector'), result: z.array(sampleSchema) }));
      return data.result;
    },
    rules: async () => (await get('/api/v1/rules?type=alert', ruleGroupsSchema)).groups,
    stop,
  };
}
