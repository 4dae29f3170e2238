/**
 * A partition's lane: the in-flight window, the keyed sequencer and the committer of a run of
 * records, which may span several batches.
 *
 * Why a lane outlives its batch: kafkajs fetches again only when every batch of the previous fetch
 * has returned, so if a batch handler waits for its last upload, a record that arrives meanwhile
 * waits a whole upload before it is even fetched (p99 ≈ 2–3 uploads at half load). A lane lets the
 * handler return once its records have *started*; they finish in the background, the next batch of
 * the partition joins the same window, sequencer and watermark, and commits still follow the
 * watermark. Backpressure stays: `submit` waits for window room, and the handler with it.
 *
 * A lane stops for good on a retryable failure (stall), on a bug, or when its control goes
 * inactive (revocation, shutdown). It then starts nothing more, lets what is in flight finish and
 * commits the finished prefix (`idle`); the owner decides what comes next (pipeline.ts).
 */

import type { SourceRecord } from '../dlq.ts';
import type { SinkError } from '../errors.ts';
import { isSinkError } from '../errors.ts';
import { BatchCommitter } from './committer.ts';
import { KeySequencer, type KeyTurn } from './key-sequencer.ts';
import { type ByteBudget, type Charge, EXPANSION, InflightWindow } from './window.ts';

/**
 * An idle lane commits this long after its last record finished (or sooner, with a shorter commit
 * interval): soon enough that lag and shutdowns see it, late enough that a lane going idle after
 * every small record does not send a commit per record.
 */
const TRAILING_COMMIT_MS = 100;

/** Finished offsets are pruned to those past the watermark once this many are held. */
const PRUNE_FINISHED_AT = 1024;

export interface LaneControl {
  /** False once the partition is revoked, the batch is stale, or shutdown started: start nothing new. */
  isActive(): boolean;
  /** Whether commits are still ours to make (true during a graceful shutdown, false once revoked). */
  canCommit(): boolean;
  /** Everything up to and including `offset` has finished: commit it. */
  checkpoint(offset: string): Promise<void>;
}

export interface LaneSettings {
  readonly inflightPerPartition: number;
  readonly maxInflightBytes: number;
  readonly commitIntervalMs: number;
}

/** What the lane asks of the pipeline for each record. */
export interface LaneWork {
  /** Already finished in a run that stalled (this is its re-fetch): count it done, do not redo it. */
  alreadyFinished(record: SourceRecord): boolean;
  /** One attempt: true when the record finished, false when it gave up; throws a retryable SinkError or a bug. */
  run(record: SourceRecord, turn: KeyTurn, control: LaneControl, charge: Charge): Promise<boolean>;
  /** The record finished (after `run` said so). */
  finished(record: SourceRecord): void;
  /** The record failed retryably: the lane stops (the first one is the lane's `stalledBy`). */
  failed(record: SourceRecord, error: SinkError): void;
  /** The lane committed `offset`. */
  committed(offset: string): void;
}

export class PartitionLane {
  readonly partition: number;
  readonly control: LaneControl;
  readonly #work: LaneWork;
  readonly #window: InflightWindow;
  readonly #sequencer = new KeySequencer();
  readonly #committer: BatchCommitter;
  /** Offsets that finished, past the watermark at the time: kept for a re-fetch after a stall. */
  readonly #finished: string[] = [];
  #stalledBy: SinkError | undefined;
  #bug: { error: unknown } | undefined;
  #onStop: (() => void) | undefined;
  readonly #commitIntervalMs: number;
  #trailingCommit: NodeJS.Timeout | undefined;
  /** Records started and not yet settled. Not the window's size: a task leaves the window a few microtasks after it settled. */
  #running = 0;

