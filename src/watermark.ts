/**
 * The commit watermark of a partition's run of records: records finish out of order (a window of
 * uploads is in flight), but the committed offset only ever moves past a contiguous run of finished
 * records, so a crash can never skip a snapshot that has not landed.
 *
 * Offsets need not be contiguous (compaction, transaction markers), so the tracker works on
 * positions, not on offset arithmetic. Batches can be appended while earlier ones are still in
 * flight (the live consumer streams a partition's batches through one watermark); positions are
 * absolute over the whole run, and the finished front is dropped as it passes, so memory stays
 * bounded by what is unfinished, not by how long the run lasts.
 */
const COMPACT_AFTER = 1024;

export class CommitWatermark {
  #offsets: string[] = [];
  #done: boolean[] = [];
  /** Absolute position of #offsets[0]. */
  #base = 0;
  /** Absolute position of the first unfinished record. */
  #next = 0;
  #passed: string | undefined;

  constructor(offsets: readonly string[] = []) {
    this.append(offsets);
  }

  /** Adds the next records of the partition, in order; returns the position of the first. */
  append(offsets: readonly string[]): number {
    const first = this.#base + this.#offsets.length;
    for (const o of offsets) {
      this.#offsets.push(o);
      this.#done.push(false);
    }
    return first;
  }

  /** Marks the record at absolute position `index` as finished (landed or dead-lettered). */
  complete(index: number): void {
    const at = index - this.#base;
    if (at < 0 || at >= this.#done.length) {
      throw new RangeError(`position ${index} outside the records held (${this.#base}…${this.#base + this.#done.length - 1})`);
    }
    this.#done[at] = true;
  }

  /**
   * Moves the watermark over every finished record at its front and returns the last offset it
   * passed, or undefined when it did not move.
   */
  advance(): string | undefined {
    const start = this.#next;
    while (this.#next - this.#base < this.#done.length && this.#done[this.#next - this.#base] === true) this.#next++;
    if (this.#next === start) return undefined;
    this.#passed = this.#offsets[this.#next - 1 - this.#base];
    if (this.#next - this.#base >= COMPACT_AFTER) this.#compact();
    return this.#passed;
  }

  /** The last offset below which everything has finished, or undefined if none has. */
  get committed(): string | undefined {
    return this.#passed;
  }

  /** The offset of the first record not finished yet, or undefined when all are. */
  get firstUnfinished(): string | undefined {
    return this.#offsets[this.#next - this.#base];
  }

  get allDone(): boolean {
    return this.#next - this.#base === this.#done.length;
  }

  #compact(): void {
    const drop = this.#next - this.#base;
    this.#offsets = this.#offsets.slice(drop);
    this.#done = this.#done.slice(drop);
    this.#base = this.#next;
  }
}

/** Kafka commits name the next offset to read. */
export function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}
