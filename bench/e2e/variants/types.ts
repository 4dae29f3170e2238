/** What a variant module gives the child runner (bench/e2e/variant.ts). */
export interface VariantRun {
  /**
   * Resolves with the epoch ms at which the variant saw its last object written and last offset
   * committed, and rejects when it failed. The service's never resolves (the parent decides when
   * it is done); it rejects if the service fails.
   */
  readonly done: Promise<number>;
  /** Service only: resolves when startConsumerService has returned (the group is joined). */
  readonly running?: Promise<void>;
  /** Objects written so far (records consumed, for consume-only). */
  objects(): number;
  /** Untimed: disconnects and releases everything. */
  close(): Promise<void>;
}

export interface PreparedVariant {
  /** Called right after the clock and process.cpuUsage() start; starts the work, returns at once. */
  start(): VariantRun;
}

/** A promise and its settle functions (Promise.withResolvers, typed for our use). */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  promise.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection
  return { promise, resolve, reject };
}
