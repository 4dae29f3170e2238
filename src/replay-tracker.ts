/**
 * Where a replay stands in each partition, and when it is done.
 *
 * A partition is done when its position (the next offset to read) reaches the end fixed at start,
 * not when a record at `end - 1` arrives: that offset may be a transaction marker or an aborted
 * record (which kafkajs never hands to eachBatch), or it may have been compacted away. The position
 * moves forward from three sources, all of which mean "everything below this offset is handled":
 * - the pipeline's checkpoints (written, skipped or dead-lettered records);
 * - the last offset of a batch the pipeline finished, which covers trailing control records;
 * - the last offset of a batch that kafkajs filtered down to nothing (control records, aborted
 *   transactions), reported only through its END_BATCH_PROCESS instrumentation event.
 * Positions only move forward, so a late or repeated report can never move one back.
 */
import type { PartitionRange } from './replay.ts';

interface Entry {
  readonly start: bigint;
  readonly end: bigint;
  position: bigint;
}

export interface ReplayPosition {
  readonly partition: number;
  readonly offset: string;
}

export class ReplayTracker {
  readonly #partitions = new Map<number, Entry>();
  #remaining = 0;
  #onDone: () => void = () => undefined;
  /** Resolves once every partition has reached its end (at once when there is nothing to replay). */
  readonly done: Promise<void>;

  constructor(ranges: readonly PartitionRange[]) {
    for (const r of ranges) {
      const start = BigInt(r.start);
      const end = BigInt(r.end);
      this.#partitions.set(r.partition, { start, end, position: start });
      if (start < end) this.#remaining++;
    }
    this.done = new Promise<void>((resolve) => {
      this.#onDone = resolve;
    });
    if (this.#remaining === 0) this.#onDone();
  }

  /** Partitions still short of their end. */
  get remaining(): number {
    return this.#remaining;
  }

  /** Whether the replay still needs records from this partition (false for partitions outside it). */
  wants(partition: number): boolean {
    const e = this.#partitions.get(partition);
    return e !== undefined && e.position < e.end;
  }

  /** The first offset not to read in this partition, or undefined when it is not part of the replay. */
  end(partition: number): string | undefined {
    return this.#partitions.get(partition)?.end.toString();
  }

  /** Where each unfinished partition must be (re)read from: its start at first, its position later. */
  positions(): ReplayPosition[] {
    const out: ReplayPosition[] = [];
    for (const [partition, e] of this.#partitions) if (e.position < e.end) out.push({ partition, offset: e.position.toString() });
    return out;
  }

  /**
   * Everything below `next` is handled in this partition. Returns true when this call finished it.
   * Reports for other partitions, or behind the position, change nothing.
   */
  advanceTo(partition: number, next: string): boolean {
    const e = this.#partitions.get(partition);
    if (e === undefined || e.position >= e.end) return false;
    const n = BigInt(next);
    if (n <= e.position) return false;
    e.position = n < e.end ? n : e.end;
    if (e.position < e.end) return false;
    this.#remaining--;
    if (this.#remaining === 0) this.#onDone();
    return true;
  }

  /** Offsets passed and offsets in the whole replay (control records and compacted gaps included). */
  progress(): { done: number; total: number } {
    let done = 0n;
    let total = 0n;
    for (const e of this.#partitions.values()) {
      if (e.end <= e.start) continue;
      total += e.end - e.start;
      done += e.position - e.start;
    }
    return { done: Number(done), total: Number(total) };
  }
}
