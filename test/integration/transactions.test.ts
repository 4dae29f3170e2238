/**
 * Transactional topics, written by transactional producers we did not write (librdkafka and Kafka's
 * Java client). The consumer reads committed data only: committed snapshots land byte-exact,
 * nothing from an aborted transaction lands, and the committed offsets reach the log end, which is
 * a transaction marker (a control record kafkajs never hands to eachBatch) on both partitions:
 *   partition 0: data A, COMMIT, data B, ABORT, data C, COMMIT   (ends on a commit marker)
 *   partition 1: data A, COMMIT, data B, ABORT                    (ends on an aborted tail)
 */
import { describe, expect, it } from 'vitest';
import { type ProduceOptions, type ProduceStep, produceWithJava, produceWithLibrdkafka } from '../support/clients.ts';
import { encodeSnapshots } from '../support/encode.ts';
import { landsExactly } from '../support/landing.ts';
import { readBatches } from '../support/segments.ts';
import {
  allCommitted,
  baseTime,
  createTopics,
  listKeys,
  offsets,
  readTopic,
  snapshots,
  spawnConsumer,
  testEnv,
  uniqueName,
  waitFor,
} from '../support/stack.ts';

const PRODUCERS = [
  ['librdkafka', produceWithLibrdkafka],
  ['the Kafka Java client', produceWithJava],
] as const satisfies ReadonlyArray<readonly [string, (o: ProduceOptions, steps: readonly ProduceStep[]) => void]>;

describe.each(PRODUCERS)('a transactional topic written by %s', (_name, produce) => {
  it('lands committed snapshots byte-exact, nothing aborted, and commits up to the final markers', async () => {
    const t = testEnv('txn');
    await createTopics(t, 2);
    const committedA = snapshots(4, baseTime(), 50);
    const aborted = snapshots(4, baseTime() + 100, 50);
    const committedC = snapshots(2, baseTime() + 200, 50);
    // One encoder: concurrent first registrations of one subject race in the registry.
    const all = await encodeSnapshots(t, [...committedA, ...aborted, ...committedC]);
    const [a, b, c] = [all.slice(0, 4), all.slice(4, 8), all.slice(8)];
    const on = (records: typeof a, partitionOf: (i: number) => number) => records.map((r, i) => ({ ...r, partition: partitionOf(i) }));
    produce({ topic: t.topic, compression: 'none', transactionalId: uniqueName('txn') }, [
      ...on(a, (i) => i % 2),
      'commit',
      ...on(b, (i) => i % 2),
      'abort',
      ...on(c, () => 0),
      'commit',
    ]);

    // The log really is what the test is about: aborted data in it, and a marker at each end. The
    // coordinator writes the markers after the producer's commit returns, so wait for them to land.
    for (const partition of [0, 1]) {
      await waitFor(`partition ${partition} ending on a marker`, async () => readBatches(t.topic, partition).at(-1)?.control === true, 30_000, 100).catch(
        () => undefined,
      );
      const batches = readBatches(t.topic, partition);
      expect(batches.at(-1)?.control, `partition ${partition} ends on a marker`).toBe(true);
      expect(batches.every((batch) => batch.transactional)).toBe(true);
    }
    const { end } = await offsets(t);
    // Data records plus one marker per transaction on the partition.
    expect(end).toEqual(
      new Map([
        [0, String(2 + 1 + 2 + 1 + 2 + 1)],
        [1, String(2 + 1 + 2 + 1)],
      ]),
    );

    const consumer = spawnConsumer(t);
    try {
      await landsExactly(t, [...committedA, ...committedC]);
      expect(await readTopic(t.dlqTopic)).toEqual([]);
      await waitFor('committed offsets at the end offsets', () => allCommitted(t), 30_000).catch(() => undefined);
      const { committed } = await offsets(t);
      expect(committed, 'committed offsets reach the log end, past the final transaction markers').toEqual(end);
      // Nothing from the aborted transaction arrived late either.
      expect(await listKeys(t.prefix)).toEqual([...committedA, ...committedC].map((s) => `${t.prefix}${s.last_modified}.json`).sort());
    } finally {
      consumer.child.kill('SIGTERM');
    }
    expect(await consumer.exited, consumer.output()).toBe(0);
  });
});
