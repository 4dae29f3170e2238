/**
 * The commit watermark of one batch: records finish out of order (a window of uploads is in
 * flight), but the committed offset only ever moves past a contiguous run of finished records, so
 * a crash can never skip a snapshot that has not landed.
 *
 * Offsets in a batch need not be contiguous (compaction, transaction markers), so the tracker works
 * on positions in the batch, not on offset arithmetic.
 */
export class CommitWatermark {
  readonly #offsets: readonly string[];
  readonly #done: boolean[];
  #next = 0;

  constructor(offsets: readonly string[]) {
    this.#offsets = offsets;
    this.#done = offsets.map(() => false);
  }

  /** Marks the record at `index` as finished (landed or dead-lettered). */
  complete(index: number): void {
    if (index < 0 || index >= this.#done.length) throw new RangeError(`index ${index} outside the batch of ${this.#done.length}`);
    this.#done[index] = true;
  }

  /**
   * Moves the watermark over every finished record at its front and returns the last offset it
   * passed, or undefined when it did not move.
   */
  advance(): string | undefined {
    const start = this.#next;
    while (this.#next < this.#done.length && this.#done[this.#next] === true) this.#next++;
    return this.#next === start ? undefined : this.#offsets[this.#next - 1];
  }

  /** The last offset below which everything has finished, or undefined if none has. */
  get committed(): string | undefined {
    return this.#next === 0 ? undefined : this.#offsets[this.#next - 1];
  }

  get allDone(): boolean {
    return this.#next === this.#done.length;
  }
}

/** Kafka commits name the next offset to read. */
export function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}
