/**
 * A few Prometheus metrics, hand-rolled to keep dependencies to the ones the user chose.
 * Labels are low-cardinality by construction: outcome and error code, never offsets or keys.
 */
type Labels = Readonly<Record<string, string>>;

class Series {
  readonly #values = new Map<string, number>();

  add(labels: Labels, delta: number): void {
    const key = JSON.stringify(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + delta);
  }

  set(labels: Labels, value: number): void {
    this.#values.set(JSON.stringify(labels), value);
  }

  clear(): void {
    this.#values.clear();
  }

  get(labels: Labels = {}): number {
    return this.#values.get(JSON.stringify(labels)) ?? 0;
  }

  total(): number {
    let sum = 0;
    for (const v of this.#values.values()) sum += v;
    return sum;
  }

  render(name: string): string[] {
    return [...this.#values].map(([key, value]) => {
      const labels = Object.entries(JSON.parse(key) as Record<string, string>);
      const text = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;
      return `${name}${text} ${value}`;
    });
  }
}

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly series: Series;
}

export class Metrics {
  readonly #metrics: Metric[] = [];

  /** Records by final outcome: created, unchanged, overwritten, dead_lettered; replay adds skipped, would_create, would_conflict. */
  readonly records = this.#define('tow_and_go_records_total', 'Records finished, by outcome.', 'counter');
  readonly deadLetters = this.#define('tow_and_go_dead_letters_total', 'Records routed to the dead-letter topic, by error code.', 'counter');
  /** Retryable failures, by error code; each is followed by a backoff. */
  readonly retries = this.#define('tow_and_go_retries_total', 'Retryable failures, by error code.', 'counter');
  readonly bytesWritten = this.#define('tow_and_go_s3_written_bytes_total', 'Bytes of snapshot bodies written to S3.', 'counter');
  readonly writeSeconds = this.#define('tow_and_go_s3_write_seconds_total', 'Time spent in S3 writes.', 'counter');
  readonly groupJoins = this.#define('tow_and_go_group_joins_total', 'Times this member joined (or rejoined) the consumer group.', 'counter');
  readonly commits = this.#define('tow_and_go_commits_total', 'Offset commits sent to the group coordinator.', 'counter');
  /** One stalled record per stalled partition: the first unfinished one, from its first retryable failure until it finishes. */
  readonly stalled = this.#define('tow_and_go_stalled_records', 'Records stalled on a retryable failure (one per stalled partition).', 'gauge');
  /** Per owned partition (a bounded label set); cleared on every rebalance so none goes stale. */
  readonly lag = this.#define(
    'tow_and_go_consumer_lag_records',
    'Records behind the partition end: committed offset to log end, refreshed on a timer.',
    'gauge',
  );
  /** Per owned partition; set when /metrics is read. */
  readonly sinceProgress = this.#define(
    'tow_and_go_partition_seconds_since_progress',
    'Seconds since the partition last finished a record (or was assigned to this member).',
    'gauge',
  );
  readonly #beforeRender: (() => void)[] = [];

  /** `refresh` runs before every render, for gauges computed from state (ages). */
  onRender(refresh: () => void): void {
    this.#beforeRender.push(refresh);
  }
  readonly inflight = this.#define('tow_and_go_inflight_records', 'Records currently being processed.', 'gauge');

  #define(name: string, help: string, type: Metric['type']): Series {
    const series = new Series();
    this.#metrics.push({ name, help, type, series });
    return series;
  }

  render(): string {
    for (const refresh of this.#beforeRender) refresh();
    const lines: string[] = [];
    for (const m of this.#metrics) {
      lines.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.series.render(m.name));
    }
    return `${lines.join('\n')}\n`;
  }
}
