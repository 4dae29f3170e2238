/**
 * A lease on the latest pointer, for stores whose If-Match is not atomic.
 *
 * Why: S3Proxy 4.1 (the local stack) checks If-Match and then writes, without holding anything in
 * between: 16 concurrent PUTs carrying the same ETag saw 3 to 9 of them succeed (measured). Two
 * writers could then both pass the check and land in either order, moving the pointer back. Its
 * If-None-Match: * is atomic (the filesystem backend creates the file exclusively; 1 winner of 16
 * every time), so the lease is an object created with If-None-Match: *, and only its holder writes.
 *
 * What is lost against a real atomic If-Match: a holder that stalls past the lease's TTL (a GC
 * pause, a hung request) can write after another took the lease over, and two takers of the same
 * expired lease can both hold it. Both need a crash or a stall longer than the TTL.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { S3UnavailableError } from '../errors.ts';
import { httpStatus } from '../sink/s3.ts';
import { guarded } from './s3-calls.ts';

export interface LeaseSettings {
  readonly bucket: string;
  readonly key: string;
  /** How long a lease lives; a holder that died frees it after this. */
  readonly ttlMs: number;
  /** How long to wait for a live holder before giving up (retryable). */
  readonly waitMs: number;
}

export interface Lease {
  /** Whether the lease still has at least half its life left: the pointer write must start before that. */
  fresh(): boolean;
  release(): Promise<void>;
}

export async function acquireLease(client: S3Client, s: LeaseSettings): Promise<Lease> {
  const owner = randomUUID();
  const deadline = Date.now() + s.waitMs;
  const where = `s3://${s.bucket}/${s.key}`;
  for (;;) {
    const acquiredAt = Date.now();
    const body = JSON.stringify({ owner, expires_at_ms: acquiredAt + s.ttlMs });
    const created = await guarded(`PutObject ${where}`, async () => {
      try {
        await client.send(new PutObjectCommand({ Bucket: s.bucket, Key: s.key, Body: body, ContentType: 'application/json', IfNoneMatch: '*' }));
        return true;
      } catch (error) {
        if (httpStatus(error) === 412 || httpStatus(error) === 409) return false;
        throw error;
      }
    });
    if (created) return lease(client, s, where, acquiredAt);
    const expiresAt = await heldUntil(client, s, where);
    if (expiresAt !== undefined && expiresAt < Date.now()) {
      // Its holder died (or stalled past the TTL): free it, then race for it like everyone else.
      await guarded(`DeleteObject ${where}`, () => client.send(new DeleteObjectCommand({ Bucket: s.bucket, Key: s.key })));
      continue;
    }
    if (Date.now() > deadline) throw new S3UnavailableError(`${where} is held by another writer for more than ${s.waitMs} ms`);
    await sleep(5 + Math.random() * 20);
  }
}

function lease(client: S3Client, s: LeaseSettings, where: string, acquiredAt: number): Lease {
  return {
    fresh: () => Date.now() - acquiredAt < s.ttlMs / 2,
    release: () =>
      guarded(`DeleteObject ${where}`, async () => {
        await client.send(new DeleteObjectCommand({ Bucket: s.bucket, Key: s.key }));
      }),
  };
}

/** The held lease's expiry; undefined when it is gone already. An unreadable lease counts as expired. */
async function heldUntil(client: S3Client, s: LeaseSettings, where: string): Promise<number | undefined> {
  return guarded(`GetObject ${where}`, async () => {
    try {
      const res = await client.send(new GetObjectCommand({ Bucket: s.bucket, Key: s.key }));
      const value: unknown = JSON.parse((await res.Body?.transformToString('utf8')) ?? '');
      const expires = typeof value === 'object' && value !== null && 'expires_at_ms' in value ? value.expires_at_ms : undefined;
      return typeof expires === 'number' ? expires : 0;
    } catch (error) {
      if (httpStatus(error) === 404) return undefined;
      if (error instanceof SyntaxError) return 0;
      throw error;
    }
  });
}
