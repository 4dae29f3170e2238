/**
 * The service's Prometheus metrics, on prom-client, in a Registry of their own (not prom-client's
 * global one): tests, and several services in one process, each get separate series.
 * Labels are low-cardinality by construction: outcome, error code and owned partition, never
 * offsets or keys.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { FeedHealth } from './feed-health.ts';

type Labels = Readonly<Record<string, string>>;

/** Label values are neutralised rather than escaped: they come from error codes, never free text. */
function clean(labels: Labels): Labels {
  const entries = Object.entries(labels);
  // Most calls (inflight, twice per record) have no labels: no copy on the hot path.
  if (entries.length === 0) return labels;
  return Object.fromEntries(entries.map(([k, v]) => [k, v.replace(/["\\\n]/g, '_')]));
}

/**
 * A counter or gauge that can also be read back synchronously (the progress line, replay's summary,
 * tests): prom-client's own reads are async, so the values are mirrored here.
 */
class Series {
  readonly #values = new Map<string, number>();
  readonly #metric: Counter | Gauge;

  constructor(metric: Counter | Gauge) {
    this.#metric = metric;
  }

  add(labels: Labels, delta: number): void {
    const key = JSON.stringify(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + delta);
    this.#metric.inc(clean(labels), delta);
  }

  /** Gauges only (a counter never goes down). */
  set(labels: Labels, value: number): void {
    if (!(this.#metric instanceof Gauge)) throw new TypeError('set() on a counter');
    this.#values.set(JSON.stringify(labels), value);
    this.#metric.set(clean(labels), value);
  }

  /** Drops every label set, so that partitions no longer owned do not linger. */
  clear(): void {
    this.#values.clear();
    this.#metric.reset();
  }

  get(labels: Labels = {}): number {
    return this.#values.get(JSON.stringify(labels)) ?? 0;
  }

  total(): number {
    let sum = 0;
    for (const v of this.#values.values()) sum += v;
    return sum;
  }
}

/** What is known of a record once it has landed in S3 (created or unchanged). */
export interface Landed {
  readonly partition: number;
  readonly offset: string;
  /** The record's Kafka timestamp, ms since the epoch. */
  readonly timestampMs: number;
  readonly lastModified: number;
  readonly links: number;
  /** Bytes of the object as stored (compressed when it is). */
  readonly bytes: number;
  readonly nowMs: number;
}

export interface MetricsOptions {
  /** EXPECTED_CADENCE_SECONDS: a longer gap between consecutive snapshots is counted; 0 = off. */
  readonly expectedCadenceSeconds?: number;
  /** Process metrics (RSS, heap, event-loop lag, GC); off in short-lived tools and tests. */
  readonly processMetrics?: boolean;
}

const MIB = 1024 * 1024;

export class Metrics {
  readonly registry = new Registry();
  readonly #feed: FeedHealth;
  readonly #beforeRender: (() => void)[] = [];

  /** Records by final outcome: created, unchanged, overwritten, dead_lettered; replay adds skipped, would_create, would_conflict. */
  readonly records = this.#counter('tow_and_go_records_total', 'Records finished, by outcome.', ['outcome']);
  readonly deadLetters = this.#counter('tow_and_go_dead_letters_total', 'Records routed to the dead-letter topic, by error code.', ['code']);
  /** Retryable failures, by error code; each is followed by a backoff. */
  readonly retries = this.#counter('tow_and_go_retries_total', 'Retryable failures, by error code.', ['code']);
  readonly bytesWritten = this.#counter('tow_and_go_s3_written_bytes_total', 'Bytes of snapshot bodies written to S3.');
  /** Kept for dashboards built on it; the histogram below has the distribution (its _sum is the same). */
  readonly writeSeconds = this.#counter('tow_and_go_s3_write_seconds_total', 'Time spent in S3 writes.');
  /** Per destination (S3_DESTINATIONS names, a bounded set): each copy's outcome, and failures by code (conflicts are OBJECT_CONFLICT). */
  readonly destinationWrites = this.#counter('tow_and_go_destination_writes_total', 'Objects written per destination, by outcome.', ['destination', 'outcome']);
  readonly destinationFailures = this.#counter('tow_and_go_destination_failures_total', 'Failed writes per destination, by error code.', [
    'destination',
    'code',
  ]);
  readonly groupJoins = this.#counter('tow_and_go_group_joins_total', 'Times this member joined (or rejoined) the consumer group.');
  readonly commits = this.#counter('tow_and_go_commits_total', 'Offset commits sent to the group coordinator.');
  /** One stalled record per stalled partition: the first unfinished one, from its first retryable failure until it finishes. */
  readonly stalled = this.#gauge('tow_and_go_stalled_records', 'Records stalled on a retryable failure (one per stalled partition).');
  /** Per owned partition (a bounded label set); cleared on every rebalance so none goes stale. */
  readonly lag = this.#gauge('tow_and_go_consumer_lag_records', 'Records behind the partition end: committed offset to log end, refreshed on a timer.', [
    'partition',
  ]);
  /** Per owned partition; set when /metrics is read. */
  readonly sinceProgress = this.#gauge(
    'tow_and_go_partition_seconds_since_progress',
    'Seconds since the partition last finished a record (or was assigned to this member).',
    ['partition'],
  );
  readonly inflight = this.#gauge('tow_and_go_inflight_records', 'Records currently being processed.');

  readonly writeLatency = this.#histogram(
    'tow_and_go_s3_write_duration_seconds',
    'Duration of one S3 write (conditional PUT and its checks).',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  /** From the record's Kafka timestamp to landed in S3: includes upstream's produce delay and our lag. */
  readonly endToEnd = this.#histogram(
    'tow_and_go_end_to_end_seconds',
    'Seconds from the record Kafka timestamp to the snapshot landed in S3.',
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
  );
  readonly snapshotLinks = this.#histogram('tow_and_go_snapshot_links', 'Links per landed snapshot.', [0, 1, 10, 100, 1000, 5000, 10000, 50000, 100000]);
  readonly snapshotBytes = this.#histogram('tow_and_go_snapshot_bytes', 'Bytes per landed snapshot object, as stored.', [
    1024,
    8192,
    65536,
    262144,
    MIB,
    4 * MIB,
    16 * MIB,
    64 * MIB,
  ]);
  readonly newestLastModified = this.#gauge(
    'tow_and_go_newest_last_modified_seconds',
    'Newest last_modified landed by this process, seconds since the epoch (feed freshness).',
  );
  readonly lastSuccess = this.#gauge('tow_and_go_last_success_timestamp_seconds', 'When this process last landed a record, seconds since the epoch.');
  readonly backwards = this.#counter(
    'tow_and_go_last_modified_backwards_total',
    'Snapshots whose last_modified is older than the previous one in their partition.',
    ['partition'],
  );
  readonly feedGaps = this.#counter('tow_and_go_feed_gaps_total', 'Gaps between consecutive snapshots of a partition longer than EXPECTED_CADENCE_SECONDS.', [
    'partition',
  ]);

  constructor(options: MetricsOptions = {}) {
    this.#feed = new FeedHealth(options.expectedCadenceSeconds ?? 0);
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry });
  }

  /** `refresh` runs before every render, for gauges computed from state (ages). */
  onRender(refresh: () => void): void {
    this.#beforeRender.push(refresh);
  }

  /** A record landed (created or unchanged): latency, size, freshness and feed health. */
  landed(r: Landed): void {
    const partition = { partition: String(r.partition) };
    if (Number.isFinite(r.timestampMs)) this.endToEnd.observe(Math.max(0, (r.nowMs - r.timestampMs) / 1000));
    this.snapshotLinks.observe(r.links);
    this.snapshotBytes.observe(r.bytes);
    if (r.lastModified > this.newestLastModified.get()) this.newestLastModified.set({}, r.lastModified);
    this.lastSuccess.set({}, r.nowMs / 1000);
    const seen = this.#feed.observe(r.partition, r.offset, r.lastModified);
    if (seen.backwards) this.backwards.add(partition, 1);
    if (seen.gap) this.feedGaps.add(partition, 1);
  }

  /** The Prometheus text format, after the onRender hooks. */
  async render(): Promise<string> {
    for (const refresh of this.#beforeRender) refresh();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #counter(name: string, help: string, labelNames: readonly string[] = []): Series {
    return new Series(new Counter({ name, help, labelNames, registers: [this.registry] }));
  }

  #gauge(name: string, help: string, labelNames: readonly string[] = []): Series {
    return new Series(new Gauge({ name, help, labelNames, registers: [this.registry] }));
  }

  #histogram(name: string, help: string, buckets: number[]): Histogram {
    return new Histogram({ name, help, buckets, registers: [this.registry] });
  }
}
