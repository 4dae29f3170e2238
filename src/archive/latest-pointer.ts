/**
 * `<prefix>latest.json`: the newest snapshot written, for readers that want "now" without a listing
 * (document: src/archive/pointer-document.ts). It only moves forward: an entry whose last_modified
 * is not strictly greater than the stored one changes nothing, so a replay of old records, a
 * re-delivery or a slower instance never moves it back.
 *
 * Each move is a compare-and-swap: read (remembering the ETag), compare, PUT with If-Match: <etag>
 * (If-None-Match: * when there is none yet); a 412 (or 409 ConditionalRequestConflict, S3's answer to
 * a concurrent conditional write) means another writer moved it: read again and retry.
 *
 * Within a process: the last pointer seen (read or written) is cached. The stored pointer only moves
 * forward, so the cache can only be behind it, and an entry at or below the cache is skipped with no
 * request at all. Advances run one at a time; the ones that arrive meanwhile coalesce into one
 * advance to their maximum. When this process wrote last, the cached ETag is current and an advance
 * costs one PUT.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CorruptObjectError, S3UnavailableError } from '../errors.ts';
import { httpStatus } from '../sink/s3.ts';
import { POINTER_NAME, type PointerEntry, parsePointer, pointerBody } from './pointer-document.ts';
import { acquireLease } from './pointer-lock.ts';
import { guarded } from './s3-calls.ts';

export type { PointerEntry } from './pointer-document.ts';

export interface LatestPointerOptions {
  readonly bucket: string;
  /** The service's S3_PREFIX; the pointer is `<prefix>latest.json`. */
  readonly prefix: string;
  /**
   * How concurrent writers are kept apart. `if-match` (default): S3's conditional write, atomic on
   * AWS S3. `lease`: for stores whose If-Match is check-then-write (S3Proxy): writers also take
   * `<prefix>latest.json.lock` with If-None-Match: * first (src/archive/pointer-lock.ts).
   */
  readonly exclusion?: 'if-match' | 'lease';
  /** Compare-and-swap rounds lost to other writers before an advance fails (retryable). */
  readonly maxAttempts?: number;
  readonly leaseTtlMs?: number;
  readonly leaseWaitMs?: number;
}

/** `advanced`: this call's batch wrote the pointer. `behind`: it was already at or past the entry. */
export type AdvanceOutcome = 'advanced' | 'behind';

interface Known {
  readonly pointer: PointerEntry | undefined;
  /** undefined: no object (or a store that gives no ETag: read before writing). */
  readonly etag: string | undefined;
}

interface Waiter {
  resolve(outcome: AdvanceOutcome): void;
  reject(error: unknown): void;
}

export class LatestPointer {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #key: string;
  readonly #options: Required<Omit<LatestPointerOptions, 'bucket' | 'prefix'>>;
  #known: Known | undefined;
  #queued: { entry: PointerEntry; waiters: Waiter[] } | undefined;
  #draining = false;

