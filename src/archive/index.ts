/**
 * The archive as a library (`tow-and-go-sink/archive`): the snapshot current at a time, and the
 * newest one. Bodies are the canonical JSON, inflated when stored gzip, checked against their
 * content-sha256.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { InputError } from '../errors.ts';
import { createS3Client, type S3SinkSettings } from '../sink/s3.ts';
import { type ArchiveLocation, findAsOf, getSnapshot, type SnapshotRef, type StoredSnapshot } from './as-of.ts';
import { DEFAULT_FLOOR, parseSnapshotKey } from './keys.ts';
import { LatestPointer } from './latest-pointer.ts';
import { guarded } from './s3-calls.ts';

export { type ArchiveLocation, findAsOf, getSnapshot, type SnapshotRef, type StoredSnapshot } from './as-of.ts';
export { DEFAULT_FLOOR, parseSnapshotKey, snapshotKey } from './keys.ts';
export { type AdvanceOutcome, LatestPointer, type LatestPointerOptions, type PointerEntry } from './latest-pointer.ts';

export interface ArchiveOptions {
  /** A client (left open), or the settings to make one (destroyed after the call): `s3Settings(config)`. */
  readonly s3: S3Client | S3SinkSettings;
  /** Defaults to the settings' bucket; needed with a client. */
  readonly bucket?: string;
  /** The service's S3_PREFIX, e.g. `tow-and-go/`. */
  readonly prefix: string;
  /** No snapshot is older than this (the service's MIN_LAST_MODIFIED); lookups search no lower. Default 946684800 (its default). */
  readonly floor?: number;
}

/** The snapshot with the greatest last_modified ≤ t (unix seconds), or undefined when there is none. */
export async function getSnapshotAt(t: number, options: ArchiveOptions): Promise<StoredSnapshot | undefined> {
  return withClient(options, async (client, location) => {
    const ref = await findAsOf(client, location, t, { floor: options.floor ?? DEFAULT_FLOOR });
    return ref === undefined ? undefined : getSnapshot(client, location, ref.key);
  });
}

/**
 * The newest snapshot. The latest pointer names it; a listing after the pointer's key picks up any
 * written since the pointer last moved (it is advanced after each write, so it can lag). Without a
 * pointer, the as-of lookup at a day from now.
 */
export async function getLatestSnapshot(options: ArchiveOptions): Promise<StoredSnapshot | undefined> {
  return withClient(options, async (client, location) => {
    const pointer = await new LatestPointer(client, location).read();
    const ref =
      pointer === undefined
        ? await findAsOf(client, location, Date.now() / 1000 + 86_400, { floor: options.floor ?? DEFAULT_FLOOR })
        : await newestFrom(client, location, { key: pointer.key, lastModified: pointer.last_modified });
    return ref === undefined ? undefined : getSnapshot(client, location, ref.key);
  });
}

/**
 * `from`, or a newer snapshot listed after it. Only keys that start with a digit can be snapshots,
 * and those sort before `latest.json`; so the listing stops at the first other name.
 */
async function newestFrom(client: S3Client, location: ArchiveLocation, from: SnapshotRef): Promise<SnapshotRef> {
  let best = from;
  let token: string | undefined;
  do {
    const page = await guarded(`ListObjectsV2 s3://${location.bucket}/${location.prefix} after ${from.key}`, () =>
      client.send(
        new ListObjectsV2Command({
          Bucket: location.bucket,
          Prefix: location.prefix,
          ...(token === undefined ? { StartAfter: from.key } : { ContinuationToken: token }),
        }),
      ),
    );
    for (const object of page.Contents ?? []) {
      const key = object.Key ?? '';
      if (!/^[0-9]/.test(key.slice(location.prefix.length))) return best;
      const n = parseSnapshotKey(location.prefix, key);
      if (n !== undefined && n > best.lastModified) best = { key, lastModified: n };
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return best;
}

async function withClient<T>(options: ArchiveOptions, work: (client: S3Client, location: ArchiveLocation) => Promise<T>): Promise<T> {
  const given = options.s3;
  const bucket = options.bucket ?? (isClient(given) ? undefined : given.bucket);
  if (bucket === undefined) throw new InputError('archive: a bucket is needed with an S3 client');
  const client = isClient(given) ? given : createS3Client(given);
  try {
    return await work(client, { bucket, prefix: options.prefix });
  } finally {
    if (!isClient(given)) client.destroy();
  }
}

/** Duck-typed: a caller's client may come from another copy of the SDK. */
function isClient(s3: S3Client | S3SinkSettings): s3 is S3Client {
  return 'send' in s3 && typeof s3.send === 'function';
}
