/**
 * `tow-and-go reconcile`, the facts of one record: its last_modified (its key, with objectKey) and
 * content hash, computed exactly as the pipeline computes them (the codec's frame, then the
 * BodyBuilder the pipeline uses), what the current settings say of it, and what HeadObject says
 * about its key.
 *
 * Registry and S3 failures that may pass are retried with backoff, a bounded number of times, and
 * then fail the run: a reconcile that counted a record as undecodable or missing because a
 * dependency was down would be wrong.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { isSinkError, type SinkError } from '../errors.ts';
import type { RecordDecoder } from '../pipeline.ts';
import { classifyS3Error, httpStatus } from '../sink/s3.ts';
import type { SnapshotLimits } from '../snapshot.ts';
import type { BodyBuilder } from '../snapshot-transcoder.ts';
import type { Acceptance, StoredObject } from './reconcile-classify.ts';

export interface RetrySettings {
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** Attempts in all before the run fails. */
  readonly attempts: number;
}

/**
 * Runs `work` until it succeeds, throws a permanent error or a bug, or has failed retryably
 * `attempts` times (then its last error is thrown). Capped exponential backoff with full jitter.
 */
export async function withRetries<T>(what: string, work: () => Promise<T>, s: RetrySettings, log: Logger): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isSinkError(error) || !error.retryable || attempt + 1 >= s.attempts) throw error;
      const delayMs = Math.round(Math.min(s.retryMaxMs, s.retryInitialMs * 2 ** attempt) * Math.random());
      if (attempt === 0 || attempt % 5 === 4) log.warn({ code: error.code, attempt: attempt + 1, retryInMs: delayMs }, `${what}: ${error.message}; retrying`);
      await sleep(delayMs);
    }
  }
}

/**
 * Limits under which any structurally valid snapshot passes: they give the key and hash of a record
 * that the current limits refuse, so that its object is still found (written under older settings).
 */
const ANY_LIMITS: SnapshotLimits = { minLastModified: 0, maxFutureSkewSeconds: 1e12, maxLinks: Number.MAX_SAFE_INTEGER };

export interface InspectSettings {
  readonly limits: SnapshotLimits;
  readonly maxPayloadBytes: number;
  readonly retry: RetrySettings;
}

type Attempt = { ok: true; lastModified: number; sha256: string } | { ok: false; error: SinkError };

/** A record's snapshot as reconcile needs it, or why it is none. */
export type Inspected =
  | { readonly kind: 'built'; readonly lastModified: number; readonly sha256: string; readonly acceptance: Acceptance }
  | { readonly kind: 'undecodable'; readonly code: string; readonly reason: string };

/** last_modified, hash and acceptance of a record's snapshot, or why it has none. */
export class BodyInspector {
  readonly #decoder: RecordDecoder;
  readonly #bodies: BodyBuilder;
  readonly #s: InspectSettings;
  readonly #log: Logger;

  constructor(decoder: RecordDecoder, bodies: BodyBuilder, settings: InspectSettings, log: Logger) {
    this.#decoder = decoder;
    this.#bodies = bodies;
    this.#s = settings;
    this.#log = log;
  }

  /**
   * The current limits first, as the pipeline would build it (nearly every record passes, so one
   * build). Only a record they refuse is built again: under no limits, for its key and hash, and
   * under the current limits without MIN_LAST_MODIFIED, to tell a record that is merely older than
   * the kept history from one that is refused for something else.
   */
  async body(value: Buffer | null, nowSeconds: number): Promise<Inspected> {
    const strict = await this.#attempt(value, this.#s.limits, this.#s.maxPayloadBytes, nowSeconds);
    if (strict.ok) return { kind: 'built', lastModified: strict.lastModified, sha256: strict.sha256, acceptance: { kind: 'accepted' } };
    const any = await this.#attempt(value, ANY_LIMITS, Number.MAX_SAFE_INTEGER, nowSeconds);
    if (!any.ok) return { kind: 'undecodable', code: strict.error.code, reason: strict.error.message };
    const olderOnly = await this.#attempt(value, { ...this.#s.limits, minLastModified: 0 }, this.#s.maxPayloadBytes, nowSeconds);
    const acceptance: Acceptance = olderOnly.ok ? { kind: 'before_min' } : { kind: 'refused', code: strict.error.code, reason: strict.error.message };
    return { kind: 'built', lastModified: any.lastModified, sha256: any.sha256, acceptance };
  }

  #attempt(value: Buffer | null, limits: SnapshotLimits, maxPayloadBytes: number, nowSeconds: number): Promise<Attempt> {
    return withRetries(
      'reconcile cannot decode a record yet',
      async () => {
        try {
          const framed = await this.#decoder.frame(value, maxPayloadBytes);
          const built = await this.#bodies.build(framed, limits, nowSeconds);
          return { ok: true, lastModified: built.lastModified, sha256: built.sha256 };
        } catch (error) {
          if (isSinkError(error) && !error.retryable) return { ok: false, error };
          throw error;
        }
      },
      this.#s.retry,
      this.#log,
    );
  }
}

/** Keys whose HeadObject answers are kept: duplicates of a snapshot are usually near each other. */
const REMEMBERED_KEYS = 10_000;

/** HeadObject per key, once per key while remembered, with the metadata the sink writes. */
export class ObjectHeads {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #timeoutMs: number;
  readonly #retry: RetrySettings;
  readonly #log: Logger;
  readonly #known = new Map<string, Promise<StoredObject | undefined>>();

  constructor(client: S3Client, o: { bucket: string; timeoutMs: number; retry: RetrySettings }, log: Logger) {
    this.#client = client;
    this.#bucket = o.bucket;
    this.#timeoutMs = o.timeoutMs;
    this.#retry = o.retry;
    this.#log = log;
  }

  get(key: string): Promise<StoredObject | undefined> {
    let found = this.#known.get(key);
    if (found === undefined) {
      found = withRetries('reconcile cannot read S3 yet', () => this.#head(key), this.#retry, this.#log);
      this.#known.set(key, found);
      found.catch(() => this.#known.delete(key));
      if (this.#known.size > REMEMBERED_KEYS) {
        // Map order is insertion order: the oldest answer goes first.
        const oldest = this.#known.keys().next().value;
        if (oldest !== undefined) this.#known.delete(oldest);
      }
    }
    return found;
  }

  /** Asks S3 again next time (after a repair wrote the key). */
  forget(key: string): void {
    this.#known.delete(key);
  }

  async #head(key: string): Promise<StoredObject | undefined> {
    try {
      const head = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }), { abortSignal: AbortSignal.timeout(this.#timeoutMs) });
      const m = head.Metadata ?? {};
      return { sha256: m['content-sha256'], lineage: { topic: m['source-topic'], partition: m['source-partition'], offset: m['source-offset'] } };
    } catch (error) {
      if (httpStatus(error) === 404) return undefined;
      throw classifyS3Error(error, `HeadObject s3://${this.#bucket}/${key}`);
    }
  }
}
