import { describe, expect, it } from 'vitest';
import { DLQ_HEADER, deadLetterHeaders, type SourceRecord } from '../../src/dlq.ts';
import { DecodeError, ValidationError } from '../../src/errors.ts';

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
