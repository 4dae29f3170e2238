/**
 * The S3 sink: one snapshot, one object, written once.
 *
 * Keys are `last_modified`, not offsets, so the same key can be written again by a re-delivery
 * (crash before commit, replay) or by a different snapshot that claims the same second. The write
 * is conditional (If-None-Match: *): the first writer wins atomically, and a loser compares the
 * stored SHA-256 (object metadata) with its own to tell an identical re-delivery (success, no-op)
 * from a conflict (never silently replaced, unless overwrites are on).
 */
import { createHash } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand, type PutObjectCommandInput, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { ConflictError, S3RejectedError, S3UnavailableError, SinkError } from '../errors.ts';

export interface SnapshotObject {
  readonly key: string;
  /** The bytes to upload (compressed when `contentEncoding` says so). */
  readonly body: Buffer;
  readonly contentEncoding?: 'gzip';
  /** SHA-256 of the uncompressed canonical JSON. */
  readonly sha256: string;
  /** What the snapshot is, for what happens after it landed (latest pointer, notifications). */
  readonly snapshot: { readonly lastModified: number; readonly links: number };
  /** Lineage stored as object metadata (x-amz-meta-*). */
  readonly lineage: {
    readonly topic: string;
    readonly partition: number;
    readonly offset: string;
    readonly schemaId: number;
  };
}

export type WriteOutcome = 'created' | 'unchanged' | 'overwritten';

/** A write's outcome and the stored object's ETag (undefined when the store gave none). */
export interface Landing {
  readonly outcome: WriteOutcome;
  readonly etag: string | undefined;
}
export type PlanOutcome = 'would_create' | 'unchanged' | 'would_conflict';

/** The sink port: the pipeline knows nothing else about S3. */
export interface SnapshotSink {
  write(object: SnapshotObject): Promise<WriteOutcome>;
  /** What `write` would do, without writing (replay --dry-run). */
  plan(object: SnapshotObject): Promise<PlanOutcome>;
  close(): Promise<void>;
}

export interface S3SinkSettings {
  readonly bucket: string;
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly forcePathStyle: boolean;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string } | undefined;
  readonly timeoutMs: number;
  readonly onConflict: 'dlq' | 'overwrite';
  /** Server-side encryption asked for on every PUT; absent leaves it to the bucket's default. */
  readonly sse?: ServerSideEncryption | undefined;
}

export type ServerSideEncryption = { readonly kind: 'AES256' } | { readonly kind: 'aws:kms'; readonly kmsKeyId: string };

/** The PutObject fields of an encryption choice (x-amz-server-side-encryption and its KMS key id). */
export function sseFields(sse: ServerSideEncryption | undefined): Pick<PutObjectCommandInput, 'ServerSideEncryption' | 'SSEKMSKeyId'> {
  if (sse === undefined) return {};
  return sse.kind === 'AES256' ? { ServerSideEncryption: 'AES256' } : { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: sse.kmsKeyId };
}

const SHA256_META = 'content-sha256';

/** HTTP statuses that may pass by themselves. Everything else from S3 is an operator's problem. */
export const RETRYABLE_S3_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