  constructor(partition: number, control: LaneControl, settings: LaneSettings, processBytes: ByteBudget, work: LaneWork) {
    this.partition = partition;
    this.control = control;
    this.#work = work;
    this.#commitIntervalMs = settings.commitIntervalMs;
    this.#window = new InflightWindow(settings.inflightPerPartition, settings.maxInflightBytes, processBytes);
    this.#committer = new BatchCommitter([], undefined, settings.commitIntervalMs, {
      canCommit: () => control.canCommit(),
      commit: async (offset) => {
        await control.checkpoint(offset);
        work.committed(offset);
      },
    });
  }

  /** Set once: a retryable failure or a bug ended the lane (not a revocation or shutdown). */
  get failure(): { stalledBy?: SinkError; bug?: { error: unknown } } | undefined {
    if (this.#stalledBy === undefined && this.#bug === undefined) return undefined;
    return { ...(this.#stalledBy === undefined ? {} : { stalledBy: this.#stalledBy }), ...(this.#bug === undefined ? {} : { bug: this.#bug }) };
  }

  /** Whether the lane starts nothing more. */
  get stopped(): boolean {
    return this.#stalledBy !== undefined || this.#bug !== undefined || !this.control.isActive();
  }

  /** Called once, as soon as a retryable failure or a bug stops the lane. */
  onStop(listener: () => void): void {
    this.#onStop = listener;
  }

  /** Where a re-fetch must start: the first record not finished. */
  get firstUnfinished(): string | undefined {
    return this.#committer.firstUnfinished;
  }

  /** Offsets past the commit watermark that finished: a re-fetch must not redo them. */
  finishedAhead(): string[] {
    const watermark = this.#committer.watermark;
    return this.#finished.filter((o) => watermark === undefined || BigInt(o) > BigInt(watermark));
  }

  /**
   * Starts the batch's records in order, each once the window has room. Resolves when all have
   * started, or when the lane stopped; returns whether all started.
   */
  async submit(records: readonly SourceRecord[], lastOffset: string | undefined): Promise<boolean> {
    const first = this.#committer.append(
      records.map((r) => r.offset),
      lastOffset,
    );
    for (const [i, record] of records.entries()) {
      if (this.stopped) return false;
      const index = first + i;
      const turn = this.#sequencer.next();
      if (this.#work.alreadyFinished(record)) {
        turn.release();
        this.#complete(index);
        continue;
      }
      const charge = await this.#window.admit((record.value?.length ?? 0) * EXPANSION);
      if (this.stopped) {
        charge.release();
        turn.abandon();
        return false;
      }
      this.#running++;
      const task = this.#work.run(record, turn, this.control, charge).then(
        (done) => {
          this.#running--;
          if (!done) return turn.abandon();
          this.#work.finished(record);
          this.#finished.push(record.offset);
          this.#complete(index);
        },
        (error: unknown) => {
          this.#running--;
          turn.abandon();
          if (isSinkError(error) && error.retryable) {
            this.#work.failed(record, error);
            this.#stop(() => {
              this.#stalledBy ??= error;
            });
          } else this.#stop(() => (this.#bug ??= { error }));
        },
      );
      this.#window.track(task.finally(() => charge.release()));
    }
    return !this.stopped;
  }

  /** Resolves when nothing is in flight and the finished prefix is committed. */
  async idle(): Promise<void> {
    await this.#window.drain();
    clearTimeout(this.#trailingCommit);
    this.#trailingCommit = undefined;
    await this.#committer.flush();
  }

  #commitSoon(): void {
    if (this.#trailingCommit !== undefined) return;
    this.#trailingCommit = setTimeout(
      () => {
        this.#trailingCommit = undefined;
        void this.#committer.flush();
      },
      Math.min(this.#commitIntervalMs, TRAILING_COMMIT_MS),
    );
    this.#trailingCommit.unref();
  }

  #complete(index: number): void {
    this.#committer.complete(index);
    // The last record in flight landed: commit shortly even if nothing else comes. Not at once:
    // commits share the broker connection with fetches, and one commit per record (a lane goes
    // idle after almost every small record at moderate rates) doubled p50 latency. Counted by
    // `#running`, not by the window's size: records that settle in the same tick (pointer advances
    // that coalesce resolve together) all still sit in the window, and none of them would commit.
    if (this.#running === 0) this.#commitSoon();
    // Only offsets past the watermark matter for a re-fetch; a long-lived lane keeps just those.
    if (this.#finished.length > PRUNE_FINISHED_AT) this.#finished.splice(0, this.#finished.length, ...this.finishedAhead());
  }

  #stop(mark: () => void): void {
    const first = this.failure === undefined;
    mark();
    if (first) this.#onStop?.();
  }
}
