/**
 * The change stream's view of the archive (changes/change-publisher.ts SnapshotArchive): the
 * snapshot just before a given one, found by key order in S3 (findAsOf), never in process memory,
 * so that every instance and every restart computes the same delta.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { ArchivedSnapshot, SnapshotArchive } from '../changes/change-publisher.ts';
import { S3RejectedError } from '../errors.ts';
import { validateSnapshot } from '../snapshot.ts';
import { type ArchiveLocation, findAsOf, getSnapshot } from './as-of.ts';

/** The archive holds what was accepted when it was written: only the shape is checked again, not today's limits. */
const ANY_ARCHIVED = { minLastModified: 0, maxFutureSkewSeconds: Number.MAX_SAFE_INTEGER, maxLinks: Number.MAX_SAFE_INTEGER };

export class S3SnapshotArchive implements SnapshotArchive {
  readonly #client: S3Client;
  readonly #location: ArchiveLocation;
  readonly #floor: number;

  /** `floor`: MIN_LAST_MODIFIED, below which no snapshot was ever accepted (the search stops there). */
  constructor(client: S3Client, location: ArchiveLocation, floor: number) {
    this.#client = client;
    this.#location = location;
    this.#floor = floor;
  }

  async previousBefore(lastModified: number): Promise<ArchivedSnapshot | undefined> {
    const ref = await findAsOf(this.#client, this.#location, lastModified - 1, { floor: this.#floor });
    if (ref === undefined) return undefined;
    const stored = await getSnapshot(this.#client, this.#location, ref.key);
    try {
      return { lastModified: ref.lastModified, key: ref.key, snapshot: validateSnapshot(JSON.parse(stored.body.toString('utf8')), ANY_ARCHIVED, 0) };
    } catch (error) {
      // An archived object that is not a snapshot is the operator's to look at; the change waits (stalls) rather than skip it.
      throw new S3RejectedError(`s3://${this.#location.bucket}/${ref.key} is not a snapshot, so the change against it cannot be computed: ${String(error)}`, {
        cause: error,
      });
    }
  }
}
