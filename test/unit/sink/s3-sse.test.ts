/**
 * S3_SSE on the wire: a real S3Client whose HTTP handler records what it would send. (S3Proxy 4.1,
 * the local stack, answers 501 NotImplemented "Server-side encryption is not supported." to any PUT
 * that asks for it, so there is no integration test of a landing.)
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.ts';
import { s3Settings } from '../../../src/main.ts';
import { S3Sink, type S3SinkSettings, type ServerSideEncryption, sseFields } from '../../../src/sink/s3.ts';
import { fakeS3Client, reply, type SentRequest } from '../../support/fake-s3.ts';

/** A sink whose PUTs succeed except the first `conflicts` ones (412), and whose HEADs find a different hash. */
function recordingSink(sse: ServerSideEncryption | undefined, onConflict: 'dlq' | 'overwrite' = 'dlq', conflicts = 0) {
  const requests: SentRequest[] = [];
  const settings: S3SinkSettings = {
    bucket: 'tow-and-go',
    endpoint: 'http://127.0.0.1:1',
    region: 'eu-west-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    timeoutMs: 5000,
    onConflict,
    sse,
  };
  let refused = 0;
  const client = fakeS3Client(async (request) => {
    requests.push(request);
    if (request.method === 'PUT' && refused < conflicts) {
      refused += 1;
      return reply(412);
    }
    return reply(200, request.method === 'HEAD' ? { 'x-amz-meta-content-sha256': 'another-hash' } : {});
  }, settings.region);
  return { sink: new S3Sink(client, settings), requests };
}

const object = {
  key: 'tow-and-go/1684216515.json',
  body: Buffer.from('{}'),
  sha256: '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  snapshot: { lastModified: 1_700_000_000, links: 1 },
  lineage: { topic: 't', partition: 0, offset: '0', schemaId: 1 },
};

const KEY_ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('S3_SSE on every PUT', () => {
  it('sends no encryption header by default (the bucket default applies)', async () => {
    const { sink, requests } = recordingSink(undefined);
    await sink.write(object);
    expect(Object.keys(requests[0]?.headers ?? {}).filter((h) => h.startsWith('x-amz-server-side-encryption'))).toEqual([]);
  });

  it('AES256: x-amz-server-side-encryption: AES256, signed', async () => {
    const { sink, requests } = recordingSink({ kind: 'AES256' });
    await sink.write(object);
    const put = requests[0];
    expect(put?.headers['x-amz-server-side-encryption']).toBe('AES256');
    expect(put?.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBeUndefined();
    expect(put?.headers.authorization).toContain('x-amz-server-side-encryption');
  });

  it('aws:kms: the algorithm and the key id', async () => {
    const { sink, requests } = recordingSink({ kind: 'aws:kms', kmsKeyId: KEY_ARN });
    await sink.write(object);
    expect(requests[0]?.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    expect(requests[0]?.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe(KEY_ARN);
  });

  it('on the overwrite PUT too, not only the conditional one', async () => {
    const { sink, requests } = recordingSink({ kind: 'aws:kms', kmsKeyId: KEY_ARN }, 'overwrite', 1);
    await expect(sink.write(object)).resolves.toBe('overwritten');
    const puts = requests.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(2);
    expect(puts[0]?.headers['if-none-match']).toBe('*');
    expect(puts[1]?.headers['if-none-match']).toBeUndefined();
    for (const put of puts) expect(put.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe(KEY_ARN);
    // HEAD carries no SSE-S3/SSE-KMS header (S3 refuses them on reads).
    expect(requests.find((r) => r.method === 'HEAD')?.headers['x-amz-server-side-encryption']).toBeUndefined();
  });
});

describe('from the settings', () => {
  it.each([
    [{}, undefined],
    [{ S3_SSE: 'AES256' }, { kind: 'AES256' }],
    [
      { S3_SSE: 'aws:kms', S3_SSE_KMS_KEY_ID: 'alias/tow-and-go' },
      { kind: 'aws:kms', kmsKeyId: 'alias/tow-and-go' },
    ],
  ])('%j → %j', (env, sse) => {
    expect(s3Settings(loadConfig(env)).sse).toEqual(sse);
  });

  it('sseFields maps each choice onto PutObject', () => {
    expect(sseFields(undefined)).toEqual({});
    expect(sseFields({ kind: 'AES256' })).toEqual({ ServerSideEncryption: 'AES256' });
    expect(sseFields({ kind: 'aws:kms', kmsKeyId: 'k' })).toEqual({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'k' });
  });
});
