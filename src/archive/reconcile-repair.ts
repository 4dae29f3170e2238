/**
 * `tow-and-go reconcile --repair`: the records found missing are written through the normal
 * pipeline (decode, validate, build, conditional PUT with If-None-Match: *), one partition's records
 * in offset order, so that of two different snapshots for one missing key the earlier is kept, as
 * the live consumer keeps it.
 *
 * A conflict is reported, never dead-lettered. The DLQ is where the consumer puts records the feed
 * got wrong; a conflict found by an audit means the stored object is not what the feed says it
 * should be (changed behind the service's back, or a race with another writer). Dead-lettering the
 * record would make the next reconcile count it as accounted for and hide that, and it would fire
 * the dead-letter alert for something the producers did not do. So the repair's pipeline gets a
 * producer that sends nothing: what the pipeline would dead-letter is only noted, and the re-check
 * after the repair reports the record (as a conflict) with the rest.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Message, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { SourceRecord } from '../dlq.ts';
import type { Pipeline } from '../pipeline.ts';

/** `producer` with a `send` that sends nothing and hands each message to `held` instead. */
export function holdingDeadLetters(producer: Producer, held: (message: Message) => void): Producer {
  return {
    ...producer,
    send: async (record) => {
      for (const message of record.messages) held(message);
      return [];
    },
  };
}

/**
 * Writes `records` (any partitions, any order) through `pipeline`. A partition that stalls on a
 * retryable failure is fetched again from its first unfinished record after the pipeline's backoff,
 * as replay does, at most `attempts` times; what is still not written then is reported missing by
 * the re-check, so the command exits 1 instead of hanging on a dependency that stays down.
 */
export async function repairMissing(pipeline: Pick<Pipeline, 'processBatch'>, records: readonly SourceRecord[], attempts: number, log: Logger): Promise<void> {
  const byPartition = new Map<number, SourceRecord[]>();
  for (const r of records) {
    const list = byPartition.get(r.partition);
    if (list === undefined) byPartition.set(r.partition, [r]);
    else list.push(r);
  }
  await Promise.all(
    [...byPartition.values()].map((list) => {
      const ordered = [...list].sort((a, b) => (BigInt(a.offset) < BigInt(b.offset) ? -1 : BigInt(a.offset) > BigInt(b.offset) ? 1 : 0));
      return repairPartition(pipeline, ordered, attempts, log);
    }),
  );
}

async function repairPartition(pipeline: Pick<Pipeline, 'processBatch'>, records: readonly SourceRecord[], attempts: number, log: Logger): Promise<void> {
  let remaining = records;
  for (let attempt = 1; remaining.length > 0; attempt++) {
    // Everything up to `done` finished; the pipeline remembers what finished past it.
    const mark: { done: bigint | undefined } = { done: undefined };
    const result = await pipeline.processBatch(remaining, {
      isActive: () => true,
      canCommit: () => true,
      checkpoint: async (offset) => {
        mark.done = BigInt(offset);
      },
    });
    if (result.retryAfterMs === undefined) return;
    const done = mark.done;
    remaining = remaining.filter((r) => done === undefined || BigInt(r.offset) > done);
    const partition = remaining[0]?.partition;
    if (attempt >= attempts) {
      log.warn({ partition, left: remaining.length, attempts }, 'repair gave up on a partition that stays stalled; its records stay reported as missing');
      return;
    }
    log.warn({ partition, attempt, retryInMs: result.retryAfterMs }, 'repair stalled on a retryable failure; retrying');
    await sleep(result.retryAfterMs);
  }
}
