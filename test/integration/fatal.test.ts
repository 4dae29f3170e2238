/**
 * No idle zombie: when kafkajs stops the consumer for good, the process must not keep running with
 * a dead consumer. It logs one fatal line and exits non-zero so its supervisor restarts it, and it
 * commits nothing past what landed.
 *
 * The trigger is a record batch that truly cannot be read: a ZSTD batch whose compressed bytes are
 * corrupted in the broker's log after the broker accepted it (the broker validates what producers
 * send, so no producer can get such a batch in; a disk or a broker bug can). Every codec is readable
 * now (codecs.test.ts), so "a codec kafkajs lacks" no longer exists as a trigger.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { produceWithLibrdkafka } from '../support/clients.ts';
import { readBatches } from '../support/segments.ts';
import { createTopics, offsets, spawnConsumer, testEnv, withAdmin } from '../support/stack.ts';

describe('a consumer that kafkajs stops for good', () => {
  it('exits 1 with one fatal line instead of idling on an unreadable batch, and commits nothing', async () => {
    const t = testEnv('fatal');
    await createTopics(t, 1);
    try {
      produceWithLibrdkafka({ topic: t.topic, compression: 'zstd' }, [
        { partition: 0, key: 'k', value: Buffer.from('not a snapshot; never decoded. '.repeat(40)) },
      ]);
      // (librdkafka sends a batch uncompressed when compressing would not shrink it: hence the repeats.)
      const [batch] = readBatches(t.topic, 0);
      expect(batch?.codec).toBe(4);
      if (batch === undefined) return;
      // Overwrite the zstd frame's magic number: no zstd decoder accepts the frame after that.
      const fd = openSync(batch.segment, 'r+');
      writeSync(fd, Buffer.alloc(4), 0, 4, batch.recordsPosition);
      closeSync(fd);

      const consumer = spawnConsumer(t);
      const code = await Promise.race([consumer.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 90_000))]);
      if (code === 'still running') consumer.child.kill('SIGKILL');
      expect(code, consumer.output()).toBe(1);
      const fatal = consumer
        .output()
        .split('\n')
        .filter((l) => l.includes('"level":60'));
      expect(fatal).toHaveLength(1);
      expect(fatal[0]).toContain('consumer failed for good');
      expect(fatal[0]).toContain('"err":"cannot decompress a zstd record batch (');
      // At once, without kafkajs' fetch retries: the error says it is not retriable.
      expect(consumer.output()).toMatch(/"level":50,.*"msg":"Crash: KafkaJSNonRetriableError: cannot decompress a zstd record batch \(\d+ bytes\): /);
      const { committed } = await offsets(t);
      expect([...committed.values()]).toEqual(['-1']);
    } finally {
      // The corrupted segment goes with its topic, so no later broker recovery ever meets it.
      await withAdmin((admin) => admin.deleteTopics({ topics: [t.topic, t.dlqTopic] }));
    }
  });
});
