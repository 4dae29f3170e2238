/**
 * LatestPointer's request economy and its compare-and-swap, against an in-memory store behind the
 * SDK's request handler (conditional writes as S3 does them). The real store: test/integration/archive.test.ts.
 */
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { LatestPointer, type PointerEntry } from '../../../src/archive/latest-pointer.ts';
import { S3RejectedError, S3UnavailableError } from '../../../src/errors.ts';
import { fakeS3Client, reply, type SentRequest } from '../../support/fake-s3.ts';
import { rejectionOf } from '../../support/thrown.ts';

function fakeStore(fail?: (r: SentRequest) => number | undefined) {
  const objects = new Map<string, { body: Buffer; etag: string }>();
  const requests: string[] = [];
  const client = fakeS3Client(async (r: SentRequest) => {
    const h = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
    requests.push(`${r.method} ${h['if-match'] === undefined ? '' : 'if-match'}${h['if-none-match'] === undefined ? '' : 'if-none-match'}`.trim());
    const injected = fail?.(r);
    if (injected !== undefined) return reply(injected);
    const stored = objects.get(r.path);
    if (r.method === 'GET') return stored === undefined ? reply(404) : reply(200, { etag: stored.etag }, stored.body);
    if (h['if-none-match'] === '*' && stored !== undefined) return reply(412);
    if (h['if-match'] !== undefined && h['if-match'] !== stored?.etag) return reply(stored === undefined ? 404 : 412);
    const body = Buffer.from(r.body as Uint8Array);
    const etag = `"${createHash('md5').update(body).digest('hex')}"`;
    objects.set(r.path, { body, etag });
    return reply(200, { etag });
  });
  const stored = () => {
    const o = objects.get('/tow-and-go/p/latest.json');
    return o === undefined ? undefined : (JSON.parse(o.body.toString('utf8')) as PointerEntry);
  };
  return { client, requests, stored };
}

function entry(lastModified: number): PointerEntry {
  return {
    key: `p/${lastModified}.json`,
    last_modified: lastModified,
    content_sha256: createHash('sha256').update(String(lastModified)).digest('hex'),
    links: 1,
    source: { topic: 't', partition: 0, offset: String(lastModified) },
  };
}

const location = { bucket: 'tow-and-go', prefix: 'p/' };

describe('LatestPointer', () => {
  it('costs a read and a create first, then one PUT per advance, and nothing for an entry at or below the cache', async () => {
    const { client, requests, stored } = fakeStore();
    const pointer = new LatestPointer(client, location);
    await expect(pointer.advance(entry(100))).resolves.toBe('advanced');
    expect(requests).toEqual(['GET', 'PUT if-none-match']);
    await expect(pointer.advance(entry(200))).resolves.toBe('advanced');
    expect(requests.slice(2)).toEqual(['PUT if-match']);
    await expect(pointer.advance(entry(200))).resolves.toBe('behind');
    await expect(pointer.advance(entry(150))).resolves.toBe('behind');
    expect(requests).toHaveLength(3);
    expect(stored()).toEqual(entry(200));
    expect(pointer.cached).toEqual(entry(200));
  });

  it('runs one advance at a time and coalesces the waiting ones to their maximum', async () => {
    const { client, requests, stored } = fakeStore();
    const pointer = new LatestPointer(client, location);
    const outcomes = await Promise.all([5, 9, 3, 7, 8, 2].map((n) => pointer.advance(entry(n))));
    expect(outcomes.every((o) => o === 'advanced')).toBe(true);
    // The first (5) alone, then one advance to 9 for the five that queued behind it.
    expect(requests).toEqual(['GET', 'PUT if-none-match', 'PUT if-match']);
    expect(stored()?.last_modified).toBe(9);
  });

  it('re-reads on 412 and never moves the pointer back past another writer', async () => {
    const { client, requests, stored } = fakeStore();
    const mine = new LatestPointer(client, location);
    const other = new LatestPointer(client, location);
    await mine.advance(entry(100));
    await other.advance(entry(300));
    requests.length = 0;
    // The cache says 100 with an old ETag: the PUT loses, the read shows 300, 200 is behind it.
    await expect(mine.advance(entry(200))).resolves.toBe('behind');
    expect(requests).toEqual(['PUT if-match', 'GET']);
    expect(stored()?.last_modified).toBe(300);
    await expect(mine.advance(entry(400))).resolves.toBe('advanced');
    expect(stored()?.last_modified).toBe(400);
  });

  it('replaces a pointer that is not a pointer document, and read() reports it', async () => {
    const { client } = fakeStore();
    await client.send(new PutObjectCommand({ Bucket: 'tow-and-go', Key: 'p/latest.json', Body: 'garbage' }));
    const pointer = new LatestPointer(client, location);
    expect((await rejectionOf(pointer.read())) as Error).toMatchObject({ code: 'OBJECT_CORRUPT', retryable: false });
    await expect(pointer.advance(entry(1))).resolves.toBe('advanced');
    await expect(pointer.read()).resolves.toEqual(entry(1));
  });

  it.each([
    [503, S3UnavailableError],
    [403, S3RejectedError],
  ])('maps HTTP %i through classifyS3Error to the waiting callers', async (status, kind) => {
    const { client } = fakeStore(() => status);
    const pointer = new LatestPointer(client, location);
    const errors = await Promise.all([rejectionOf(pointer.advance(entry(1))), rejectionOf(pointer.advance(entry(2)))]);
    for (const e of errors) {
      expect(e).toBeInstanceOf(kind);
      expect((e as S3UnavailableError).retryable).toBe(true);
      expect((e as Error).message).toContain('s3://tow-and-go/p/latest.json');
    }
  });
});
