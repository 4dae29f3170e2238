/**
 * The flow of one record: decode → validate → build the object → write → (commit, by the caller).
 * And the flow of one partition's batch: a bounded window of records in flight, retries of
 * retryable failures, dead-lettering of permanent ones, and a commit watermark.
 *
 * The one policy, in one place: a permanent SinkError routes the record to the DLQ; a retryable one
 * stalls that record (with backoff and heartbeats) until it passes or the partition is taken away;
 * anything that is not a SinkError is a bug and is rethrown, so the process fails instead of
 * committing past it.
 */
import type { Logger } from 'pino';
import type { Decoded } from './codec.ts';
import type { DeadLetterPort, SourceRecord } from './dlq.ts';
import { DecodeError, describeError, isSinkError, type SinkError } from './errors.ts';
import type { Metrics } from './metrics.ts';
import type { SnapshotObject, SnapshotSink, WriteOutcome } from './sink/s3.ts';
import { type Compression, contentHash, encodeBody, objectBody, objectKey, type SnapshotLimits, validateSnapshot } from './snapshot.ts';
import { CommitWatermark } from './watermark.ts';

export interface RecordDecoder {
  decode(bytes: Buffer | null, maxPayloadBytes: number): Promise<Decoded>;
}

export interface PipelineSettings {
  readonly prefix: string;
  readonly compression: Compression;
  readonly limits: SnapshotLimits;
  readonly maxPayloadBytes: number;
  readonly inflightPerPartition: number;
  readonly maxInflightBytes: number;
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
  readonly sink: SnapshotSink;
  readonly dlq: DeadLetterPort;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly nowSeconds: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
}

/** What the source gives the pipeline with each batch: how to ack, and whether to keep going. */
export interface BatchControl {
  /** False once the partition is revoked, the batch is stale, or shutdown started: start nothing new. */
  isActive(): boolean;
  /**
   * Whether commits are still ours to make. Stays true during a graceful shutdown (what landed is
   * committed before leaving the group) and turns false when the partition is revoked or stale.
   */
  canCommit(): boolean;
  heartbeat(): Promise<void>;
  /** Everything up to and including `offset` has finished: resolve and commit it. */
  checkpoint(offset: string): Promise<void>;
}

export type Outcome = WriteOutcome | 'dead_lettered' | 'skipped' | 'would_create' | 'would_conflict';

/**
 * A record's turn to write its object key within a batch. Records finish out of order, but two
 * records for the same key must write in offset order, so that the first snapshot is the one kept.
 * The key is only known after decoding, so the turn is taken then, not at launch.
 */
export interface KeyTurn {
  /** Waits until every earlier record of the batch for this key has finished; false: give up. */
  claim(objectKey: string): Promise<boolean>;
  /** This record will write nothing (skipped, dead-lettered): later ones need not wait for it. */
  release(): void;
}

export class Pipeline {
  readonly #s: PipelineSettings;
  readonly #d: PipelineDeps;
  #stalled = 0;

  constructor(settings: PipelineSettings, deps: PipelineDeps) {
    this.#s = settings;
    this.#d = deps;
  }

  /** Records currently stalled on a retryable failure; readiness is false while it is above 0. */
  get stalled(): number {
    return this.#stalled;
  }

