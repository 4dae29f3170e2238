/**
 * The naive baseline, what a newcomer writes: kafkajs eachMessage (one message at a time),
 * registry.decode from @kafkajs/confluent-schema-registry, validateSnapshot, PutObject of
 * JSON.stringify(snapshot), then commitOffsets for that one message. Same S3 client settings as the
 * service (S3Proxy needs checksums WHEN_REQUIRED). Timed from consumer.connect() until the N-th
 * commit has returned.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createRegistry } from '../../../src/codec.ts';
import { loadConfig } from '../../../src/config.ts';
import { s3Settings } from '../../../src/main.ts';
import { createS3Client } from '../../../src/sink/s3.ts';
import { validateSnapshot } from '../../../src/snapshot.ts';
import { kafkaClient } from '../../../test/support/stack.ts';
import { epochMs, type VariantParams } from '../protocol.ts';
import { deferred, type PreparedVariant } from './types.ts';

export async function prepare(p: VariantParams): Promise<PreparedVariant> {
  const c = loadConfig(p.env);
  const s3 = createS3Client(s3Settings(c));
  const registry = createRegistry({ url: c.SCHEMA_REGISTRY_URL, timeoutMs: c.SCHEMA_REGISTRY_TIMEOUT_MS });
  const consumer = kafkaClient().consumer({ groupId: c.KAFKA_GROUP_ID });
  const limits = { minLastModified: c.MIN_LAST_MODIFIED, maxFutureSkewSeconds: c.MAX_FUTURE_SKEW_SECONDS, maxLinks: c.MAX_LINKS };
  let written = 0;
  return {
    start() {
      const done = deferred<number>();
      consumer
        .connect()
        .then(() => consumer.subscribe({ topic: c.KAFKA_TOPIC, fromBeginning: true }))
        .then(() =>
          consumer.run({
            autoCommit: false,
            eachMessage: async ({ topic, partition, message }) => {
              if (message.value === null) return;
              const decoded = await registry.decode(message.value);
              const snapshot = validateSnapshot(decoded, limits, Math.floor(Date.now() / 1000));
              await s3.send(
                new PutObjectCommand({
                  Bucket: c.S3_BUCKET,
                  Key: `${c.S3_PREFIX}${snapshot.last_modified}.json`,
                  Body: JSON.stringify(snapshot),
                  ContentType: 'application/json',
                }),
              );
              written++;
              await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
              if (written === p.n) done.resolve(epochMs());
            },
          }),
        )
        .catch((error: unknown) => done.reject(error));
      consumer.on(consumer.events.CRASH, (e) => done.reject(e.payload.error));
      return {
        done: done.promise,
        objects: () => written,
        close: async () => {
          await consumer.disconnect();
          s3.destroy();
        },
      };
    },
  };
}
