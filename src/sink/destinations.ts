/**
 * Every snapshot to every destination (S3_DESTINATIONS), behind the one sink port the pipeline
 * knows. A write succeeds only when every destination has the object, so a record is committed only
 * then; each destination stays write-once on its own (its own conditional PUT and conflict check).
 *
 * Failures, when several destinations fail differently, in this order:
 * - a bug (not a SinkError) is rethrown: the process fails;
 * - a retryable failure (a destination down, a bucket gone or refused) stalls the partition: the
 *   record is tried again later, and the destinations that already have it answer `unchanged`,
 *   so the others never lose or duplicate anything while one is down;
 * - only then a permanent one (a conflict at one destination) goes to the DLQ, naming the destination.
 *
 * After every destination has it, the `after` steps run (the latest pointer, the uploaded
 * notification, the change stream), before the record's offset may be committed. They are
 * idempotent, and a retryable failure in one has the record tried again, writes included.
 */
import { gunzipSync } from 'node:zlib';
import { isSinkError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import { type Compression, encodeBody } from '../snapshot.ts';
import type { Landing, PlanOutcome, SnapshotObject, SnapshotSink, WriteOutcome } from './s3.ts';

/** One destination's store: the S3 sink, or a fake of it. */
export interface DestinationStore {
  land(object: SnapshotObject): Promise<Landing>;
  plan(object: SnapshotObject): Promise<PlanOutcome>;
  close(): Promise<void>;
}

export interface Destination {
  readonly name: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly compression: Compression;
  readonly store: DestinationStore;
}

/** The object as one destination holds it. */
export interface LandedCopy {
  readonly destination: string;
  readonly bucket: string;
  readonly key: string;
  readonly outcome: WriteOutcome;
  readonly etag: string | undefined;
  /** Bytes stored (compressed when the destination compresses). */
  readonly bytes: number;
}

/**
 * A step after every destination has the snapshot, before the offset may be committed. It must be
 * idempotent (a re-delivered record runs it again) and throw a retryable SinkError, never a
 * permanent one, when it cannot finish: the snapshot has landed and must not be dead-lettered.
 */
export interface AfterLanding {
  afterLanding(object: SnapshotObject, copies: readonly LandedCopy[]): Promise<void>;
}

export interface DestinationSetOptions {
  /** The prefix and compression the pipeline built the object with (the first destination's). */
  readonly builtWith: { readonly prefix: string; readonly compression: Compression };
  readonly metrics?: Metrics;
  readonly after?: readonly AfterLanding[];
}

export class DestinationSet implements SnapshotSink {
  readonly #destinations: readonly Destination[];
  readonly #o: DestinationSetOptions;

  constructor(destinations: readonly Destination[], options: DestinationSetOptions) {
    if (destinations.length === 0) throw new RangeError('at least one destination');
    this.#destinations = destinations;
    this.#o = options;
  }

  get names(): string[] {
    return this.#destinations.map((d) => d.name);
  }

  async write(object: SnapshotObject): Promise<WriteOutcome> {
    const settled = await Promise.allSettled(this.#destinations.map((d) => this.#landAt(d, object)));
    const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    const first = failures.find((e) => !isSinkError(e)) ?? failures.find((e) => isSinkError(e) && e.retryable) ?? failures[0];
    if (first !== undefined) throw first;
    const copies = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    for (const step of this.#o.after ?? []) await step.afterLanding(object, copies);
    return combined(copies.map((c) => c.outcome));
  }

  async plan(object: SnapshotObject): Promise<PlanOutcome> {
    const plans = await Promise.all(this.#destinations.map((d) => d.store.plan(copyFor(object, d, this.#o.builtWith))));
    if (plans.includes('would_conflict')) return 'would_conflict';
    return plans.includes('would_create') ? 'would_create' : 'unchanged';
  }

  async close(): Promise<void> {
    await Promise.all(this.#destinations.map((d) => d.store.close()));
  }

  async #landAt(d: Destination, object: SnapshotObject): Promise<LandedCopy> {
    const copy = copyFor(object, d, this.#o.builtWith);
    try {
      const { outcome, etag } = await d.store.land(copy);
      this.#o.metrics?.destinationWrites.add({ destination: d.name, outcome }, 1);
      return { destination: d.name, bucket: d.bucket, key: copy.key, outcome, etag, bytes: copy.body.length };
    } catch (error) {
      if (!isSinkError(error)) throw error;
      this.#o.metrics?.destinationFailures.add({ destination: d.name, code: error.code }, 1);
      // Which destination failed is the first thing an operator needs when there are several.
      if (this.#destinations.length > 1) error.message = `destination ${d.name}: ${error.message}`;
      throw error;
    }
  }
}

/** Created anywhere is created; overwritten anywhere is overwritten; unchanged only when unchanged everywhere. */
export function combined(outcomes: readonly WriteOutcome[]): WriteOutcome {
  if (outcomes.includes('overwritten')) return 'overwritten';
  return outcomes.includes('created') ? 'created' : 'unchanged';
}

/** The object under the destination's prefix, in its compression (the hash is of the JSON either way). */
export function copyFor(object: SnapshotObject, d: Pick<Destination, 'prefix' | 'compression'>, builtWith: DestinationSetOptions['builtWith']): SnapshotObject {
  const key = `${d.prefix}${object.key.slice(builtWith.prefix.length)}`;
  if (d.compression === builtWith.compression) return key === object.key ? object : { ...object, key };
  const json = builtWith.compression === 'gzip' ? gunzipSync(object.body) : object.body;
  const { contentEncoding: _built, ...rest } = object;
  return { ...rest, key, body: encodeBody(json, d.compression), ...(d.compression === 'gzip' ? { contentEncoding: 'gzip' as const } : {}) };
}
