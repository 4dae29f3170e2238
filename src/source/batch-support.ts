/**
 * What every kafkajs batch handler of this project needs around the pipeline, in one place: the
 * live consumer (consumer.ts) and replay (replay.ts) both use it.
 */

/**
 * Calls kafkajs' `heartbeat()` every `intervalMs` until stopped: kafkajs sends heartbeats only when
 * it is called, so a batch whose uploads hang would otherwise get the member expelled.
 */
export function keepAlive(heartbeat: () => Promise<void>, intervalMs: number, answered: (error?: unknown) => void): () => void {
  const timer = setInterval(() => {
    heartbeat().then(
      () => answered(),
      (error: unknown) => answered(error),
    );
  }, intervalMs);
  return () => clearInterval(timer);
}

/**
 * Partitions paused after a stall, each resumed when its backoff ends. Replay never resolves past
 * an unfinished record, so kafkajs fetches a resumed partition from the stalled record; the live
 * consumer resolves ahead and seeks back before it resumes (consumer.ts).
 */
export class PausedPartitions {
  readonly #timers = new Set<NodeJS.Timeout>();

  /** `pause` is the batch payload's: it pauses the partition and returns its resume. */
  pauseFor(pause: () => () => void, delayMs: number): void {
    const resume = pause();
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      resume();
    }, delayMs);
    this.#timers.add(timer);
  }

  /** Stops every pending resume (shutdown). */
  clear(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}
