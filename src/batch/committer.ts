/**
 * The committer of one batch, or of a partition's run of batches (the live consumer appends each
 * batch as it arrives, while earlier ones are still in flight): it owns the commit watermark and
 * sends commits one at a time.
 *
 * - Commits are chained, never concurrent: each sends the watermark as it is when its turn comes,
 *   so the committed offset only moves forward.
 * - While the batch runs, a commit goes out at most once per `intervalMs`; `flush()` sends the last.
 * - Once every record is done, the commit covers the batch's last offset, which can be past its last
 *   record: a transaction's commit marker (a control record) is never handed to us, and a consumer
 *   that stopped below it would show a lag of 1 for ever.
 * - A failed commit is logged by the caller's `commit` and never fails the batch: what landed is
 *   committed by the next commit, or re-delivered and found unchanged.
 */
import { CommitWatermark } from '../watermark.ts';

export interface CommitTarget {
  /** Whether commits are still ours to make (false once the partition is revoked). */
  canCommit(): boolean;
  /** Everything up to and including `offset` has finished. */
  commit(offset: string): Promise<void>;
}

export class BatchCommitter {
  readonly #watermark: CommitWatermark;
  #lastOffset: string | undefined;
  readonly #intervalMs: number;
  readonly #target: CommitTarget;
  readonly #now: () => number;
  #lastCommitAt: number;
  #committed: string | undefined;
  #chain: Promise<void> = Promise.resolve();

  /**
   * @param offsets the batch's record offsets, in order
   * @param lastOffset the batch's last offset (kafkajs `batch.lastOffset()`), at or after the last record's
   */
  constructor(offsets: readonly string[], lastOffset: string | undefined, intervalMs: number, target: CommitTarget, now: () => number = Date.now) {
    this.#watermark = new CommitWatermark(offsets);
    this.#lastOffset = lastOffset;
    this.#intervalMs = intervalMs;
    this.#target = target;
    this.#now = now;
    this.#lastCommitAt = now();
  }

  /**
   * Adds the partition's next batch; returns the position of its first record (positions, as
   * `complete` takes them, run on over the whole run).
   */
  append(offsets: readonly string[], lastOffset: string | undefined): number {
    const first = this.#watermark.append(offsets);
    this.#lastOffset = lastOffset;
    return first;
  }

  /** The offset of the first record not finished, or undefined when all are: where a re-fetch starts. */
  get firstUnfinished(): string | undefined {
    return this.#watermark.firstUnfinished;
  }

  /** The record at `index` landed or was dead-lettered. */
  complete(index: number): void {
    this.#watermark.complete(index);
    this.#watermark.advance();
    if (this.#now() - this.#lastCommitAt >= this.#intervalMs) void this.#send();
  }

  /** Everything finished up to here; undefined when nothing has. */
  get watermark(): string | undefined {
    if (this.#watermark.allDone && this.#lastOffset !== undefined) return this.#lastOffset;
    return this.#watermark.committed;
  }

  /** Sends the watermark now (if it moved) and waits for every commit sent so far. */
  async flush(): Promise<void> {
    this.#watermark.advance();
    await this.#send();
  }

  #send(): Promise<void> {
    this.#lastCommitAt = this.#now();
    this.#chain = this.#chain.then(async () => {
      const offset = this.watermark;
      if (offset === undefined || offset === this.#committed || !this.#target.canCommit()) return;
      try {
        await this.#target.commit(offset);
        this.#committed = offset;
      } catch {
        // The target reports its own failures; the next commit carries the same progress.
      }
    });
    return this.#chain;
  }
}
