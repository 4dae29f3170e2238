/**
 * The S3-side ceiling: bare PutObjectCommands (Bucket, Key, Body, ContentType) of the service's own
 * bodies, objectBody of the same snapshots, built before the clock starts, through the service's
 * S3 client settings (createS3Client(s3Settings(config))), with as many PUTs in flight as the
 * service can have. The payload SHA-256 is also taken before the clock and signed with, as the
 * service's sink does (x-amz-content-sha256), so the SDK does not hash the body inside the window:
 * the ceiling does less work per PUT than the service, never more. Timed from the first PUT to the
 * last response.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '../../../src/config.ts';
import { s3Settings } from '../../../src/main.ts';
import { createS3Client } from '../../../src/sink/s3.ts';
import { contentHash, objectBody, objectKey } from '../../../src/snapshot.ts';
import { epochMs, type VariantParams } from '../protocol.ts';
import { snapshotAt } from '../snapshots.ts';
import type { PreparedVariant } from './types.ts';

function put(bucket: string, key: string, body: Buffer, sha256: string): PutObjectCommand {
  const command = new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' });
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers !== undefined) request.headers['x-amz-content-sha256'] = sha256;
      return next(args);
    },
    { step: 'build', name: 'benchPayloadHash' },
  );
  return command;
}

export async function prepare(p: VariantParams): Promise<PreparedVariant> {
  const c = loadConfig(p.env);
  const client = createS3Client(s3Settings(c));
  const objects = Array.from({ length: p.n }, (_, i) => {
    const snapshot = snapshotAt(i, p.links);
    const body = objectBody(snapshot);
    return { key: objectKey(c.S3_PREFIX, snapshot), body, sha256: contentHash(body) };
  });
  let written = 0;
  return {
    start() {
      let next = 0;
      const worker = async () => {
        for (let o = objects[next++]; o !== undefined; o = objects[next++]) {
          await client.send(put(c.S3_BUCKET, o.key, o.body, o.sha256), { abortSignal: AbortSignal.timeout(c.S3_TIMEOUT_MS) });
          written++;
        }
      };
      const done = Promise.all(Array.from({ length: p.concurrency }, worker)).then(() => epochMs());
      return {
        done,
        objects: () => written,
        close: async () => client.destroy(),
      };
    },
  };
}
