/** Snapshot objects put straight into S3, as the sink writes them (body, metadata, optional gzip). */
import { gzipSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { PointerEntry } from '../../src/archive/latest-pointer.ts';
import { contentHash, objectBody } from '../../src/snapshot.ts';

export const BUCKET = 'tow-and-go';

export function snapshotBody(lastModified: number): Buffer {
  return objectBody({ last_modified: lastModified, tow_and_go: [{ link_id: 1 + (lastModified % 1000), segment_id: null }] });
}

export async function putSnapshot(client: S3Client, prefix: string, lastModified: number, o: { gzip?: boolean; sha256?: string } = {}): Promise<Buffer> {
  const body = snapshotBody(lastModified);
  await client.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: `${prefix}${lastModified}.json`,
      Body: o.gzip === true ? gzipSync(body) : body,
      ContentType: 'application/json',
      ...(o.gzip === true ? { ContentEncoding: 'gzip' } : {}),
      Metadata: { 'content-sha256': o.sha256 ?? contentHash(body), 'source-topic': 't', 'source-partition': '0', 'source-offset': '0', 'schema-id': '1' },
    }),
  );
  return body;
}

export function pointerEntry(prefix: string, lastModified: number, partition = 0): PointerEntry {
  return {
    key: `${prefix}${lastModified}.json`,
    last_modified: lastModified,
    content_sha256: contentHash(snapshotBody(lastModified)),
    links: 1,
    source: { topic: 'tow-and-go.updates', partition, offset: String(lastModified) },
  };
}
