/**
 * The orchestrator's Kafka side: topics, producing the snapshots once (untimed), end and committed
 * offsets, cleanup. Records are produced through the project's own path: createKafka,
 * createProducer and the AvroEncoder (registry + Confluent framing), as `tow-and-go publish` does.
 */
import type { Admin, Producer } from 'kafkajs';
import { AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from '../../src/codec.ts';
import { loadConfig } from '../../src/config.ts';
import { createKafka, createProducer } from '../../src/source/kafka.ts';
import { createTopicsReady, silent } from '../../test/support/stack.ts';
import { snapshotAt } from './snapshots.ts';

export type Ends = Record<string, string>;

export async function createTopics(admin: Admin, topic: string, dlqTopic: string, partitions: number): Promise<void> {
  await createTopicsReady(admin, [
    { topic, numPartitions: partitions, replicationFactor: 1 },
    { topic: dlqTopic, numPartitions: 1, replicationFactor: 1 },
  ]);
}

export function encoderFor(topic: string): AvroEncoder {
  const config = loadConfig({});
  return new AvroEncoder(createRegistry({ url: config.SCHEMA_REGISTRY_URL, timeoutMs: 10_000 }), loadSnapshotSchema().raw, valueSubject(topic));
}

export async function connectedProducer(): Promise<Producer> {
  const producer = createProducer(createKafka(loadConfig({}), silent));
  await producer.connect();
  return producer;
}

/**
 * Snapshots 0 … n-1 of `links` links, keyed by last_modified. A produce request carries at most
 * ~900 KB of records, so no record batch passes the broker's default 1 MiB max.message.bytes (a
 * 50,000-link record, ~450 KB, goes alone).
 */
export async function produceSnapshots(topic: string, n: number, links: number): Promise<{ avroBytes: number }> {
  const encoder = encoderFor(topic);
  const producer = await connectedProducer();
  let avroBytes = 0;
  try {
    let batch: { key: string; value: Buffer }[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (batch.length > 0) await producer.send({ topic, acks: -1, messages: batch });
      batch = [];
      batchBytes = 0;
    };
    for (let i = 0; i < n; i++) {
      const snapshot = snapshotAt(i, links);
      const value = await encoder.encode(snapshot);
      if (batchBytes + value.length > 900_000 || batch.length >= 500) await flush();
      batch.push({ key: String(snapshot.last_modified), value });
      batchBytes += value.length;
      avroBytes += value.length;
    }
    await flush();
  } finally {
    await producer.disconnect();
  }
  return { avroBytes };
}

export async function topicEnds(admin: Admin, topic: string): Promise<Ends> {
  return Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [String(p.partition), p.high]));
}

export function recordCount(ends: Ends): number {
  return Object.values(ends).reduce((sum, high) => sum + Number(high), 0);
}

/** Whether the group's committed offset is the end offset on every non-empty partition. */
export async function committedAll(admin: Admin, group: string, topic: string, ends: Ends): Promise<boolean> {
  const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  const committed = new Map((offsets?.partitions ?? []).map((p) => [String(p.partition), p.offset]));
  return Object.entries(ends).every(([partition, high]) => high === '0' || committed.get(partition) === high);
}

export async function deleteGroup(admin: Admin, group: string): Promise<void> {
  await admin.deleteGroups([group]).catch(() => undefined);
}
