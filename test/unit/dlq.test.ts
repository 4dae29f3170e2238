import { createHash, randomBytes } from 'node:crypto';
import {
  CompressionTypes,
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  type ProducerRecord,
} from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  classifyProduceFailure,
  DLQ_ENVELOPE_HEADER,
  DLQ_HEADER,
  deadLetterHeaders,
  deadLetterRecord,
  errorHeaders,
  KafkaDeadLetterQueue,
  type ProduceFailure,
  type SourceRecord,
} from '../../src/dlq.ts';
import { DecodeError, KafkaUnavailableError, ValidationError } from '../../src/errors.ts';
import {
  batchSize,
  createErrorFromCode,
  DEFAULT_MAX_MESSAGE_BYTES,
  INVALID_RECORD,
  MESSAGE_TOO_LARGE,
  metadataFailure,
  NOT_ENOUGH_REPLICAS,
  NOT_LEADER_FOR_PARTITION,
  produceFailure,
  RECORD_LIST_TOO_LARGE,
  sendFailure,
  TOPIC_AUTHORIZATION_FAILED,
  UNKNOWN_TOPIC_OR_PARTITION,
} from '../support/kafkajs-wire.ts';
import { rejectionOf } from '../support/thrown.ts';

const FAILED_AT = new Date('2024-05-06T07:08:09.010Z');

function record(headers: SourceRecord['headers']): SourceRecord {
  return {
    topic: 'tow-and-go.updates',
    partition: 3,
    offset: '12345',
    timestamp: '1714979289010',
    key: Buffer.from('1700000000'),
    value: Buffer.from([0, 0, 0, 0, 1, 2]),
    headers,
  };
}

describe('deadLetterHeaders', () => {
  const error = new DecodeError('AVRO_DECODE_FAILED', 'Avro body does not match writer schema 42', 42);

  it('keeps every original header with its value untouched', () => {
    const traceparent = Buffer.from('00-abc-def-01');
    const original = { traceparent, 'x-source': 'feed-a', multi: ['a', 'b'] };
    const headers = deadLetterHeaders(record(original), error, 42, FAILED_AT);
    expect(headers.traceparent).toBe(traceparent);
    expect(headers['x-source']).toBe('feed-a');
    expect(headers.multi).toEqual(['a', 'b']);
  });

  it('does not modify the headers of the source record', () => {
    const original = { a: '1' };
    deadLetterHeaders(record(original), error, 42, FAILED_AT);
    expect(original).toEqual({ a: '1' });
  });

  it('adds every __connect.errors.* and __tow_and_go.errors.* header', () => {
    const headers = deadLetterHeaders(record({ a: '1' }), error, 42, FAILED_AT);
    expect(headers).toEqual({
      a: '1',
      '__connect.errors.topic': 'tow-and-go.updates',
      '__connect.errors.partition': '3',
      '__connect.errors.offset': '12345',
      '__connect.errors.timestamp': '1714979289010',
      '__connect.errors.exception.class.name': 'DecodeError',
      '__connect.errors.exception.message': 'Avro body does not match writer schema 42',
      '__tow_and_go.errors.code': 'AVRO_DECODE_FAILED',
      '__tow_and_go.errors.schema_id': '42',
      '__tow_and_go.errors.failed_at': '2024-05-06T07:08:09.010Z',
    });
  });

  it('sets a header for every name in DLQ_HEADER when the schema id is known', () => {
    const headers = deadLetterHeaders(record(undefined), error, 42, FAILED_AT);
    for (const name of Object.values(DLQ_HEADER)) expect(headers[name], name).toEqual(expect.any(String));
  });

  it('works on a record without headers', () => {
    const headers = deadLetterHeaders(record(undefined), new ValidationError('invalid snapshot: last_modified: x'), 7, FAILED_AT);
    expect(headers[DLQ_HEADER.code]).toBe('VALIDATION_FAILED');
    expect(headers[DLQ_HEADER.errorClass]).toBe('ValidationError');
    expect(Object.keys(headers)).toHaveLength(Object.keys(DLQ_HEADER).length);
  });

  it('leaves the schema id header out when the schema id is unknown', () => {
    const headers = deadLetterHeaders(record({}), new DecodeError('PAYLOAD_NULL', 'record value is null (tombstone)'), undefined, FAILED_AT);
    expect(headers).not.toHaveProperty(DLQ_HEADER.schemaId);
    expect(headers[DLQ_HEADER.code]).toBe('PAYLOAD_NULL');
  });

  it('puts all header values in as strings or the original buffers (Kafka header types)', () => {
    const headers = deadLetterHeaders(record({ b: Buffer.from('x') }), error, 0, FAILED_AT);
    for (const [name, value] of Object.entries(headers)) {
      expect(typeof value === 'string' || Buffer.isBuffer(value), name).toBe(true);
    }
    expect(headers[DLQ_HEADER.schemaId]).toBe('0');
  });
});

