/** Connecting in the background: a process started during an outage waits instead of crash-looping. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';

/** Retries `connect` with capped backoff until it succeeds or is cancelled; never throws. */
export function connectWithRetry(connect: () => Promise<void>, log: Logger, what: string): { cancel(): void } {
  let cancelled = false;
  void (async () => {
    for (let attempt = 0; !cancelled; attempt++) {
      try {
        await connect();
        return;
      } catch (error) {
        if (attempt % 10 === 0) log.warn({ err: describeError(error), attempt: attempt + 1 }, `${what} cannot connect yet; retrying`);
        await sleep(Math.min(10_000, 500 * 2 ** attempt), undefined, { ref: false });
      }
    }
  })();
  return {
    cancel: () => {
      cancelled = true;
    },
  };
}
