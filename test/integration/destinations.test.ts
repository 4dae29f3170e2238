/**
 * Two S3 destinations on the real S3Proxy, with the uploaded notification on: a second bucket
 * (gzip, its own prefix) is removed mid-run and created again. While it is gone the partition
 * stalls: nothing is committed past it, the first bucket keeps what it has (write-once), nothing
 * is dead-lettered; once it is back every snapshot is in both buckets, byte for byte (read with
 * boto3), and every object was announced (read with librdkafka, decoded with python3-avro).
 */
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { contentHash } from '../../src/content-hash.ts';
import { type RunningService, startConsumerService } from '../../src/main.ts';
import { objectBody, type Snapshot } from '../../src/snapshot.ts';
import { consumeAvroWithPython, readS3WithBoto3, withoutPointer } from '../support/interop.ts';
import { landsExactly } from '../support/landing.ts';
import { watchCommits } from '../support/ledger.ts';
import {
  allCommitted,
  baseTime,
  createTopics,
  createTopicsReady,
  offsets,
  publish,
  readTopic,
  s3,
  silent,
  snapshots,
  testEnv,
  uniqueName,
  waitFor,
  withAdmin,
} from '../support/stack.ts';

async function emptyBucket(bucket: string): Promise<void> {
  for (;;) {
    const listed = await s3().send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (listed.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ Key: o.Key }]));
    if (keys.length === 0) return;
    await s3().send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  }
}

async function removeBucket(bucket: string): Promise<void> {
  await emptyBucket(bucket);
  await s3().send(new DeleteBucketCommand({ Bucket: bucket }));
}

function bodiesOf(prefix: string, list: readonly Snapshot[]): Record<string, string> {
  return Object.fromEntries(list.map((s) => [`${prefix}${s.last_modified}.json`, objectBody(s).toString('utf8')]));
}

describe('several S3 destinations', () => {
  const mirror = uniqueName('it-mirror')
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 60);
  const running: RunningService[] = [];

  afterAll(async () => {
    for (const s of running) await s.stop('test done');
    await removeBucket(mirror).catch(() => undefined);
  });

  it('a destination removed mid-run stalls the partition, loses nothing anywhere, and both hold every snapshot once it is back', async () => {
    await s3().send(new CreateBucketCommand({ Bucket: mirror }));
    const uploaded = uniqueName('it-uploaded');
    // The first destination takes S3_PREFIX (the test's own); the second has its prefix and gzip.
    const destinations = [
      { name: 'primary', bucket: 'tow-and-go' },
      { name: 'mirror', bucket: mirror, prefix: 'mirror/', compression: 'gzip' },
    ];
    const t = testEnv('destinations', { S3_DESTINATIONS: JSON.stringify(destinations), NOTIFY_UPLOADED: 'true', KAFKA_UPLOADED_TOPIC: uploaded });
    await createTopics(t);
    await withAdmin((admin) => createTopicsReady(admin, [{ topic: uploaded, numPartitions: 2, replicationFactor: 1 }]));
    const service = await startConsumerService(t.config, silent);
    running.push(service);

    const all = snapshots(40, baseTime());
    const [before, during] = [all.slice(0, 20), all.slice(20)];
    await publish(t, before);
    await landsExactly(t, before);
    await waitFor('first half committed', () => allCommitted(t));
    const committedBefore = await offsets(t);

    // The second bucket goes away (emptied, then deleted): every PUT to it is refused with 404 NoSuchBucket.
    await removeBucket(mirror);
    const commits = watchCommits(t, 250);
    await publish(t, during);
    await waitFor('the mirror failing', async () => service.metrics.destinationFailures.get({ destination: 'mirror', code: 'S3_REJECTED' }) > 0 || undefined);
    await waitFor('a stalled partition', async () => service.health.describe().stalledPartitions > 0 || undefined, 30_000);
    // For a while with the bucket gone: no commit moves past the first half, nothing is dead-lettered.
    await new Promise((resolve) => setTimeout(resolve, 8000));
    expect((await offsets(t)).committed).toEqual(committedBefore.committed);
    expect(await readTopic(t.dlqTopic)).toEqual([]);

    await s3().send(new CreateBucketCommand({ Bucket: mirror }));
    await landsExactly(t, all, 120_000);
    await waitFor('everything committed', () => allCommitted(t), 120_000);
    expect(await commits.stop(), 'committed offsets that went backwards').toBe(0);
    expect(await readTopic(t.dlqTopic)).toEqual([]);
    // The emptied bucket holds the second half, gzipped, under its own prefix (the first half went with the bucket).
    const newest = all.reduce((a, b) => (b.last_modified > a.last_modified ? b : a));
    for (const [bucket, prefix, list] of [
      [mirror, 'mirror/', during],
      ['tow-and-go', t.prefix, all],
    ] as const) {
      const { snapshots: stored, pointer } = withoutPointer(await readS3WithBoto3(prefix, bucket), prefix);
      expect(stored).toEqual(bodiesOf(prefix, list));
      // Each destination's latest pointer names its copy of the newest snapshot.
      expect(pointer).toMatchObject({
        key: `${prefix}${newest.last_modified}.json`,
        last_modified: newest.last_modified,
        content_sha256: contentHash(objectBody(newest)),
      });
    }

    // Every object in each destination was announced, with its hash, size and the ETag S3 has for it.
    const notes = await consumeAvroWithPython(uploaded);
    for (const [bucket, prefix, list] of [
      ['tow-and-go', t.prefix, all],
      [mirror, 'mirror/', during],
    ] as const) {
      for (const s of list) {
        const key = `${prefix}${s.last_modified}.json`;
        const head = await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        const mine = notes.filter((n) => n.value.bucket === bucket && n.value.key === key);
        expect(mine.length, `notifications of ${bucket}/${key}`).toBeGreaterThanOrEqual(1);
        for (const n of mine) {
          expect(n.key).toBe(String(s.last_modified));
          expect(n.value).toMatchObject({
            last_modified: s.last_modified,
            links: s.tow_and_go.length,
            content_sha256: contentHash(objectBody(s)),
            etag: head.ETag,
            bytes: Number(head.ContentLength),
            source_topic: t.topic,
          });
        }
      }
    }
  }, 240_000);
});
