/** Crash injection for the SIGKILL tests: kill a consumer process mid-stream and start the next. */
import { setTimeout as sleep } from 'node:timers/promises';
import { type ConsumerProcess, spawnConsumer, type TestEnv, waitFor } from './stack.ts';

/**
 * Waits until `progressed` says the consumer got further (or finished), then SIGKILLs it at a random
 * moment up to `jitterMs` later and starts a new one, which it returns. A fast machine may finish
 * before the kill: the kill and the restart still happen.
 */
export async function killAfterProgress(
  t: TestEnv,
  consumer: ConsumerProcess,
  o: { what: string; progressed: () => Promise<boolean>; random: () => number; jitterMs: number },
): Promise<ConsumerProcess> {
  await waitFor(o.what, async () => (await o.progressed()) || undefined, 60_000, 50);
  await sleep(Math.floor(o.random() * o.jitterMs));
  consumer.child.kill('SIGKILL');
  await consumer.exited;
  return spawnConsumer(t);
}
