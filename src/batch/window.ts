/**
 * The in-flight window: how many records, and how many bytes of them, may be held at once.
 *
 * Bytes are what the process really holds for a record, not its Avro size: while a record is being
 * decoded it is charged its Avro size times EXPANSION (the decoded object graph plus the JSON body
 * it becomes), and once its body is built the charge drops to the body alone, because the decoded
 * object is released before the upload starts. Two budgets apply: one per partition (a batch) and
 * one shared by the whole process, so that many partitions of big snapshots cannot add up past it.
 *
 * A record bigger than a budget is still admitted when nothing else is held, so that a single huge
 * snapshot never deadlocks the window.
 */

/**
 * Heap held per byte of Avro while a record is decoded and its body is built. Measured on snapshots
 * of 1,000 to 200,000 links: a 200,000-link snapshot is 1.7 MB of Avro, an 8.5 MB body and about
 * 22 MB of retained heap while decoded (13×); 16 leaves headroom for the short-lived copies.
 */
export const EXPANSION = 16;

/** A byte budget that waiters queue on in order (first come, first admitted). */
export class ByteBudget {
  readonly #limit: number;
  #used = 0;
  readonly #waiters: { bytes: number; admit: () => void }[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  /** Resolves once `bytes` fit (or nothing else is held). */
  async take(bytes: number): Promise<void> {
    if (this.#waiters.length === 0 && this.#fits(bytes)) {
      this.#used += bytes;
      return;
    }
    await new Promise<void>((admit) => this.#waiters.push({ bytes, admit }));
  }

  /** Gives back `bytes` (a negative number takes more without waiting: a charge that grew). */
  give(bytes: number): void {
    this.#used -= bytes;
    while (this.#waiters.length > 0) {
      const next = this.#waiters[0];
      if (next === undefined || !this.#fits(next.bytes)) break;
      this.#waiters.shift();
      this.#used += next.bytes;
      next.admit();
    }
  }

  #fits(bytes: number): boolean {
    return this.#used === 0 || this.#used + bytes <= this.#limit;
  }
}

/** One record's charge against a window; adjusted as the record changes shape, released once. */
export interface Charge {
  /** The record now holds `bytes` (e.g. its body, after the decoded object was dropped). */
  resize(bytes: number): void;
  release(): void;
}

/** The window of one batch: a count limit and a byte budget, plus the process-wide budget. */
export class InflightWindow {
  readonly #maxRecords: number;
  readonly #batchBytes: ByteBudget;
  readonly #processBytes: ByteBudget;
  readonly #active = new Set<Promise<unknown>>();

  constructor(maxRecords: number, maxBytes: number, processBytes: ByteBudget) {
    this.#maxRecords = maxRecords;
    this.#batchBytes = new ByteBudget(maxBytes);
    this.#processBytes = processBytes;
  }

  get size(): number {
    return this.#active.size;
  }

  /** Waits for a free slot and `bytes` in both budgets. */
  async admit(bytes: number): Promise<Charge> {
    while (this.#active.size >= this.#maxRecords) await Promise.race(this.#active);
    await this.#batchBytes.take(bytes);
    await this.#processBytes.take(bytes);
    let held = bytes;
    let released = false;
    return {
      resize: (next) => {
        if (released) return;
        this.#batchBytes.give(held - next);
        this.#processBytes.give(held - next);
        held = next;
      },
      release: () => {
        if (released) return;
        released = true;
        this.#batchBytes.give(held);
        this.#processBytes.give(held);
      },
    };
  }

  /** Tracks a running task: it holds a slot until it settles. */
  track(task: Promise<unknown>): void {
    const settled = task.then(
      () => undefined,
      () => undefined,
    );
    this.#active.add(settled);
    void settled.then(() => this.#active.delete(settled));
  }

  /** Resolves when every tracked task has settled. */
  async drain(): Promise<void> {
    while (this.#active.size > 0) await Promise.all(this.#active);
  }
}