const MIB = 1024 * 1024;
/** sha256("abc"), the FIPS 180-2 test vector: the hash header is checked against a value not computed by the code under test. */
const SHA256_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

function sourceRecord(parts: Partial<Pick<SourceRecord, 'key' | 'value' | 'headers'>> = {}): SourceRecord {
  return { ...record({ 'x-source': 'feed-a' }), ...parts };
}

describe('errorHeaders', () => {
  it('holds only the error headers, none of the record', () => {
    const headers = errorHeaders(record({ a: '1' }), new ValidationError('bad'), 7, FAILED_AT);
    expect(headers).not.toHaveProperty('a');
    expect(Object.keys(headers).sort()).toEqual(Object.values(DLQ_HEADER).sort());
  });
});

describe('deadLetterRecord', () => {
  const extra = errorHeaders(record(undefined), new DecodeError('PAYLOAD_TOO_LARGE', 'too large'), undefined, FAILED_AT);

  it('omitting nothing is the original key, value and headers with the error headers added', () => {
    const r = sourceRecord({ value: Buffer.from('abc') });
    const out = deadLetterRecord(r, extra, 'nothing');
    expect(out.key).toBe(r.key);
    expect(out.value).toBe(r.value);
    expect(out.headers).toEqual({ 'x-source': 'feed-a', ...extra });
  });

  it('omitting the value keeps key and headers, empties the value and adds its size and SHA-256', () => {
    const r = sourceRecord({ value: Buffer.from('abc') });
    const out = deadLetterRecord(r, extra, 'value');
    expect(out.key).toBe(r.key);
    // Empty, not null: null is a tombstone on a compacted topic.
    expect(out.value).toEqual(Buffer.alloc(0));
    expect(out.headers).toEqual({
      'x-source': 'feed-a',
      ...extra,
      '__tow_and_go.errors.value_omitted': 'true',
      '__tow_and_go.errors.original_size': '3',
      '__tow_and_go.errors.original_sha256': SHA256_ABC,
    });
  });

  it('omitting the value of a null record says so without a size or hash', () => {
    const out = deadLetterRecord(sourceRecord({ value: null }), extra, 'value');
    expect(out.headers[DLQ_ENVELOPE_HEADER.valueOmitted]).toBe('true');
    expect(out.headers).not.toHaveProperty(DLQ_ENVELOPE_HEADER.originalSize);
    expect(out.headers).not.toHaveProperty(DLQ_ENVELOPE_HEADER.originalSha256);
  });

  it('omitting the headers drops the original headers but keeps the error headers, the key and their size', () => {
    const r = sourceRecord({ value: Buffer.from('abc'), headers: { ab: 'cde', multi: [Buffer.from('xy'), 'z'] } });
    const out = deadLetterRecord(r, extra, 'headers');
    expect(out.key).toBe(r.key);
    expect(out.headers).not.toHaveProperty('ab');
    expect(out.headers).not.toHaveProperty('multi');
    expect(out.headers).toMatchObject(extra);
    expect(out.headers[DLQ_ENVELOPE_HEADER.headersOmitted]).toBe('true');
    // ab+cde = 5, multi+xy = 7, multi+z = 6: one header per array element, as Kafka stores them.
    expect(out.headers[DLQ_ENVELOPE_HEADER.originalHeadersSize]).toBe('18');
    expect(out.headers[DLQ_ENVELOPE_HEADER.originalSha256]).toBe(SHA256_ABC);
    expect(out.headers).not.toHaveProperty(DLQ_ENVELOPE_HEADER.keyOmitted);
  });

  it('omitting the key as well leaves a null key and its size', () => {
    const out = deadLetterRecord(sourceRecord({ key: Buffer.from('12345') }), extra, 'key');
    expect(out.key).toBeNull();
    expect(out.value).toEqual(Buffer.alloc(0));
    expect(out.headers).toMatchObject({
      ...extra,
      '__tow_and_go.errors.value_omitted': 'true',
      '__tow_and_go.errors.headers_omitted': 'true',
      '__tow_and_go.errors.key_omitted': 'true',
      '__tow_and_go.errors.original_key_size': '5',
    });
    expect(out.headers).not.toHaveProperty('x-source');
  });

  it('error headers win over original headers of the same name (a record re-published from a DLQ)', () => {
    const out = deadLetterRecord(sourceRecord({ headers: { [DLQ_HEADER.code]: 'OLD' } }), extra, 'value');
    expect(out.headers[DLQ_HEADER.code]).toBe('PAYLOAD_TOO_LARGE');
  });
});