  constructor(client: S3Client, options: LatestPointerOptions) {
    this.#client = client;
    this.#bucket = options.bucket;
    this.#key = `${options.prefix}${POINTER_NAME}`;
    this.#options = {
      exclusion: options.exclusion ?? 'if-match',
      maxAttempts: options.maxAttempts ?? 50,
      leaseTtlMs: options.leaseTtlMs ?? 30_000,
      leaseWaitMs: options.leaseWaitMs ?? 30_000,
    };
  }

  get key(): string {
    return this.#key;
  }

  /** The last pointer this instance saw; no request. At or behind the stored one. */
  get cached(): PointerEntry | undefined {
    return this.#known?.pointer;
  }

  /** The stored pointer, or undefined when there is none yet. Throws CorruptObjectError when it is not a pointer document. */
  async read(): Promise<PointerEntry | undefined> {
    const stored = await this.#fetch();
    if (stored.pointer === undefined && stored.etag !== undefined)
      throw new CorruptObjectError(`s3://${this.#bucket}/${this.#key} is not a latest-pointer document`);
    return stored.pointer;
  }

  /**
   * Moves the pointer to `entry` when entry.last_modified is greater than the stored one. Resolves
   * once the stored pointer is at or past the entry. A pointer that is not a pointer document is
   * replaced (this service is its only writer). Fails with S3UnavailableError or S3RejectedError.
   */
  advance(entry: PointerEntry): Promise<AdvanceOutcome> {
    const cached = this.#known?.pointer;
    if (cached !== undefined && entry.last_modified <= cached.last_modified) return Promise.resolve('behind');
    return new Promise<AdvanceOutcome>((resolve, reject) => {
      const queued = this.#queued;
      if (queued === undefined) this.#queued = { entry, waiters: [{ resolve, reject }] };
      else {
        if (entry.last_modified > queued.entry.last_modified) queued.entry = entry;
        queued.waiters.push({ resolve, reject });
      }
      if (!this.#draining) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      for (let batch = this.#queued; batch !== undefined; batch = this.#queued) {
        this.#queued = undefined;
        try {
          const outcome = await this.#advanceExclusive(batch.entry);
          for (const w of batch.waiters) w.resolve(outcome);
        } catch (error) {
          for (const w of batch.waiters) w.reject(error);
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  async #advanceExclusive(entry: PointerEntry): Promise<AdvanceOutcome> {
    if (this.#options.exclusion === 'if-match') return this.#swap(entry, () => true);
    const lease = await acquireLease(this.#client, {
      bucket: this.#bucket,
      key: `${this.#key}.lock`,
      ttlMs: this.#options.leaseTtlMs,
      waitMs: this.#options.leaseWaitMs,
    });
    try {
      return await this.#swap(entry, () => lease.fresh());
    } finally {
      // A failed release only delays other writers until the lease expires.
      await lease.release().catch(() => undefined);
    }
  }

  /** The compare-and-swap loop; `mayWrite` says whether the lease (if any) still covers a write. */
  async #swap(entry: PointerEntry, mayWrite: () => boolean): Promise<AdvanceOutcome> {
    // Start from the cache when it has an ETag; a stale one costs a 412 and a read.
    let current = this.#known?.etag !== undefined ? this.#known : await this.#fetch();
    for (let attempt = 1; ; attempt++) {
      if (current.pointer !== undefined && entry.last_modified <= current.pointer.last_modified) return 'behind';
      if (!mayWrite()) throw new S3UnavailableError(`s3://${this.#bucket}/${this.#key}: the lease ran out before the write; retry`);
      const etag = await this.#put(entry, current.etag);
      if (etag !== false) {
        this.#known = { pointer: entry, etag };
        return 'advanced';
      }
      if (attempt >= this.#options.maxAttempts) {
        throw new S3UnavailableError(`s3://${this.#bucket}/${this.#key}: lost ${attempt} compare-and-swap rounds to other writers`);
      }
      current = await this.#fetch();
    }
  }

  /** The new ETag (undefined when the store gave none); false when another writer got there first. */
  async #put(entry: PointerEntry, etag: string | undefined): Promise<string | undefined | false> {
    const where = `PutObject s3://${this.#bucket}/${this.#key}`;
    return guarded(where, async () => {
      try {
        const res = await this.#client.send(
          new PutObjectCommand({
            Bucket: this.#bucket,
            Key: this.#key,
            Body: pointerBody(entry),
            ContentType: 'application/json',
            // Readers poll it: it must not be served stale from a cache for long.
            CacheControl: 'no-cache',
            ...(etag === undefined ? { IfNoneMatch: '*' } : { IfMatch: etag }),
          }),
        );
        return res.ETag;
      } catch (error) {
        // 412: the ETag moved on (or the object appeared); 409: a concurrent conditional write;
        // 404: If-Match on an object deleted meanwhile. All three: read again.
        const status = httpStatus(error);
        if (status === 412 || status === 409 || (status === 404 && etag !== undefined)) return false;
        throw error;
      }
    });
  }

  /** Reads the stored pointer and its ETag, and caches them. */
  async #fetch(): Promise<Known> {
    const where = `GetObject s3://${this.#bucket}/${this.#key}`;
    const known = await guarded(where, async (): Promise<Known> => {
      try {
        const res = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key }));
        const bytes = Buffer.from((await res.Body?.transformToByteArray()) ?? []);
        // A document that is not a pointer compares below everything: the next advance replaces it.
        return { pointer: parsePointer(bytes), etag: res.ETag };
      } catch (error) {
        if (httpStatus(error) === 404) return { pointer: undefined, etag: undefined };
        throw error;
      }
    });
    this.#known = known;
    return known;
  }
}
