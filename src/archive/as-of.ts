/**
 * Reading the archive back: which snapshot was current at time t, and its body.
 *
 * The lookup never lists the whole prefix: one HEAD for an exact hit, then listings of widening
 * windows below t (src/archive/keys.ts), each cut into digit-length classes because S3's byte order
 * is numeric order only among keys with the same number of digits.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { CorruptObjectError, InputError } from '../errors.ts';
import { classifyS3Error, httpStatus } from '../sink/s3.ts';
import { DEFAULT_PLAN, listingBounds, parseSnapshotKey, planWindows, type Range, snapshotKey, splitByDigits, type WindowPlan } from './keys.ts';
import { guarded } from './s3-calls.ts';

export interface ArchiveLocation {
  readonly bucket: string;
  /** The service's S3_PREFIX, e.g. `tow-and-go/`. */
  readonly prefix: string;
}

export interface SnapshotRef {
  readonly key: string;
  readonly lastModified: number;
}

export interface StoredSnapshot extends SnapshotRef {
  /** The canonical JSON, uncompressed. */
  readonly body: Buffer;
  /** x-amz-meta-* as stored: content-sha256, source-topic, source-partition, source-offset, schema-id. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Whether content-sha256 was present and matched (absent on objects written by other tools). */
  readonly verified: boolean;
}

/** A listing page: S3 returns at most 1,000 keys. */
const PAGE = 1000;

/**
 * The snapshot with the greatest last_modified ≤ t, or undefined when there is none at or above
 * `plan.floor` (default 946684800, the service's default MIN_LAST_MODIFIED; pass the configured
 * one). t may be fractional (an ISO time with milliseconds): it is floored.
 */
export async function findAsOf(client: S3Client, location: ArchiveLocation, t: number, plan: Partial<WindowPlan> = {}): Promise<SnapshotRef | undefined> {
  const at = Math.floor(t);
  const full: WindowPlan = { ...DEFAULT_PLAN, ...plan };
  if (at < 0) return undefined;
  // The common question "what was current at the second a snapshot was taken" costs one request.
  if (at >= full.floor && (await exists(client, location, snapshotKey(location.prefix, at)))) {
    return { key: snapshotKey(location.prefix, at), lastModified: at };
  }
  for (const window of planWindows(at, full)) {
    for (const range of splitByDigits(window)) {
      const found = await greatestIn(client, location, range);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** The greatest snapshot key within one digit class's range: one listing, paged when needed. */
async function greatestIn(client: S3Client, location: ArchiveLocation, range: Range): Promise<SnapshotRef | undefined> {
  const { startAfter, last } = listingBounds(location.prefix, range);
  let best: SnapshotRef | undefined;
  let token: string | undefined;
  for (;;) {
    const page = await guarded(`ListObjectsV2 s3://${location.bucket}/${location.prefix} after ${startAfter}`, () =>
      client.send(
        new ListObjectsV2Command({
          Bucket: location.bucket,
          Prefix: location.prefix,
          MaxKeys: PAGE,
          ...(token === undefined ? { StartAfter: startAfter } : { ContinuationToken: token }),
        }),
      ),
    );
    let passedEnd = false;
    for (const object of page.Contents ?? []) {
      const key = object.Key ?? '';
      if (key > last) {
        passedEnd = true;
        break;
      }
      const n = parseSnapshotKey(location.prefix, key);
      if (n !== undefined && n >= range.lo && n <= range.hi && (best === undefined || n > best.lastModified)) best = { key, lastModified: n };
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    if (passedEnd || token === undefined) return best;
  }
}

async function exists(client: S3Client, location: ArchiveLocation, key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: key }));
    return true;
  } catch (error) {
    if (httpStatus(error) === 404) return false;
    throw classifyS3Error(error, `HeadObject s3://${location.bucket}/${key}`);
  }
}

/**
 * One snapshot's body and metadata. gzip objects (S3_COMPRESSION=gzip) are inflated: the SDK does
 * not undo Content-Encoding. The body is checked against content-sha256, which was taken of the
 * uncompressed canonical JSON, so a damaged or replaced object is never handed on as the archive's.
 */
export async function getSnapshot(client: S3Client, location: ArchiveLocation, key: string): Promise<StoredSnapshot> {
  const lastModified = parseSnapshotKey(location.prefix, key);
  if (lastModified === undefined) throw new InputError(`${key} is not a snapshot key (${location.prefix}<last_modified>.json)`);
  const where = `s3://${location.bucket}/${key}`;
  const res = await guarded(`GetObject ${where}`, () => client.send(new GetObjectCommand({ Bucket: location.bucket, Key: key })));
  let body: Buffer;
  try {
    const raw = Buffer.from((await res.Body?.transformToByteArray()) ?? []);
    body = res.ContentEncoding === 'gzip' ? gunzipSync(raw) : raw;
  } catch (error) {
    if (error instanceof Error && 'code' in error && String(error.code).startsWith('Z_')) {
      throw new CorruptObjectError(`${where}: ContentEncoding gzip but the body does not inflate`, { cause: error });
    }
    throw classifyS3Error(error, `GetObject ${where} (reading the body)`);
  }
  const metadata = res.Metadata ?? {};
  const expected = metadata['content-sha256'];
  if (expected !== undefined) {
    const actual = createHash('sha256').update(body).digest('hex');
    if (actual !== expected) throw new CorruptObjectError(`${where}: body SHA-256 ${actual} differs from its content-sha256 ${expected}`);
  }
  return { key, lastModified, body, metadata, verified: expected !== undefined };
}