describe('classifyProduceFailure (errors as kafkajs 2.2.4 throws them)', () => {
  const cases: Array<[string, () => Promise<unknown>, ProduceFailure]> = [
    ['MESSAGE_TOO_LARGE in the produce response', () => produceFailure(MESSAGE_TOO_LARGE), 'too_large'],
    ['RECORD_LIST_TOO_LARGE in the produce response', () => produceFailure(RECORD_LIST_TOO_LARGE), 'too_large'],
    ['NOT_ENOUGH_REPLICAS, retried then given up', () => produceFailure(NOT_ENOUGH_REPLICAS), 'retriable'],
    ['NOT_LEADER_FOR_PARTITION, retried then given up', () => produceFailure(NOT_LEADER_FOR_PARTITION), 'retriable'],
    ['a refused connection, retried then given up', () => sendFailure(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED')), 'retriable'],
    [
      'UNKNOWN_TOPIC_OR_PARTITION in topic metadata, retried then given up',
      () => metadataFailure(createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION)),
      'retriable',
    ],
    ['TOPIC_AUTHORIZATION_FAILED in topic metadata', () => metadataFailure(createErrorFromCode(TOPIC_AUTHORIZATION_FAILED)), 'refused'],
    ['INVALID_RECORD in the produce response', () => produceFailure(INVALID_RECORD), 'refused'],
    ['a TypeError inside kafkajs', () => metadataFailure(new TypeError("Cannot read properties of undefined (reading 'x')")), 'bug'],
  ];

  it.each(cases)('%s is %s', async (_name, failure, expected) => {
    expect(classifyProduceFailure(await failure())).toBe(expected);
  });

  it('an error without a retriable flag is retriable, as kafkajs retries it', () => {
    expect(classifyProduceFailure(new Error('Aborted'))).toBe('retriable');
  });

  it('the fakes wrap as the real broker showed: too large bare, unknown topic inside KafkaJSNumberOfRetriesExceeded', async () => {
    const tooLarge = await produceFailure(MESSAGE_TOO_LARGE);
    expect(tooLarge).toBeInstanceOf(KafkaJSProtocolError);
    expect(tooLarge).toMatchObject({ type: 'MESSAGE_TOO_LARGE', retriable: false, cause: undefined });
    const unknown = await metadataFailure(createErrorFromCode(UNKNOWN_TOPIC_OR_PARTITION));
    expect(unknown).toBeInstanceOf(KafkaJSNumberOfRetriesExceeded);
    expect(unknown).toMatchObject({ retriable: false, cause: { type: 'UNKNOWN_TOPIC_OR_PARTITION', retriable: true } });
    const denied = await metadataFailure(createErrorFromCode(TOPIC_AUTHORIZATION_FAILED));
    expect(denied).toBeInstanceOf(KafkaJSNonRetriableError);
    expect(denied).not.toBeInstanceOf(KafkaJSNumberOfRetriesExceeded);
  });
});

/**
 * A producer that answers as the local broker does: it measures the batch kafkajs would send (its
 * own encoder, with the requested compression) and refuses one over `limit` with kafkajs'
 * MESSAGE_TOO_LARGE; `fail` replaces the answer with another kafkajs failure.
 */
class FakeBroker {
  readonly sent: ProducerRecord[] = [];
  readonly refused: number[] = [];

  readonly limit: number;
  readonly fail: (() => Promise<unknown>) | undefined;

  constructor(limit = DEFAULT_MAX_MESSAGE_BYTES, fail?: () => Promise<unknown>) {
    this.limit = limit;
    this.fail = fail;
  }

  readonly send = async (request: ProducerRecord) => {
    this.sent.push(request);
    if (this.fail !== undefined) throw await this.fail();
    const [message] = request.messages;
    if (message === undefined || request.messages.length !== 1) throw new Error('the DLQ sends one record at a time');
    const size = await batchSize(
      { key: toBuffer(message.key), value: toBuffer(message.value), headers: message.headers },
      request.compression ?? CompressionTypes.None,
    );
    if (size > this.limit) {
      this.refused.push(this.sent.length - 1);
      throw await produceFailure(MESSAGE_TOO_LARGE);
    }
    return [{ topicName: request.topic, partition: 0, errorCode: 0, baseOffset: String(this.sent.length - 1) }];
  };

  last(): { key: Buffer | string | null | undefined; value: Buffer | string | null; headers: Record<string, unknown> } {
    const message = this.sent.at(-1)?.messages[0];
    if (message === undefined) throw new Error('nothing sent');
    return { key: message.key, value: message.value, headers: message.headers ?? {} };
  }
}

function toBuffer(value: Buffer | string | null | undefined): Buffer | null {
  return value === null || value === undefined ? null : Buffer.from(value);
}

const tooLarge = new DecodeError('PAYLOAD_TOO_LARGE', 'record value is 1572864 bytes, over MAX_PAYLOAD_BYTES 1048576');

describe('KafkaDeadLetterQueue', () => {
  it('sends a small record once, whole, gzipped, with acks from all replicas', async () => {
    const broker = new FakeBroker();
    const r = sourceRecord();
    await new KafkaDeadLetterQueue(broker, 'the.dlq').send(r, tooLarge, 42);
    expect(broker.sent).toHaveLength(1);
    expect(broker.sent[0]).toMatchObject({ topic: 'the.dlq', acks: -1, compression: CompressionTypes.GZIP });
    expect(broker.last().key).toBe(r.key);
    expect(broker.last().value).toBe(r.value);
    expect(broker.last().headers).toMatchObject({ 'x-source': 'feed-a', [DLQ_HEADER.code]: 'PAYLOAD_TOO_LARGE', [DLQ_HEADER.schemaId]: '42' });
  });

  it('without a known limit, an incompressible 1.5 MiB value is refused once, then lands as an envelope', async () => {
    const broker = new FakeBroker();
    const value = randomBytes(1.5 * MIB);
    const r = sourceRecord({ value });
    await new KafkaDeadLetterQueue(broker, 'the.dlq').send(r, tooLarge, undefined);
    expect(broker.sent).toHaveLength(2);
    expect(broker.refused).toEqual([0]);
    expect(broker.sent[0]?.messages[0]?.value).toBe(value);
    const envelope = broker.last();
    expect(envelope.key).toBe(r.key);
    expect(envelope.value).toEqual(Buffer.alloc(0));
    expect(envelope.headers).toMatchObject({
      'x-source': 'feed-a',
      [DLQ_HEADER.offset]: '12345',
      [DLQ_HEADER.code]: 'PAYLOAD_TOO_LARGE',
      [DLQ_ENVELOPE_HEADER.valueOmitted]: 'true',
      [DLQ_ENVELOPE_HEADER.originalSize]: String(1.5 * MIB),
      [DLQ_ENVELOPE_HEADER.originalSha256]: createHash('sha256').update(value).digest('hex'),
    });
  });

  it('with the limit known, an incompressible 1.5 MiB value goes straight to the envelope (no doomed round trip)', async () => {
    const broker = new FakeBroker();
    await new KafkaDeadLetterQueue(broker, 'the.dlq', { maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES }).send(
      sourceRecord({ value: randomBytes(1.5 * MIB) }),
      tooLarge,
      1,
    );
    expect(broker.sent).toHaveLength(1);
    expect(broker.refused).toEqual([]);
    expect(broker.last().headers[DLQ_ENVELOPE_HEADER.valueOmitted]).toBe('true');
  });

  it('with the limit known, a compressible 1.5 MiB value is sent whole: gzip makes it fit', async () => {
    const broker = new FakeBroker();
    const value = Buffer.alloc(1.5 * MIB, 'tow-and-go ');
    await new KafkaDeadLetterQueue(broker, 'the.dlq', { maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES }).send(sourceRecord({ value }), tooLarge, 1);
    expect(broker.sent).toHaveLength(1);
    expect(broker.refused).toEqual([]);
    expect(broker.last().value).toBe(value);
    expect(broker.last().headers).not.toHaveProperty(DLQ_ENVELOPE_HEADER.valueOmitted);
  });

  it('with the limit known, a value just under it is still tried whole (the estimate errs small) and lands', async () => {
    const broker = new FakeBroker();
    const value = randomBytes(DEFAULT_MAX_MESSAGE_BYTES - 2048);
    await new KafkaDeadLetterQueue(broker, 'the.dlq', { maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES }).send(sourceRecord({ value }), tooLarge, 1);
    expect(broker.sent).toHaveLength(1);
    expect(broker.last().value).toBe(value);
  });

  it.each([
    ['unknown', undefined, 3],
    ['known', DEFAULT_MAX_MESSAGE_BYTES, 1],
  ])('huge original headers (limit %s) are dropped too, keeping the error headers, in %i send(s)', async (_name, maxMessageBytes, sends) => {
    const broker = new FakeBroker();
    await new KafkaDeadLetterQueue(broker, 'the.dlq', { maxMessageBytes }).send(sourceRecord({ headers: { blob: randomBytes(1.5 * MIB) } }), tooLarge, 1);
    expect(broker.sent).toHaveLength(sends);
    const envelope = broker.last();
    expect(envelope.headers).not.toHaveProperty('blob');
    expect(envelope.headers).toMatchObject({
      [DLQ_HEADER.code]: 'PAYLOAD_TOO_LARGE',
      [DLQ_ENVELOPE_HEADER.headersOmitted]: 'true',
      [DLQ_ENVELOPE_HEADER.originalHeadersSize]: String(4 + 1.5 * MIB),
    });
    expect(envelope.key).toEqual(Buffer.from('1700000000'));
  });

  it('a huge key is dropped last, with its size', async () => {
    const broker = new FakeBroker();
    await new KafkaDeadLetterQueue(broker, 'the.dlq').send(sourceRecord({ key: randomBytes(1.5 * MIB) }), tooLarge, 1);
    expect(broker.sent).toHaveLength(4);
    expect(broker.last().key).toBeNull();
    expect(broker.last().headers[DLQ_ENVELOPE_HEADER.originalKeySize]).toBe(String(1.5 * MIB));
  });

  it('when even the smallest envelope is refused, it stalls (retryable) and says to raise max.message.bytes', async () => {
    const broker = new FakeBroker(100);
    const error = await rejectionOf(new KafkaDeadLetterQueue(broker, 'the.dlq').send(sourceRecord(), tooLarge, 1));
    expect(broker.sent).toHaveLength(4);
    expect(error).toBeInstanceOf(KafkaUnavailableError);
    expect(error).toMatchObject({ retryable: true, code: 'KAFKA_UNAVAILABLE' });
    expect((error as Error).message).toBe(
      'dead-letter topic the.dlq refused even an envelope without value, headers or key (MESSAGE_TOO_LARGE: The request included a message larger than the max message size the server will accept); raise its max.message.bytes',
    );
  });

  it('a retriable failure stalls (retryable) without trying an envelope', async () => {
    const broker = new FakeBroker(DEFAULT_MAX_MESSAGE_BYTES, () => produceFailure(NOT_ENOUGH_REPLICAS));
    const error = await rejectionOf(new KafkaDeadLetterQueue(broker, 'the.dlq').send(sourceRecord(), tooLarge, 1));
    expect(broker.sent).toHaveLength(1);
    expect(error).toBeInstanceOf(KafkaUnavailableError);
    expect(error).toMatchObject({ retryable: true, cause: expect.any(KafkaJSNumberOfRetriesExceeded) });
    expect((error as Error).message).toMatch(/^could not produce to dead-letter topic the\.dlq \(NOT_ENOUGH_REPLICAS: /);
  });

  it('a refusal only an operator can fix stalls (retryable), never crashes, never sends an envelope', async () => {
    const broker = new FakeBroker(DEFAULT_MAX_MESSAGE_BYTES, () => metadataFailure(createErrorFromCode(TOPIC_AUTHORIZATION_FAILED)));
    const error = await rejectionOf(new KafkaDeadLetterQueue(broker, 'the.dlq').send(sourceRecord(), tooLarge, 1));
    expect(broker.sent).toHaveLength(1);
    expect(error).toBeInstanceOf(KafkaUnavailableError);
    expect(error).toMatchObject({ retryable: true });
    expect((error as Error).message).toMatch(/^dead-letter topic the\.dlq refused the record \(TOPIC_AUTHORIZATION_FAILED: .*\); it will until an operator/);
  });

  it('a bug inside kafkajs is rethrown as it is, for the pipeline to treat as fatal', async () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
    const broker = new FakeBroker(DEFAULT_MAX_MESSAGE_BYTES, () => metadataFailure(bug));
    const error = await rejectionOf(new KafkaDeadLetterQueue(broker, 'the.dlq').send(sourceRecord(), tooLarge, 1));
    expect(error).toBeInstanceOf(KafkaJSNonRetriableError);
    expect((error as Error).cause).toBe(bug);
  });
});
