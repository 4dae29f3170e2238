/**
 * The Kafka-side ceiling: a consumer with the service's client and consumer settings (createKafka,
 * session/heartbeat/rebalance timeouts, maxWaitTimeInMs 1000 as src/source/consumer.ts sets it,
 * PARTITIONS_CONCURRENTLY, eachBatch with autoCommit and auto-resolve off) that decodes nothing
 * and writes nothing: it resolves and commits each batch's last offset. Timed from
 * consumer.connect() until every partition's committed offset is its end offset.
 */
import pino from 'pino';
import { loadConfig } from '../../../src/config.ts';
import { createKafka } from '../../../src/source/kafka.ts';
import { epochMs, type VariantParams } from '../protocol.ts';
import { deferred, type PreparedVariant } from './types.ts';

/** src/source/consumer.ts MAX_WAIT_MS (not exported). */
const MAX_WAIT_MS = 1000;

export async function prepare(p: VariantParams): Promise<PreparedVariant> {
  const c = loadConfig(p.env);
  const consumer = createKafka(c, pino({ level: 'silent' })).consumer({
    groupId: c.KAFKA_GROUP_ID,
    sessionTimeout: c.KAFKA_SESSION_TIMEOUT_MS,
    heartbeatInterval: c.KAFKA_HEARTBEAT_INTERVAL_MS,
    rebalanceTimeout: c.KAFKA_REBALANCE_TIMEOUT_MS,
    maxWaitTimeInMs: MAX_WAIT_MS,
    allowAutoTopicCreation: false,
    retry: { restartOnFailure: async () => true },
  });
  const remaining = new Map(Object.entries(p.ends).filter(([, high]) => high !== '0'));
  let consumed = 0;
  return {
    start() {
      const done = deferred<number>();
      consumer
        .connect()
        .then(() => consumer.subscribe({ topic: c.KAFKA_TOPIC, fromBeginning: c.KAFKA_FROM_BEGINNING }))
        .then(() =>
          consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            partitionsConsumedConcurrently: c.PARTITIONS_CONCURRENTLY,
            eachBatch: async ({ batch, resolveOffset }) => {
              if (batch.isEmpty()) return;
              const last = batch.lastOffset();
              const next = (BigInt(last) + 1n).toString();
              resolveOffset(last);
              await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
              consumed += batch.messages.length;
              const key = String(batch.partition);
              if (remaining.get(key) === next) remaining.delete(key);
              if (remaining.size === 0) done.resolve(epochMs());
            },
          }),
        )
        .catch((error: unknown) => done.reject(error));
      consumer.on(consumer.events.CRASH, (e) => {
        if (!e.payload.restart) done.reject(e.payload.error);
      });
      return { done: done.promise, objects: () => consumed, close: () => consumer.disconnect() };
    },
  };
}