export function createS3Client(s: S3SinkSettings): S3Client {
  const config: S3ClientConfig = {
    region: s.region,
    forcePathStyle: s.forcePathStyle,
    // The SDK has no request timeout by default; a hung PUT would hold its partition forever.
    requestHandler: { requestTimeout: s.timeoutMs, connectionTimeout: Math.min(s.timeoutMs, 5000) },
    // The pipeline retries with backoff and stalls the partition; the SDK's own retries would only
    // hide the outage from readiness for longer.
    maxAttempts: 2,
    // Checksums only where S3 requires them: S3-compatible stores (S3Proxy, older MinIO) reject the
    // aws-chunked trailers of the SDK's default. Integrity comes from the signed payload hash.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  if (s.endpoint !== undefined) config.endpoint = s.endpoint;
  if (s.credentials !== undefined) config.credentials = { ...s.credentials };
  return new S3Client(config);
}

export class S3Sink implements SnapshotSink {
  readonly #client: S3Client;
  readonly #settings: S3SinkSettings;

  constructor(client: S3Client, settings: S3SinkSettings) {
    this.#client = client;
    this.#settings = settings;
  }

  async write(object: SnapshotObject): Promise<WriteOutcome> {
    return (await this.land(object)).outcome;
  }

  /** `write`, with the stored object's ETag (for the uploaded notification). */
  async land(object: SnapshotObject): Promise<Landing> {
    const created = await this.#put(object, true);
    if (created !== false) return { outcome: 'created', etag: created };
    const existing = await this.#stored(object.key);
    if (existing.sha256 === object.sha256) return { outcome: 'unchanged', etag: existing.etag };
    if (this.#settings.onConflict === 'overwrite') return { outcome: 'overwritten', etag: (await this.#put(object, false)) || undefined };
    throw new ConflictError(
      `conflict: s3://${this.#settings.bucket}/${object.key} already holds a different snapshot (sha256 ${existing.sha256 === '' ? 'not recorded' : existing.sha256}, new ${object.sha256})`,
    );
  }

  async plan(object: SnapshotObject): Promise<PlanOutcome> {
    const existing = await this.#stored(object.key, true);
    if (existing === undefined) return 'would_create';
    return existing.sha256 === object.sha256 ? 'unchanged' : 'would_conflict';
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  /** The new object's ETag ('' when none was given); false when the key exists and `ifAbsent` was asked. */
  async #put(object: SnapshotObject, ifAbsent: boolean): Promise<string | false> {
    const command = new PutObjectCommand({
      Bucket: this.#settings.bucket,
      Key: object.key,
      Body: object.body,
      ContentType: 'application/json',
      ...(object.contentEncoding === undefined ? {} : { ContentEncoding: object.contentEncoding }),
      ...(ifAbsent ? { IfNoneMatch: '*' } : {}),
      ...sseFields(this.#settings.sse),
      Metadata: {
        [SHA256_META]: object.sha256,
        'source-topic': object.lineage.topic,
        'source-partition': String(object.lineage.partition),
        'source-offset': object.lineage.offset,
        'schema-id': String(object.lineage.schemaId),
      },
    });
    signWithPayloadHash(command, payloadHash(object));
    try {
      const put = await this.#client.send(command, { abortSignal: AbortSignal.timeout(this.#settings.timeoutMs) });
      return put.ETag ?? '';
    } catch (error) {
      if (ifAbsent && httpStatus(error) === 412) return false;
      throw classifyS3Error(error, `PutObject s3://${this.#settings.bucket}/${object.key}`);
    }
  }

  /** The stored body's hash ('' when not recorded) and ETag; undefined for a missing key when `missingOk`. */
  async #stored(key: string, missingOk: true): Promise<{ sha256: string; etag: string | undefined } | undefined>;
  async #stored(key: string, missingOk?: false): Promise<{ sha256: string; etag: string | undefined }>;
  async #stored(key: string, missingOk = false): Promise<{ sha256: string; etag: string | undefined } | undefined> {
    try {
      const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#settings.bucket, Key: key }), {
        abortSignal: AbortSignal.timeout(this.#settings.timeoutMs),
      });
      return { sha256: head.Metadata?.[SHA256_META] ?? '', etag: head.ETag };
    } catch (error) {
      if (missingOk && httpStatus(error) === 404) return undefined;
      throw classifyS3Error(error, `HeadObject s3://${this.#settings.bucket}/${key}`);
    }
  }
}

/**
 * Hex SHA-256 of the bytes uploaded. The body is hashed once: uncompressed, it is the canonical
 * JSON whose hash the pipeline already took for the metadata.
 */
export function payloadHash(object: SnapshotObject): string {
  return object.contentEncoding === undefined ? object.sha256 : createHash('sha256').update(object.body).digest('hex');
}

/**
 * Signs the PUT with a payload hash we already have. SigV4's signer uses an `x-amz-content-sha256`
 * header when one is present instead of hashing the body again, and S3 checks the body against it
 * (a mismatch is refused with 400 XAmzContentSHA256Mismatch). That signed hash is the integrity
 * check of the upload, so no Content-MD5 (a third hash of the body) is sent.
 */
function signWithPayloadHash(command: PutObjectCommand, hash: string): void {
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers !== undefined) request.headers['x-amz-content-sha256'] = hash;
      return next(args);
    },
    { step: 'build', name: 'towAndGoPayloadHash' },
  );
}

export function httpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return undefined;
  const meta = (error as { $metadata?: { httpStatusCode?: unknown } }).$metadata;
  return typeof meta?.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
}

/**
 * One named list decides: retryable statuses, and every failure without a status (network, timeout,
 * abort), are S3UnavailableError. Other statuses (403, 404 NoSuchBucket, 400) are S3RejectedError,
 * which also stalls: they are the operator's to fix, and routing good records to the DLQ because of
 * a bucket policy would lose them from the main path. Bugs (TypeError, RangeError) pass through.
 */
export function classifyS3Error(error: unknown, what: string): Error {
  if (error instanceof SinkError) return error;
  if (error instanceof TypeError || error instanceof RangeError) return error;
  const status = httpStatus(error);
  const name = error instanceof Error ? error.name : 'UnknownError';
  if (status === undefined || RETRYABLE_S3_STATUSES.has(status) || status >= 500) {
    return new S3UnavailableError(`${what} failed: ${name}${status === undefined ? '' : ` (HTTP ${status})`}`, { cause: error });
  }
  return new S3RejectedError(`${what} refused: ${name} (HTTP ${status})`, { cause: error });
}
