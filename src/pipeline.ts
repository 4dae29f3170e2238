/**
 * The flow of one record: decode → validate → build the object → write → (commit, by the batch).
 * And the flow of one partition's batch, composed from small units: the in-flight window
 * (batch/window.ts), the keyed sequencer (batch/key-sequencer.ts), the committer
 * (batch/committer.ts) and the per-partition stall tracker (batch/stalls.ts).
 *
 * The one policy, in one place (`#settle`):
 * - a permanent SinkError routes the record to the DLQ, and the batch goes on;
 * - a retryable SinkError stalls the partition: the batch starts nothing more, lets what is in
 *   flight finish, commits the contiguous finished prefix and returns a backoff. The source then
 *   pauses that partition and fetches it again from the first unfinished offset when the backoff
 *   ends, so one stalled partition never holds up the others;
 * - anything that is not a SinkError is a bug and is rethrown, so the process fails instead of
 *   committing past it.
 *
 * The no-loss invariant: an offset is committed only when it and every offset before it in the
 * partition have landed in S3 or in the DLQ (the committer's watermark).
 */
import type { Logger } from 'pino';
import { BatchCommitter } from './batch/committer.ts';
import { KeySequencer, type KeyTurn } from './batch/key-sequencer.ts';
import { PartitionStalls } from './batch/stalls.ts';
import { ByteBudget, type Charge, EXPANSION, InflightWindow } from './batch/window.ts';
import type { Framed } from './codec.ts';
import type { DeadLetterPort, SourceRecord } from './dlq.ts';
import { DecodeError, describeError, isSinkError, type SinkError } from './errors.ts';
import type { Metrics } from './metrics.ts';
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
export interface BatchControl {
  /** False once the partition is revoked, the batch is stale, or shutdown started: start nothing new. */
  isActive(): boolean;
  /**
   * Whether commits are still ours to make. Stays true during a graceful shutdown (what landed is
   * committed before leaving the group) and turns false when the partition is revoked.
   */
  canCommit(): boolean;
  /** Everything up to and including `offset` has finished: resolve and commit it. */
  checkpoint(offset: string): Promise<void>;
}

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

  constructor(settings: PipelineSettings, deps: PipelineDeps) {
    this.#s = settings;
    this.#d = deps;
    this.#stalls = new PartitionStalls(settings, deps.random);
    this.#processBytes = new ByteBudget(settings.maxProcessInflightBytes);
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
      const built = await this.#build(record, seen);
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
      this.#d.metrics.writeSeconds.add({}, (performance.now() - started) / 1000);
      if (outcome !== 'unchanged') this.#d.metrics.bytesWritten.add({}, built.body.length);
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
   * Processes one partition's batch: up to `inflightPerPartition` records (and the byte budgets)
   * in flight; same-key records write in offset order; the contiguous finished prefix is committed.
   * On a retryable failure the batch ends early and returns the backoff (see the module comment).
   */
  async processBatch(records: readonly SourceRecord[], control: BatchControl, lastOffset?: string): Promise<BatchResult> {
    const first = records[0];
    if (first === undefined) return {};
    const partition = first.partition;
    this.#stalls.fetchedFrom(partition, first.offset);
    const committer = new BatchCommitter(
      records.map((r) => r.offset),
      lastOffset,
      this.#s.commitIntervalMs,
      {
        canCommit: () => control.canCommit(),
        commit: async (offset) => {
          await control.checkpoint(offset);
          this.#stalls.committed(partition, offset);
        },
      },
    );
    const window = new InflightWindow(this.#s.inflightPerPartition, this.#s.maxInflightBytes, this.#processBytes);
    const sequencer = new KeySequencer();
    const finished: string[] = [];
    let stalledBy: SinkError | undefined;
    let bug: { error: unknown } | undefined;
    const stop = () => stalledBy !== undefined || bug !== undefined || !control.isActive();

    for (const [index, record] of records.entries()) {
      if (stop()) break;
      const turn = sequencer.next();
      if (this.#stalls.alreadyFinished(partition, record.offset)) {
        // Finished in the batch that stalled; this is its re-fetch.
        turn.release();
        committer.complete(index);
        continue;
      }
      const charge = await window.admit((record.value?.length ?? 0) * EXPANSION);
      if (stop()) {
        charge.release();
        turn.abandon();
        break;
      }
      this.#d.metrics.inflight.add({}, 1);
      const task = this.processOnce(record, turn, control, charge).then(
        (outcome) => {
          if (outcome === undefined) return turn.abandon();
          this.#d.metrics.records.add({ outcome }, 1);
          this.#stalls.finished(partition, record.offset);
          finished.push(record.offset);
          committer.complete(index);
        },
        (error: unknown) => {
          turn.abandon();
          if (isSinkError(error) && error.retryable) {
            this.#stalls.stall(partition, record.offset);
            this.#d.metrics.stalled.set({}, this.#stalls.stalled);
            this.#d.metrics.retries.add({ code: error.code }, 1);
            stalledBy ??= error;
            this.#lastFailure.set(partition, { offset: record.offset, error });
          } else bug ??= { error };
        },
      );
      window.track(
        task.finally(() => {
          charge.release();
          this.#d.metrics.inflight.add({}, -1);
        }),
      );
    }
    await window.drain();
    await committer.flush();
    this.#d.metrics.stalled.set({}, this.#stalls.stalled);
    if (bug !== undefined) throw bug.error;
    if (stalledBy === undefined) return {};
    const watermark = committer.watermark;
    this.#stalls.rememberFinishedAhead(
      partition,
      finished.filter((o) => watermark === undefined || BigInt(o) > BigInt(watermark)),
    );
    const { attempt, delayMs } = this.#stalls.backoff(partition);
    this.#noteStall(partition, attempt, delayMs);
    return { retryAfterMs: delayMs };
  }

  /** Decode, validate, build. `seen` gets the writer schema id as soon as it is known (for the DLQ). */
  async #build(record: SourceRecord, seen: { schemaId?: number }): Promise<SnapshotObject> {
    const framed = await this.#d.decoder.frame(record.value, this.#s.maxPayloadBytes);
    seen.schemaId = framed.schemaId;
    const { lastModified, json, sha256 } = await (this.#d.bodies ?? inlineBodies).build(framed, this.#s.limits, this.#d.nowSeconds());
    return {
      key: objectKey(this.#s.prefix, { last_modified: lastModified }),
      body: encodeBody(json, this.#s.compression),
      ...(this.#s.compression === 'gzip' ? { contentEncoding: 'gzip' as const } : {}),
      sha256,
      lineage: { topic: record.topic, partition: record.partition, offset: record.offset, schemaId: framed.schemaId },
    };
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
