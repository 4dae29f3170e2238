/**
 * What follows a landing (sink/destinations.ts AfterLanding), before the record may be committed:
 * - the latest pointer of every destination moves forward (archive/latest-pointer.ts);
 * - the change against the previous archived snapshot goes to the changes topic (changes/).
 * Both are idempotent: a re-delivered record moves no pointer back and publishes the same change
 * again, which readers skip (see the change schema's doc).
 */
import { gunzipSync } from 'node:zlib';
import type { LatestPointer } from '../archive/latest-pointer.ts';
import type { ChangePublisher } from '../changes/change-publisher.ts';
import { isSinkError, S3RejectedError } from '../errors.ts';
import type { Snapshot } from '../snapshot.ts';
import type { AfterLanding, LandedCopy } from './destinations.ts';
import type { SnapshotObject } from './s3.ts';

/**
 * A step's permanent failure (a pointer object that is not a pointer, say) must not send a landed
 * snapshot to the DLQ: it becomes a retryable refusal, which stalls the partition and names the
 * problem until an operator fixes it.
 */
async function neverPermanent<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (isSinkError(error) && !error.retryable) throw new S3RejectedError(error.message, { cause: error });
    throw error;
  }
}

export class AdvanceLatestPointers implements AfterLanding {
  readonly #pointers: ReadonlyMap<string, LatestPointer>;

  /** One pointer per destination name. */
  constructor(pointers: ReadonlyMap<string, LatestPointer>) {
    this.#pointers = pointers;
  }

  async afterLanding(object: SnapshotObject, copies: readonly LandedCopy[]): Promise<void> {
    await neverPermanent(() =>
      Promise.all(
        copies.map((copy) =>
          this.#pointers.get(copy.destination)?.advance({
            key: copy.key,
            last_modified: object.snapshot.lastModified,
            content_sha256: object.sha256,
            links: object.snapshot.links,
            source: { topic: object.lineage.topic, partition: object.lineage.partition, offset: object.lineage.offset },
          }),
        ),
      ),
    );
  }
}

export class PublishChanges implements AfterLanding {
  readonly #publisher: ChangePublisher;

  /** The publisher's archive reads the first destination; its copy is the change's key. */
  constructor(publisher: ChangePublisher) {
    this.#publisher = publisher;
  }

  async afterLanding(object: SnapshotObject, copies: readonly LandedCopy[]): Promise<void> {
    const [primary] = copies;
    if (primary === undefined) return;
    const json = object.contentEncoding === 'gzip' ? gunzipSync(object.body) : object.body;
    // The canonical body this process just built from a validated snapshot: parsing it back needs no second validation.
    const snapshot = JSON.parse(json.toString('utf8')) as Snapshot;
    await neverPermanent(() => this.#publisher.publish({ key: primary.key, lastModified: object.snapshot.lastModified, sha256: object.sha256, snapshot }));
  }
}
