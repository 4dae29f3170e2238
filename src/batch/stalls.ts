/**
 * Per-partition stall and progress tracking, across batches.
 *
 * A retryable failure ends its partition's batch: the source pauses that partition and fetches it
 * again from the first unfinished offset after a backoff, while every other partition goes on.
 * This unit remembers, per partition, what a single batch cannot:
 * - the attempt count, so the backoff grows (capped exponential, full jitter) across re-fetches;
 * - that the partition is stalled, from its first retryable failure until the stalled record
 *   finishes or the partition leaves this member: readiness and the stall gauge read it;
 * - when the partition last made progress;
 * - the records past the stalled one that already finished, so a re-fetch does not write or
 *   dead-letter them twice.
 */
export interface BackoffSettings {
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

interface PartitionState {
  stalledAt: bigint | undefined;
  attempts: number;
  lastProgressAt: number;
  readonly finishedAhead: Set<string>;
}

export class PartitionStalls {
  readonly #s: BackoffSettings;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #partitions = new Map<number, PartitionState>();

  constructor(settings: BackoffSettings, random: () => number = Math.random, now: () => number = Date.now) {
    this.#s = settings;
    this.#random = random;
    this.#now = now;
  }

  /** Partitions currently stalled. */
  get stalled(): number {
    let n = 0;
    for (const p of this.#partitions.values()) if (p.stalledAt !== undefined) n++;
    return n;
  }

  isStalled(partition: number): boolean {
    return this.#partitions.get(partition)?.stalledAt !== undefined;
  }

  /** A retryable failure of the record at `offset`: the partition is stalled from now on. */
  stall(partition: number, offset: string): void {
    const p = this.#state(partition);
    const at = BigInt(offset);
    if (p.stalledAt === undefined || at < p.stalledAt) p.stalledAt = at;
  }

  /** The batch of a stalled partition ended: the attempt number (0 first) and the backoff before it is fetched again. */
  backoff(partition: number): { attempt: number; delayMs: number } {
    const p = this.#state(partition);
    const attempt = p.attempts++;
    const cap = Math.min(this.#s.retryMaxMs, this.#s.retryInitialMs * 2 ** Math.min(attempt, 30));
    return { attempt, delayMs: Math.max(1, Math.round(cap * this.#random())) };
  }

  /**
   * The record at `offset` finished (landed, unchanged, dead-lettered, skipped). Only the stalled
   * record itself ends the stall: records past it that were in flight when it failed finish later
   * and must not reset the backoff or the readiness.
   */
  finished(partition: number, offset: string): void {
    const p = this.#state(partition);
    p.lastProgressAt = this.#now();
    if (p.stalledAt !== undefined && BigInt(offset) === p.stalledAt) this.#clear(p);
  }

  /**
   * A batch of the partition starts at `offset`. When that is past the stalled record, the record
   * is gone (compacted away, or removed by retention): the stall is over.
   */
  fetchedFrom(partition: number, offset: string): void {
    const p = this.#partitions.get(partition);
    if (p?.stalledAt !== undefined && BigInt(offset) > p.stalledAt) this.#clear(p);
  }

  #clear(p: PartitionState): void {
    p.stalledAt = undefined;
    p.attempts = 0;
  }

  /** Records at or past the stall that finished before the batch ended: not to be done again. */
  rememberFinishedAhead(partition: number, offsets: Iterable<string>): void {
    const p = this.#state(partition);
    for (const o of offsets) p.finishedAhead.add(o);
  }

  /** Whether the record at `offset` already finished in an earlier batch (a re-fetch after a stall). */
  alreadyFinished(partition: number, offset: string): boolean {
    return this.#partitions.get(partition)?.finishedAhead.has(offset) ?? false;
  }

  /** Everything up to `offset` is committed: forget what is below it. */
  committed(partition: number, offset: string): void {
    const p = this.#partitions.get(partition);
    if (p === undefined || p.finishedAhead.size === 0) return;
    const at = BigInt(offset);
    for (const o of p.finishedAhead) if (BigInt(o) <= at) p.finishedAhead.delete(o);
  }

  /** The partitions this member owns now; others are forgotten (they may be done elsewhere). */
  assigned(partitions: readonly number[]): void {
    const owned = new Set(partitions);
    for (const p of this.#partitions.keys()) if (!owned.has(p)) this.#partitions.delete(p);
    for (const p of owned) this.#state(p);
  }

  /** Every partition left this member (rebalance started, shutdown). */
  revokedAll(): void {
    this.#partitions.clear();
  }

  /** Seconds since each owned partition last finished a record (or was assigned). */
  secondsSinceProgress(): Map<number, number> {
    const now = this.#now();
    return new Map([...this.#partitions].map(([partition, p]) => [partition, (now - p.lastProgressAt) / 1000]));
  }

  #state(partition: number): PartitionState {
    let p = this.#partitions.get(partition);
    if (p === undefined) {
      p = { stalledAt: undefined, attempts: 0, lastProgressAt: this.#now(), finishedAhead: new Set() };
      this.#partitions.set(partition, p);
    }
    return p;
  }
}
