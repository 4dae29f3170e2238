import avro from 'avsc';
import type { Message, ProducerRecord, RecordMetadata } from 'kafkajs';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { KafkaUnavailableError } from '../../../src/errors.ts';
import type { LandedCopy } from '../../../src/sink/destinations.ts';
import type { SnapshotObject } from '../../../src/sink/s3.ts';
import { loadUploadedSchema, UploadedNotifier, type UploadedRecord } from '../../../src/sink/uploaded-notifier.ts';

const type = avro.Type.forSchema(JSON.parse(loadUploadedSchema()) as avro.Schema);
const encoder = { encode: async (value: UploadedRecord) => type.toBuffer(value) };

const object: SnapshotObject = {
  key: 'a/1700000000.json',
  body: Buffer.from('{}'),
  sha256: 'ab'.repeat(32),
  snapshot: { lastModified: 1_700_000_000, links: 42 },
  lineage: { topic: 'tow-and-go.updates', partition: 2, offset: '9007199254740', schemaId: 3 },
};
const copies: LandedCopy[] = [
  { destination: 'primary', bucket: 'b1', key: 'a/1700000000.json', outcome: 'created', etag: '"e1"', bytes: 2 },
  { destination: 'mirror', bucket: 'b2', key: 'm/1700000000.json', outcome: 'unchanged', etag: undefined, bytes: 30 },
];

/** What kafkajs' producer.send does: resolves RecordMetadata per partition, or rejects with a KafkaJS error. */
class Producer {
  readonly sent: ProducerRecord[] = [];
  failWith: Error | undefined;
  async send(record: ProducerRecord): Promise<RecordMetadata[]> {
    if (this.failWith !== undefined) throw this.failWith;
    this.sent.push(record);
    return [{ topicName: record.topic, partition: 0, errorCode: 0, baseOffset: '0' }];
  }
}

describe('UploadedNotifier', () => {
  it('sends one schema-valid record per destination copy, keyed by last_modified, acks=all', async () => {
    const producer = new Producer();
    const notifier = new UploadedNotifier(producer, encoder, 'tow-and-go.uploaded', new Map([['mirror', 'gzip']]));
    await notifier.afterLanding(object, copies);
    expect(producer.sent).toHaveLength(1);
    const [sent] = producer.sent;
    expect(sent?.topic).toBe('tow-and-go.uploaded');
    expect(sent?.acks).toBe(-1);
    const messages = sent?.messages as Message[];
    expect(messages.map((m) => m.key)).toEqual(['1700000000', '1700000000']);
    expect(messages.map((m) => type.fromBuffer(m.value as Buffer))).toEqual([
      {
        destination: 'primary',
        bucket: 'b1',
        key: 'a/1700000000.json',
        last_modified: 1_700_000_000,
        links: 42,
        bytes: 2,
        content_encoding: null,
        etag: '"e1"',
        content_sha256: object.sha256,
        outcome: 'created',
        source_topic: 'tow-and-go.updates',
        source_partition: 2,
        source_offset: 9007199254740,
      },
      expect.objectContaining({
        destination: 'mirror',
        bucket: 'b2',
        key: 'm/1700000000.json',
        content_encoding: 'gzip',
        etag: null,
        outcome: 'unchanged',
        bytes: 30,
      }),
    ]);
  });

  it('a broker failure is retryable (the record stays uncommitted and is announced when the broker is back)', async () => {
    const producer = new Producer();
    producer.failWith = new kafkajs.KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092');
    const failure = await new UploadedNotifier(producer, encoder, 'u', new Map()).afterLanding(object, copies).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(KafkaUnavailableError);
    expect((failure as KafkaUnavailableError).retryable).toBe(true);
    expect((failure as Error).message).toContain('could not announce 1700000000 on u');
  });

  it('a bug is not hidden as an outage', async () => {
    const producer = new Producer();
    producer.failWith = new TypeError('bug');
    await expect(new UploadedNotifier(producer, encoder, 'u', new Map()).afterLanding(object, copies)).rejects.toBeInstanceOf(TypeError);
  });
});
