import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ConflictError, KafkaUnavailableError, S3RejectedError, S3UnavailableError, SinkError } from '../../../src/errors.ts';
import { classifyS3Error, httpStatus, payloadHash, RETRYABLE_S3_STATUSES, S3Sink, type S3SinkSettings } from '../../../src/sink/s3.ts';
import { fakeS3Client, reply, type SentRequest } from '../../support/fake-s3.ts';

/** The shape of an AWS SDK v3 service exception: an Error with a name and $metadata. */
function serviceError(name: string, status: number | undefined): Error {
  return Object.assign(new Error(`${name} happened`), { name, $metadata: status === undefined ? {} : { httpStatusCode: status } });
}

const WHAT = 'PutObject s3://tow-and-go/tow-and-go/1.json';

describe('RETRYABLE_S3_STATUSES', () => {
  it('is exactly the statuses that may pass by themselves', () => {
    expect([...RETRYABLE_S3_STATUSES].sort((a, b) => a - b)).toEqual([408, 425, 429, 500, 502, 503, 504]);
  });
});

describe('classifyS3Error', () => {
  it.each([
    [408, 'RequestTimeout'],
    [425, 'TooEarly'],
    [429, 'TooManyRequests'],
    [500, 'InternalError'],
    [501, 'NotImplemented'],
    [502, 'BadGateway'],
    [503, 'SlowDown'],
    [504, 'GatewayTimeout'],
    [599, 'NetworkConnectTimeout'],
  ])('classifies HTTP %i (%s) as a retryable S3UnavailableError', (status, name) => {
    const cause = serviceError(name, status);
    const error = classifyS3Error(cause, WHAT);
    expect(error).toBeInstanceOf(S3UnavailableError);
    expect((error as S3UnavailableError).retryable).toBe(true);
    expect((error as S3UnavailableError).code).toBe('S3_UNAVAILABLE');
    expect(error.message).toBe(`${WHAT} failed: ${name} (HTTP ${status})`);
    expect(error.cause).toBe(cause);
  });

  it.each([
    [400, 'InvalidRequest'],
    [401, 'Unauthorized'],
    [403, 'AccessDenied'],
    [404, 'NoSuchBucket'],
    [409, 'OperationAborted'],
    [412, 'PreconditionFailed'],
    [499, 'ClientClosed'],
  ])('classifies HTTP %i (%s) as an S3RejectedError, which stalls rather than dead-letters', (status, name) => {
    const cause = serviceError(name, status);
    const error = classifyS3Error(cause, WHAT);
    expect(error).toBeInstanceOf(S3RejectedError);
    expect(error).not.toBeInstanceOf(S3UnavailableError);
    expect((error as S3RejectedError).code).toBe('S3_REJECTED');
    expect((error as S3RejectedError).retryable).toBe(true);
    expect(error.message).toBe(`${WHAT} refused: ${name} (HTTP ${status})`);
    expect(error.cause).toBe(cause);
  });

  it('classifies 403 AccessDenied as S3RejectedError', () => {
    expect(classifyS3Error(serviceError('AccessDenied', 403), WHAT)).toBeInstanceOf(S3RejectedError);
  });

  it.each([
    ['a network error without $metadata', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9000'), { code: 'ECONNREFUSED' })],
    ['a timeout abort', Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' })],
    ['an SDK error with empty $metadata', serviceError('NetworkingError', undefined)],
    ['a thrown string', 'socket hang up'],
    ['a thrown undefined', undefined],
  ])('classifies %s as a retryable S3UnavailableError', (_name, cause) => {
    const error = classifyS3Error(cause, WHAT);
    expect(error).toBeInstanceOf(S3UnavailableError);
    expect((error as S3UnavailableError).retryable).toBe(true);
    expect(error.message).toMatch(new RegExp(`^${WHAT.replace(/[.*/]/g, '\\$&')} failed: \\w+$`));
    expect(error.cause).toBe(cause);
  });

  it('names a non-Error failure UnknownError', () => {
    expect(classifyS3Error('boom', WHAT).message).toBe(`${WHAT} failed: UnknownError`);
  });

  it.each([
    ['TypeError', new TypeError('cannot read properties of undefined')],
    ['RangeError', new RangeError('invalid array length')],
  ])('passes a %s through unchanged as a bug', (_name, bug) => {
    const error = classifyS3Error(bug, WHAT);
    expect(error).toBe(bug);
    expect(error).not.toBeInstanceOf(SinkError);
  });

  it.each([
    ['ConflictError', new ConflictError('conflict')],
    ['S3RejectedError', new S3RejectedError('refused')],
    ['KafkaUnavailableError', new KafkaUnavailableError('down')],
  ])('returns an already classified %s as is', (_name, sinkError) => {
    expect(classifyS3Error(sinkError, WHAT)).toBe(sinkError);
  });
});

describe('httpStatus', () => {
  it.each([
    ['an SDK error with a status', serviceError('SlowDown', 503), 503],
    ['an SDK error without a status', serviceError('X', undefined), undefined],
    ['a non-numeric status', { $metadata: { httpStatusCode: '503' } }, undefined],
    ['null $metadata', { $metadata: null }, undefined],
    ['a plain Error', new Error('x'), undefined],
    ['null', null, undefined],
    ['a string', 'x', undefined],
  ])('reads %s as %s', (_name, error, expected) => {
    expect(httpStatus(error)).toBe(expected);
  });
});

describe('S3Sink PUT requests', () => {
  /** A real S3Client whose HTTP handler records each request and answers 200. */
  function recordingSink(): { sink: S3Sink; requests: SentRequest[] } {
    const requests: SentRequest[] = [];
    const settings: S3SinkSettings = {
      bucket: 'tow-and-go',
      endpoint: 'http://127.0.0.1:1',
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      timeoutMs: 5000,
      onConflict: 'dlq',
    };
    const client = fakeS3Client(async (request) => {
      requests.push(request);
      return reply(200);
    }, settings.region);
    return { sink: new S3Sink(client, settings), requests };
  }

  const json = Buffer.from('{"last_modified":1684216515,"tow_and_go":[{"link_id":1,"segment_id":null}]}');
  const lineage = { topic: 't', partition: 0, offset: '0', schemaId: 1 };

  it.each([
    ['plain JSON', json, undefined],
    ['a gzip body', gzipSync(json), 'gzip' as const],
  ])('signs %s with the SHA-256 of the uploaded bytes and sends no Content-MD5', async (_name, body, contentEncoding) => {
    const { sink, requests } = recordingSink();
    const object = {
      key: 'k.json',
      body,
      sha256: createHash('sha256').update(json).digest('hex'),
      snapshot: { lastModified: 1_700_000_000, links: 1 },
      lineage,
      ...(contentEncoding === undefined ? {} : { contentEncoding }),
    };
    await expect(sink.write(object)).resolves.toBe('created');
    const [put] = requests;
    expect(put?.method).toBe('PUT');
    expect(put?.headers['x-amz-content-sha256']).toBe(createHash('sha256').update(body).digest('hex'));
    expect(payloadHash(object)).toBe(createHash('sha256').update(body).digest('hex'));
    expect(Object.keys(put?.headers ?? {}).map((h) => h.toLowerCase())).not.toContain('content-md5');
    expect(put?.headers.authorization).toContain('x-amz-content-sha256');
    expect(put?.headers['x-amz-meta-content-sha256']).toBe(object.sha256);
  });

  it('takes the payload hash from the object instead of hashing the body again', async () => {
    const { sink, requests } = recordingSink();
    const given = 'ab'.repeat(32);
    await sink.write({ key: 'k.json', body: json, sha256: given, snapshot: { lastModified: 1_700_000_000, links: 1 }, lineage });
    expect(requests[0]?.headers['x-amz-content-sha256']).toBe(given);
  });
});
