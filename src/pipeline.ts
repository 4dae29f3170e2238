/**
 * The flow of one record: decode → validate → build the object → write → (commit, by the batch).
 * And the flow of one partition's records through its lane (batch/lane.ts: the in-flight window,
 * the keyed sequencer and the committer), either one batch at a time (`processBatch`, replay) or
 * streamed across batches (`stream`, the live consumer; partition-streams.ts), with the
 * per-partition stall tracker (batch/stalls.ts).
 *
 * The one policy, in one place (`#settle`):
 * - a permanent SinkError routes the record to the DLQ, and the batch goes on;
 * - a retryable SinkError stalls the partition: its lane starts nothing more, lets what is in
 *   flight finish and commits the contiguous finished prefix; after a backoff the partition is
 *   fetched again from the first unfinished offset, so one stalled partition never holds up the
 *   others;
 * - anything that is not a SinkError is a bug and is rethrown, so the process fails instead of
 *   committing past it.
 *
 * The no-loss invariant: an offset is committed only when it and every offset before it in the
 * partition have landed in S3 or in the DLQ (the committer's watermark).
 */
import type { Logger } from 'pino';
import type { KeyTurn } from './batch/key-sequencer.ts';
import { type LaneControl, PartitionLane } from './batch/lane.ts';
import { PartitionStalls } from './batch/stalls.ts';
import { ByteBudget, type Charge } from './batch/window.ts';
import type { Framed } from './codec.ts';
import type { DeadLetterPort, SourceRecord } from './dlq.ts';
import { DecodeError, describeError, isSinkError, type SinkError } from './errors.ts';
import type { Metrics } from './metrics.ts';
import { PartitionStreams, type StreamControl } from './partition-streams.ts';
import type { SnapshotObject, SnapshotSink, WriteOutcome } from './sink/s3.ts';
import { type Compression, encodeBody, objectKey, type SnapshotLimits } from './snapshot.ts';
import { type BodyBuilder, inlineBodies } from './snapshot-transcoder.ts';

export interface RecordDecoder {
  frame(bytes: Buffer | null, maxPayloadBytes: number): Promise<Framed>;
}

export interface PipelineSettings {
  readonly prefix: string;
  readonly compression: Compression;
  readonly limits: SnapshotLimits;
  readonly maxPayloadBytes: number;
  readonly inflightPerPartition: number;
  /** Bytes held (decoded snapshots and bodies) per partition before reading waits. */
  readonly maxInflightBytes: number;
  /** Bytes held across every partition of the process. */
  readonly maxProcessInflightBytes: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** How often the watermark is committed while a batch is still running. */
  readonly commitIntervalMs: number;
  /** Records it rejects are counted as skipped and not written (replay's time range). */
  readonly accept?: (record: SourceRecord) => boolean;
  /** Decode and validate only; the sink is asked what it would do. */
  readonly dryRun?: boolean;
}

export interface PipelineDeps {
  readonly decoder: RecordDecoder;
  /** Body and hash; on this thread unless given (main.ts passes a worker pool when configured). */
  readonly bodies?: BodyBuilder;
  readonly sink: SnapshotSink;
  readonly dlq: DeadLetterPort;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly nowSeconds: () => number;
  readonly random: () => number;
}

/** What the source gives the pipeline with each batch: whether to go on, and how to commit. */
export type BatchControl = LaneControl;
export type { StreamControl } from './partition-streams.ts';

export interface BatchResult {
  /** Set when the partition stalled on a retryable failure: fetch it again after this long. */
  readonly retryAfterMs?: number;
}

export type Outcome = WriteOutcome | 'dead_lettered' | 'skipped' | 'would_create' | 'would_conflict';

export class Pipeline {
  readonly #s: PipelineSettings;
  readonly #d: PipelineDeps;
  readonly #stalls: PartitionStalls;
  readonly #processBytes: ByteBudget;
  /** The latest retryable failure per partition, for the stall's log line. */
  readonly #lastFailure = new Map<number, { offset: string; error: SinkError }>();
  readonly #streams: PartitionStreams;

