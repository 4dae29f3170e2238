/**
 * The live consumer's way through the pipeline: one long-lived lane per partition (batch/lane.ts),
 * fed batch after batch. `stream` returns once a batch's records have started, so the source can
 * fetch on without waiting for the slowest upload; a stall or a bug that happens later is handled
 * here, through the source's StreamControl: hold the partition, let the lane go idle, then rewind
 * it to the first unfinished record after the backoff (or fail the process on a bug).
 */
import type { LaneControl, PartitionLane } from './batch/lane.ts';
import type { SourceRecord } from './dlq.ts';

/**
 * A streaming source's control of one partition for one generation (the same object for every
 * batch of it): besides the batch control, how a lane stops and rewinds the partition.
 */
export interface StreamControl extends LaneControl {
  /** Fetch nothing more for the partition (a stall or a bug stopped its lane). */
  hold(): void;
  /** Fetch the partition again from `offset` (the first unfinished record) after `delayMs`. */
  rewind(offset: string, delayMs: number): void;
  /** A bug: the process must fail rather than commit past it. */
  fail(error: unknown): void;
}

/** What the pipeline provides: its lanes and its stall bookkeeping. */
export interface StreamHooks {
  newLane(partition: number, control: LaneControl): PartitionLane;
  /** A batch of the partition starts at `offset` (a stall on a vanished record ends). */
  fetchedFrom(partition: number, offset: string): void;
  /** A lane stalled and went idle: remember what finished ahead; returns the backoff (ms). */
  afterStall(lane: PartitionLane): number;
  /** Refresh the stalled-partitions gauge. */
  showStalled(): void;
}

interface HeldLane {
  readonly lane: PartitionLane;
  /** Set once a stopped lane went idle and the partition was rewound to it. */
  resumeFrom: string | undefined;
}

export class PartitionStreams {
  readonly #hooks: StreamHooks;
  readonly #lanes = new Map<number, HeldLane>();

  constructor(hooks: StreamHooks) {
    this.#hooks = hooks;
  }

  /**
   * Hands one partition's batch to its lane and resolves once every record has *started* (or the
   * lane stopped): true when all started; if not, the caller must not move the partition's fetch
   * position past the batch.
   *
   * `fetchedOffset` is where the fetch that produced the batch started: after a stall, only the
   * re-fetch from the first unfinished record may start a new lane; batches fetched before the
   * rewind (from past the stall) are dropped.
   */
  async stream(records: readonly SourceRecord[], control: StreamControl, lastOffset: string | undefined, fetchedOffset: string): Promise<boolean> {
    const first = records[0];
    if (first === undefined) return true;
    const partition = first.partition;
    let held = this.#lanes.get(partition);
    if (held !== undefined && held.lane.control !== control) {
      // A new generation: the old lane's writes finish first, so same-key order holds in this process.
      await held.lane.idle();
      held = undefined;
    }
    if (held?.lane.failure !== undefined) {
      if (held.resumeFrom === undefined || fetchedOffset !== held.resumeFrom) return false;
      held = undefined;
    }
    if (held === undefined) {
      const lane = this.#hooks.newLane(partition, control);
      const fresh: HeldLane = { lane, resumeFrom: undefined };
      lane.onStop(() => void this.#afterStop(fresh, control));
      this.#lanes.set(partition, fresh);
      held = fresh;
    }
    this.#hooks.fetchedFrom(partition, first.offset);
    return held.lane.submit(records, lastOffset);
  }

  /** Resolves when every lane is idle and has committed what finished (shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.#lanes.values()].map((h) => h.lane.idle()));
  }

  async #afterStop(held: HeldLane, control: StreamControl): Promise<void> {
    control.hold();
    await held.lane.idle();
    this.#hooks.showStalled();
    const failure = held.lane.failure;
    if (failure?.bug !== undefined) return control.fail(failure.bug.error);
    const delayMs = this.#hooks.afterStall(held.lane);
    held.resumeFrom = held.lane.firstUnfinished;
    // The stalled record never finished, so there is always one; anything else is a bug, and a
    // held partition must not be left paused for ever.
    if (held.resumeFrom === undefined) return control.fail(new Error(`partition ${held.lane.partition} stalled with nothing unfinished`));
    control.rewind(held.resumeFrom, delayMs);
  }
}