  /**
   * One attempt, no retries: returns the outcome or throws a retryable SinkError (or a bug).
   * Returns undefined when `turn` says to give up (the batch stopped while it waited for its key).
   */
  async processOnce(record: SourceRecord, turn?: KeyTurn): Promise<Outcome | undefined> {
    if (this.#s.accept !== undefined && !this.#s.accept(record)) {
      turn?.release();
      return 'skipped';
    }
    let decoded: Decoded | undefined;
    try {
      decoded = await this.#d.decoder.decode(record.value, this.#s.maxPayloadBytes);
      const snapshot = validateSnapshot(decoded.value, this.#s.limits, this.#d.nowSeconds());
      const json = objectBody(snapshot);
      const body = encodeBody(json, this.#s.compression);
      const object: SnapshotObject = {
        key: objectKey(this.#s.prefix, snapshot),
        body,
        ...(this.#s.compression === 'gzip' ? { contentEncoding: 'gzip' as const } : {}),
        sha256: contentHash(json),
        lineage: { topic: record.topic, partition: record.partition, offset: record.offset, schemaId: decoded.schemaId },
      };
      if (turn !== undefined && !(await turn.claim(object.key))) return undefined;
      if (this.#s.dryRun === true) return await this.#d.sink.plan(object);
      const started = performance.now();
      const outcome = await this.#d.sink.write(object);
      this.#d.metrics.writeSeconds.add({}, (performance.now() - started) / 1000);
      if (outcome !== 'unchanged') this.#d.metrics.bytesWritten.add({}, body.length);
      this.#d.log.debug({ partition: record.partition, offset: record.offset, key: object.key, outcome }, 'snapshot written');
      return outcome;
    } catch (error) {
      if (!isSinkError(error) || error.retryable) throw error;
      turn?.release();
      const schemaId = decoded?.schemaId ?? (error instanceof DecodeError ? error.schemaId : undefined);
      if (this.#s.dryRun === true) return 'dead_lettered';
      await this.#d.dlq.send(record, error, schemaId);
      this.#d.metrics.deadLetters.add({ code: error.code }, 1);
      this.#d.log.warn(
        { topic: record.topic, partition: record.partition, offset: record.offset, code: error.code },
        `dead-lettered ${record.topic}/${record.partition}@${record.offset}: ${error.message}`,
      );
      return 'dead_lettered';
    }
  }

  /**
   * Retries retryable failures with capped exponential backoff and full jitter, heartbeating while
   * it waits. Returns undefined when the batch stopped being active (revoked, shutdown): the record
   * is then left uncommitted for whoever owns the partition next.
   */
  async settle(record: SourceRecord, control: BatchControl, turn?: KeyTurn): Promise<Outcome | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        const outcome = await this.processOnce(record, turn);
        if (outcome === undefined) return undefined;
        if (attempt > 0) this.#d.log.info({ partition: record.partition, offset: record.offset, attempts: attempt + 1 }, 'recovered after retryable failures');
        return outcome;
      } catch (error) {
        if (!isSinkError(error) || !error.retryable) throw error;
        this.#noteRetry(record, error, attempt);
        this.#stalled++;
        this.#d.metrics.stalled.set({}, this.#stalled);
        try {
          await this.#backoff(attempt, control);
        } finally {
          this.#stalled--;
          this.#d.metrics.stalled.set({}, this.#stalled);
        }
        if (!control.isActive()) return undefined;
      }
    }
  }

  /**
   * Processes one partition's batch with up to `inflightPerPartition` records (and
   * `maxInflightBytes` of values) in flight. Records for the same object key write in offset order
   * (see KeyTurn), so the first of two snapshots with one last_modified is the one that is kept,
   * whatever the Kafka keys are.
   */
  async processBatch(records: readonly SourceRecord[], control: BatchControl): Promise<void> {
    const watermark = new CommitWatermark(records.map((r) => r.offset));
    const inflight = new Set<Promise<void>>();
    /** Records in flight: the object key each one writes (once decoded) and its completion. */
    const turns = new Map<number, { key: Promise<string | undefined>; done: Promise<void> }>();
    let bytes = 0;
    let failure: { error: unknown } | undefined;
    let lastCommit = Date.now();
    let pending = false;
    let commits: Promise<void> = Promise.resolve();

    // Commits are chained, never concurrent: each sends the watermark as it is when its turn
    // comes, so the committed offset can only move forward.
    const checkpoint = (force: boolean): Promise<void> => {
      if (watermark.advance() !== undefined) pending = true;
      if (!pending || !(force || Date.now() - lastCommit >= this.#s.commitIntervalMs)) return commits;
      pending = false;
      lastCommit = Date.now();
      commits = commits.then(async () => {
        const offset = watermark.committed;
        if (offset !== undefined && control.canCommit()) await control.checkpoint(offset);
      });
      return commits;
    };

    for (const [index, record] of records.entries()) {
      while (inflight.size > 0 && (inflight.size >= this.#s.inflightPerPartition || bytes >= this.#s.maxInflightBytes)) {
        await Promise.race(inflight);
      }
      if (failure !== undefined || !control.isActive()) break;
      const size = record.value?.length ?? 0;
      const earlier = [...turns.values()];
      let settleKey: (key: string | undefined) => void = () => undefined;
      const key = new Promise<string | undefined>((resolve) => {
        settleKey = resolve;
      });
      const turn: KeyTurn = {
        claim: async (objectKey) => {
          settleKey(objectKey);
          let waited = false;
          for (const e of earlier) {
            if ((await e.key) !== objectKey) continue;
            await e.done;
            waited = true;
          }
          // An earlier same-key record abandoned on revocation must stay first for the next owner.
          return !waited || control.isActive();
        },
        release: () => settleKey(undefined),
      };
      bytes += size;
      this.#d.metrics.inflight.add({}, 1);
      const task: Promise<void> = (async () => {
        const outcome = await this.settle(record, control, turn);
        if (outcome === undefined) return;
        this.#d.metrics.records.add({ outcome }, 1);
        watermark.complete(index);
        await checkpoint(false);
        // Long batches keep the membership alive (kafkajs sends at most one per heartbeat interval).
        await control.heartbeat();
      })()
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => {
          settleKey(undefined);
          bytes -= size;
          this.#d.metrics.inflight.add({}, -1);
          inflight.delete(task);
          turns.delete(index);
        });
      inflight.add(task);
      turns.set(index, { key, done: task });
    }
    await Promise.all(inflight);
    await checkpoint(true);
    if (failure !== undefined) throw failure.error;
  }

  async #backoff(attempt: number, control: BatchControl): Promise<void> {
    const cap = Math.min(this.#s.retryMaxMs, this.#s.retryInitialMs * 2 ** Math.min(attempt, 30));
    let remaining = Math.max(1, Math.round(cap * this.#d.random()));
    // Sleep in slices so that heartbeats go out and a revoked partition is noticed promptly.
    while (remaining > 0 && control.isActive()) {
      const slice = Math.min(remaining, 1000);
      await this.#d.sleep(slice);
      remaining -= slice;
      await control.heartbeat();
    }
  }

  #noteRetry(record: SourceRecord, error: SinkError, attempt: number): void {
    this.#d.metrics.retries.add({ code: error.code }, 1);
    // The first failure and then every 10th: actionable without flooding the log during an outage.
    if (attempt % 10 === 0) {
      this.#d.log.warn(
        { partition: record.partition, offset: record.offset, code: error.code, attempt: attempt + 1, cause: describeError(error.cause) },
        `retryable failure, partition stalls and retries: ${error.message}`,
      );
    }
  }
}