  constructor(settings: PipelineSettings, deps: PipelineDeps) {
    this.#s = settings;
    this.#d = deps;
    this.#stalls = new PartitionStalls(settings, deps.random);
    this.#processBytes = new ByteBudget(settings.maxProcessInflightBytes);
    this.#streams = new PartitionStreams({
      newLane: (partition, control) => this.#newLane(partition, control),
      fetchedFrom: (partition, offset) => this.#stalls.fetchedFrom(partition, offset),
      afterStall: (lane) => this.#afterStall(lane),
      showStalled: () => this.#d.metrics.stalled.set({}, this.#stalls.stalled),
    });
  }

  /** Partitions stalled on a retryable failure; readiness is false while it is above 0. */
  get stalled(): number {
    return this.#stalls.stalled;
  }

  /** Per-partition stall state, kept across batches (the source reports assignments to it). */
  get partitions(): PartitionStalls {
    return this.#stalls;
  }

  /**
   * One attempt, no retries: returns the outcome, or undefined when `turn` says to give up (an
   * earlier same-key record was abandoned, or the partition was revoked while it waited), or
   * throws a retryable SinkError (or a bug).
   */
  async processOnce(record: SourceRecord, turn: KeyTurn, control?: Pick<BatchControl, 'canCommit'>, charge?: Charge): Promise<Outcome | undefined> {
    if (this.#s.accept !== undefined && !this.#s.accept(record)) {
      turn.release();
      return 'skipped';
    }
    const seen: { schemaId?: number } = {};
    try {
      const { object: built, lastModified, links } = await this.#build(record, seen);
      // The decoded snapshot is garbage from here on: the window holds the body (and the Avro) only.
      charge?.resize(built.body.length + (record.value?.length ?? 0));
      if (!(await turn.claim(built.key))) return undefined;
      // Revoked while waiting for its turn: the next owner writes it, in order.
      if (control !== undefined && !control.canCommit()) return undefined;
      if (this.#s.dryRun === true) {
        turn.finish();
        return await this.#d.sink.plan(built);
      }
      const started = performance.now();
      const outcome = await this.#d.sink.write(built);
      turn.finish();
      const seconds = (performance.now() - started) / 1000;
      this.#d.metrics.writeSeconds.add({}, seconds);
      this.#d.metrics.writeLatency.observe(seconds);
      if (outcome !== 'unchanged') this.#d.metrics.bytesWritten.add({}, built.body.length);
      // Landed: an overwrite is an operator's choice (replay --overwrite), not the feed's progress.
      if (outcome === 'created' || outcome === 'unchanged') {
        const { partition, offset, timestamp } = record;
        this.#d.metrics.landed({ partition, offset, timestampMs: Number(timestamp), lastModified, links, bytes: built.body.length, nowMs: Date.now() });
      }
      this.#d.log.debug({ partition: record.partition, offset: record.offset, key: built.key, outcome }, 'snapshot written');
      return outcome;
    } catch (error) {
      if (!isSinkError(error) || error.retryable) throw error;
      turn.release();
      if (this.#s.dryRun === true) return 'dead_lettered';
      await this.#deadLetter(record, error, seen.schemaId ?? (error instanceof DecodeError ? error.schemaId : undefined));
      return 'dead_lettered';
    }
  }

  /**
   * Processes one partition's batch and waits for all of it: up to `inflightPerPartition` records
   * (and the byte budgets) in flight; same-key records write in offset order; the contiguous
   * finished prefix is committed. On a retryable failure the batch ends early and returns the
   * backoff (see the module comment). Replay uses this; the live consumer streams (`stream`).
   */
  async processBatch(records: readonly SourceRecord[], control: BatchControl, lastOffset?: string): Promise<BatchResult> {
    const first = records[0];
    if (first === undefined) return {};
    this.#stalls.fetchedFrom(first.partition, first.offset);
    const lane = this.#newLane(first.partition, control);
    await lane.submit(records, lastOffset);
    await lane.idle();
    this.#d.metrics.stalled.set({}, this.#stalls.stalled);
    const failure = lane.failure;
    if (failure?.bug !== undefined) throw failure.bug.error;
    if (failure?.stalledBy === undefined) return {};
    return { retryAfterMs: this.#afterStall(lane) };
  }

  /** The live consumer's mode: see PartitionStreams.stream. */
  stream(records: readonly SourceRecord[], control: StreamControl, lastOffset: string | undefined, fetchedOffset: string): Promise<boolean> {
    return this.#streams.stream(records, control, lastOffset, fetchedOffset);
  }

  /** Resolves when every streaming lane is idle and has committed what finished (shutdown). */
  drain(): Promise<void> {
    return this.#streams.drain();
  }

  /** A lane stalled and went idle: remember what finished ahead, and pick the backoff. */
  #afterStall(lane: PartitionLane): number {
    this.#stalls.rememberFinishedAhead(lane.partition, lane.finishedAhead());
    const { attempt, delayMs } = this.#stalls.backoff(lane.partition);
    this.#noteStall(lane.partition, attempt, delayMs);
    return delayMs;
  }

  #newLane(partition: number, control: LaneControl): PartitionLane {
    return new PartitionLane(partition, control, this.#s, this.#processBytes, {
      alreadyFinished: (r) => this.#stalls.alreadyFinished(r.partition, r.offset),
      run: async (r, turn, c, charge) => {
        this.#d.metrics.inflight.add({}, 1);
        try {
          const outcome = await this.processOnce(r, turn, c, charge);
          if (outcome !== undefined) this.#d.metrics.records.add({ outcome }, 1);
          return outcome !== undefined;
        } finally {
          this.#d.metrics.inflight.add({}, -1);
        }
      },
      finished: (r) => {
        this.#stalls.finished(r.partition, r.offset);
        this.#d.metrics.stalled.set({}, this.#stalls.stalled);
      },
      failed: (r, error) => {
        this.#stalls.stall(r.partition, r.offset);
        this.#d.metrics.stalled.set({}, this.#stalls.stalled);
        this.#d.metrics.retries.add({ code: error.code }, 1);
        this.#lastFailure.set(r.partition, { offset: r.offset, error });
      },
      committed: (offset) => this.#stalls.committed(partition, offset),
    });
  }

  /**
   * Decode, validate, build. `seen` gets the writer schema id as soon as it is known (for the DLQ).
   * `lastModified` and `links` go with the object for the metrics of a record that lands.
   */
  async #build(record: SourceRecord, seen: { schemaId?: number }): Promise<{ object: SnapshotObject; lastModified: number; links: number }> {
    const framed = await this.#d.decoder.frame(record.value, this.#s.maxPayloadBytes);
    seen.schemaId = framed.schemaId;
    const { lastModified, links, json, sha256 } = await (this.#d.bodies ?? inlineBodies).build(framed, this.#s.limits, this.#d.nowSeconds());
    const object: SnapshotObject = {
      key: objectKey(this.#s.prefix, { last_modified: lastModified }),
      body: encodeBody(json, this.#s.compression),
      ...(this.#s.compression === 'gzip' ? { contentEncoding: 'gzip' as const } : {}),
      sha256,
      snapshot: { lastModified, links },
      lineage: { topic: record.topic, partition: record.partition, offset: record.offset, schemaId: framed.schemaId },
    };
    return { object, lastModified, links };
  }

  async #deadLetter(record: SourceRecord, error: SinkError, schemaId: number | undefined): Promise<void> {
    await this.#d.dlq.send(record, error, schemaId);
    this.#d.metrics.deadLetters.add({ code: error.code }, 1);
    this.#d.log.warn(
      { topic: record.topic, partition: record.partition, offset: record.offset, code: error.code },
      `dead-lettered ${record.topic}/${record.partition}@${record.offset}: ${error.message}`,
    );
  }

  #noteStall(partition: number, attempt: number, delayMs: number): void {
    const failure = this.#lastFailure.get(partition);
    // The first failure and then every 10th: actionable without flooding the log during an outage.
    if (failure === undefined || attempt % 10 !== 0) return;
    this.#d.log.warn(
      {
        partition,
        offset: failure.offset,
        code: failure.error.code,
        attempt: attempt + 1,
        retryInMs: delayMs,
        cause: describeError(failure.error.cause),
      },
      `retryable failure, partition ${partition} stalls and retries: ${failure.error.message}`,
    );
  }
}
