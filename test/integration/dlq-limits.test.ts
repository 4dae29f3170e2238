/**
 * The DLQ against a broker with Kafka's default limits (message.max.bytes 1048588): what kafkajs
 * really throws for a record that is too large, whether the estimates agree with the broker at the
 * boundary, and that an over-size record lands as an envelope (or, gzipped, as a full copy), read
 * back with librdkafka (python3-confluent-kafka), a client we did not write.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { CompressionTypes, KafkaJSProtocolError, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyProduceFailure, DLQ_ENVELOPE_HEADER, DLQ_HEADER, KafkaDeadLetterQueue, type SourceRecord } from '../../src/dlq.ts';
import { checkDeadLetterLimits, clearlyTooLarge, recordSizeBound } from '../../src/dlq-limits.ts';
import { DecodeError } from '../../src/errors.ts';
import { createKafka, createProducer } from '../../src/source/kafka.ts';
import { batchSize, DEFAULT_MAX_MESSAGE_BYTES } from '../support/kafkajs-wire.ts';
import { createTopics, createTopicsReady, silent, type TestEnv, testEnv, uniqueName, withAdmin } from '../support/stack.ts';
import { rejectionOf } from '../support/thrown.ts';

const MIB = 1024 * 1024;

interface ReadBack {
  readonly offset: number;
  readonly key: string | null;
  readonly valueLength: number | null;
  readonly valueSha256: string | null;
  readonly headers: Record<string, string>;
}

/** Every record of `topic`, read by librdkafka from the beginning to the end. */
function readWithLibrdkafka(topic: string): ReadBack[] {
  const script = `
import hashlib, json, sys
from confluent_kafka import Consumer, KafkaError
c = Consumer({'bootstrap.servers': '127.0.0.1:9092', 'group.id': sys.argv[2], 'auto.offset.reset': 'earliest', 'enable.partition.eof': True, 'enable.auto.commit': False})
c.subscribe([sys.argv[1]])
out = []
while True:
    m = c.poll(30)
    if m is None:
        sys.exit('timed out reading ' + sys.argv[1])
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            break
        sys.exit(str(m.error()))
    v = m.value()
    out.append({'offset': m.offset(), 'key': None if m.key() is None else m.key().decode('utf-8', 'replace'),
                'valueLength': None if v is None else len(v), 'valueSha256': None if v is None else hashlib.sha256(v).hexdigest(),
                'headers': {k: (None if h is None else h.decode('utf-8', 'replace')) for k, h in (m.headers() or [])}})
c.close()
print(json.dumps(out))
`;
  const result = spawnSync('/usr/bin/python3', ['-c', script, topic, uniqueName('dlq-reader')], { encoding: 'utf8', timeout: 90_000 });
  if (result.status !== 0) throw new Error(`python3 confluent_kafka reader failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as ReadBack[];
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('the DLQ against default broker limits', () => {
  let t: TestEnv;
  let producer: Producer;

  beforeAll(async () => {
    t = testEnv('dlq-limits');
    await createTopics(t, 1);
    producer = createProducer(createKafka(t.config, silent));
    await producer.connect();
  });

  afterAll(async () => {
    await producer?.disconnect();
  });

  function source(offset: number, value: Buffer): SourceRecord {
    return {
      topic: t.topic,
      partition: 0,
      offset: String(offset),
      timestamp: '1714979289010',
      key: Buffer.from(`key-${offset}`),
      value,
      headers: { 'x-case': `case-${offset}` },
    };
  }
  const tooLarge = new DecodeError('PAYLOAD_TOO_LARGE', 'record value is over MAX_PAYLOAD_BYTES');

  it('the startup check reads the topic limit: the default, or an override', async () => {
    const overridden = `${t.dlqTopic}.big`;
    await withAdmin((admin) =>
      createTopicsReady(admin, [
        { topic: overridden, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '5000000' }] },
      ]),
    );
    const [plain, big, missing] = await withAdmin((admin) =>
      Promise.all([
        checkDeadLetterLimits(admin, t.dlqTopic, 4 * MIB),
        checkDeadLetterLimits(admin, overridden, 4 * MIB),
        checkDeadLetterLimits(admin, `${t.dlqTopic}.missing`, 4 * MIB),
      ]),
    );
    expect(plain.maxMessageBytes).toBe(DEFAULT_MAX_MESSAGE_BYTES);
    expect(plain.level).toBe('warn');
    expect(plain.line).toMatch(new RegExp(`^DLQ topic ${t.dlqTopic} accepts 1048588 bytes per record; MAX_PAYLOAD_BYTES is 4194304: records over the limit`));
    expect(big).toMatchObject({ maxMessageBytes: 5_000_000, level: 'info' });
    expect(missing).toMatchObject({ maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, level: 'warn' });
    expect(missing.line).toMatch(/does not exist: dead-lettering stalls until it is created/);
  });

  it('kafkajs rejects an over-limit record with a bare, non-retriable MESSAGE_TOO_LARGE, which the DLQ reads as too large', async () => {
    const error = await rejectionOf(producer.send({ topic: t.dlqTopic, acks: -1, messages: [{ key: 'k', value: randomBytes(1.5 * MIB) }] }));
    expect(error).toBeInstanceOf(KafkaJSProtocolError);
    expect(error).toMatchObject({ type: 'MESSAGE_TOO_LARGE', code: 10, retriable: false, cause: undefined });
    expect(classifyProduceFailure(error)).toBe('too_large');
  });

  it("the broker's limit is kafkajs' batch size: exactly the limit lands, one byte more is refused", async () => {
    const probe = async (valueLength: number) => {
      const message = { key: Buffer.from('k'), value: randomBytes(valueLength), headers: {} };
      return { message, size: await batchSize(message, CompressionTypes.None) };
    };
    const first = await probe(DEFAULT_MAX_MESSAGE_BYTES - 200);
    const exact = await probe(first.message.value.length + DEFAULT_MAX_MESSAGE_BYTES - first.size);
    const over = await probe(exact.message.value.length + 1);
    expect([exact.size, over.size]).toEqual([DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_BYTES + 1]);
    expect(recordSizeBound(exact.message)).toBeGreaterThanOrEqual(exact.size);
    await producer.send({ topic: t.dlqTopic, acks: -1, messages: [exact.message] });
    const error = await rejectionOf(producer.send({ topic: t.dlqTopic, acks: -1, messages: [over.message] }));
    expect(classifyProduceFailure(error)).toBe('too_large');
  });

  it('a gzipped batch just under the limit lands and is not called clearly too large; one just over is refused', async () => {
    // Random bytes grow a little under gzip; walk a prefix length until the gzipped batch straddles the limit.
    const bytes = randomBytes(DEFAULT_MAX_MESSAGE_BYTES);
    const gzipped = async (length: number) => {
      const message = { key: Buffer.from('k'), value: bytes.subarray(0, length), headers: {} };
      return { message, size: await batchSize(message, CompressionTypes.GZIP) };
    };
    let under = await gzipped(DEFAULT_MAX_MESSAGE_BYTES - 2000);
    for (let i = 0; i < 50; i++) {
      const next = await gzipped(under.message.value.length + Math.max(1, DEFAULT_MAX_MESSAGE_BYTES - under.size));
      if (next.size > DEFAULT_MAX_MESSAGE_BYTES) break;
      under = next;
    }
    let over = await gzipped(under.message.value.length + 1);
    while (over.size <= DEFAULT_MAX_MESSAGE_BYTES) {
      under = over;
      over = await gzipped(over.message.value.length + 1);
    }
    expect(under.size).toBeLessThanOrEqual(DEFAULT_MAX_MESSAGE_BYTES);
    expect(DEFAULT_MAX_MESSAGE_BYTES - under.size).toBeLessThan(16);
    expect(await clearlyTooLarge(under.message, DEFAULT_MAX_MESSAGE_BYTES)).toBe(false);
    await producer.send({ topic: t.dlqTopic, acks: -1, compression: CompressionTypes.GZIP, messages: [under.message] });
    const error = await rejectionOf(producer.send({ topic: t.dlqTopic, acks: -1, compression: CompressionTypes.GZIP, messages: [over.message] }));
    expect(classifyProduceFailure(error)).toBe('too_large');
  });

  it.each([
    ['unknown', undefined],
    ['known', DEFAULT_MAX_MESSAGE_BYTES],
  ])(
    'with the limit %s, a 1.5 MiB incompressible value lands as an envelope and a 1.5 MiB compressible one as a full gzipped copy',
    async (_name, maxMessageBytes) => {
      let sends = 0;
      const counting: Pick<Producer, 'send'> = {
        send: (request) => {
          sends++;
          return producer.send(request);
        },
      };
      const dlq = new KafkaDeadLetterQueue(counting, t.dlqTopic, { maxMessageBytes });
      const offset = maxMessageBytes === undefined ? 100 : 200;
      const incompressible = randomBytes(1.5 * MIB);
      const compressible = Buffer.alloc(1.5 * MIB, `tow-and-go ${offset} `);
      await dlq.send(source(offset, incompressible), tooLarge, undefined);
      await dlq.send(source(offset + 1, compressible), tooLarge, 42);
      // Unknown limit: the copy is refused once before the envelope. Known: no doomed round trip.
      expect(sends).toBe(maxMessageBytes === undefined ? 3 : 2);

      const records = readWithLibrdkafka(t.dlqTopic);
      const envelope = records.find((r) => r.headers[DLQ_HEADER.offset] === String(offset));
      const copy = records.find((r) => r.headers[DLQ_HEADER.offset] === String(offset + 1));
      expect(envelope).toMatchObject({ key: `key-${offset}`, valueLength: 0 });
      expect(envelope?.headers).toMatchObject({
        'x-case': `case-${offset}`,
        [DLQ_HEADER.topic]: t.topic,
        [DLQ_HEADER.code]: 'PAYLOAD_TOO_LARGE',
        [DLQ_ENVELOPE_HEADER.valueOmitted]: 'true',
        [DLQ_ENVELOPE_HEADER.originalSize]: String(1.5 * MIB),
        [DLQ_ENVELOPE_HEADER.originalSha256]: sha256(incompressible),
      });
      expect(copy).toMatchObject({ key: `key-${offset + 1}`, valueLength: 1.5 * MIB, valueSha256: sha256(compressible) });
      expect(copy?.headers).toMatchObject({ 'x-case': `case-${offset + 1}`, [DLQ_HEADER.schemaId]: '42' });
      expect(copy?.headers).not.toHaveProperty(DLQ_ENVELOPE_HEADER.valueOmitted);
    },
  );
});
