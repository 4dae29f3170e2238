/**
 * Captures codec-vectors.json: for each codec, one record batch written by Kafka's Java client and
 * one by librdkafka, read back from the local broker's log. Run once with the stack up:
 *   node test/support/capture-codec-vectors.ts
 * The vectors are fixed on purpose: the unit tests must keep decoding what these clients wrote.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { BOOTSTRAP, kafkaClasspath, produceWithJava, produceWithLibrdkafka } from './clients.ts';
import { type CodecVector, VECTORS_PATH, vectorRecords } from './codec-vectors.ts';
import { readBatches } from './segments.ts';

const CODECS = ['gzip', 'snappy', 'lz4', 'zstd'] as const;
const topic = `codec-vectors-${randomBytes(3).toString('hex')}`;
const admin = new Kafka({ brokers: [BOOTSTRAP], logLevel: logLevel.NOTHING }).admin();
await admin.connect();
await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2 * CODECS.length, replicationFactor: 1 }] });

const javaVersion = /kafka-clients-([\d.]+)\.jar/.exec(kafkaClasspath())?.[1] ?? 'unknown';
const rdkafkaVersion = spawnSync('/usr/bin/python3', ['-c', 'import confluent_kafka; print(confluent_kafka.libversion()[0])'], {
  encoding: 'utf8',
}).stdout.trim();
const producers = [
  { name: `Kafka Java client ${javaVersion}`, produce: produceWithJava },
  { name: `librdkafka ${rdkafkaVersion} (python3-confluent-kafka)`, produce: produceWithLibrdkafka },
];

const vectors: CodecVector[] = [];
let partition = 0;
for (const codec of CODECS) {
  for (const producer of producers) {
    producer.produce(
      { topic, compression: codec },
      vectorRecords().map((r) => ({ ...r, partition })),
    );
    const batches = readBatches(topic, partition);
    if (batches.length !== 1) throw new Error(`${producer.name} ${codec}: expected one batch, got ${batches.length}`);
    const [batch] = batches;
    if (batch === undefined) throw new Error('unreachable');
    vectors.push({ producer: producer.name, codec, batch: batch.bytes.toString('base64') });
    partition += 1;
  }
}
await admin.deleteTopics({ topics: [topic] });
await admin.disconnect();
writeFileSync(VECTORS_PATH, `${JSON.stringify({ capturedFrom: 'the local stack broker log', vectors }, null, 2)}\n`);
process.stdout.write(`wrote ${vectors.length} vectors to ${VECTORS_PATH.pathname}\n`);
