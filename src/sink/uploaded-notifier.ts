/**
 * The "uploaded" notification (NOTIFY_UPLOADED): one Avro record per destination copy on
 * KAFKA_UPLOADED_TOPIC, so that a downstream reader (the MongoDB sync) reacts to new objects
 * without listing S3. It runs after every destination has the object and before the source offset
 * may be committed (an AfterLanding step), so nothing landed goes unannounced: a crash between the
 * two re-delivers the record, which lands `unchanged` and is announced again (at least once).
 *
 * Records are keyed by last_modified, so every announcement of one snapshot goes to one partition,
 * in order. A failed send is retryable (KafkaUnavailableError): the record stalls and is tried
 * again, writes included (they answer `unchanged`), exactly as a failed DLQ send does.
 */
import { readFileSync } from 'node:fs';
import { CompressionTypes, type Producer } from 'kafkajs';
import { classifyProduceFailure } from '../dlq.ts';
import { describeError, KafkaUnavailableError } from '../errors.ts';
import type { AfterLanding, LandedCopy } from './destinations.ts';
import type { SnapshotObject } from './s3.ts';

export const UPLOADED_SCHEMA_PATH = new URL('../../avro/tow-and-go-uploaded.avsc', import.meta.url);

export function loadUploadedSchema(): string {
  return readFileSync(UPLOADED_SCHEMA_PATH, 'utf8');
}

/** The record as the schema has it. */
export interface UploadedRecord {
  readonly destination: string;
  readonly bucket: string;
  readonly key: string;
  readonly last_modified: number;
  readonly links: number;
  readonly bytes: number;
  readonly content_encoding: string | null;
  readonly etag: string | null;
  readonly content_sha256: string;
  readonly outcome: LandedCopy['outcome'];
  readonly source_topic: string;
  readonly source_partition: number;
  readonly source_offset: number;
}

/** Pure. */
export function uploadedRecord(object: SnapshotObject, copy: LandedCopy, contentEncoding: string | undefined): UploadedRecord {
  return {
    destination: copy.destination,
    bucket: copy.bucket,
    key: copy.key,
    last_modified: object.snapshot.lastModified,
    links: object.snapshot.links,
    bytes: copy.bytes,
    content_encoding: contentEncoding ?? null,
    etag: copy.etag ?? null,
    content_sha256: object.sha256,
    outcome: copy.outcome,
    source_topic: object.lineage.topic,
    source_partition: object.lineage.partition,
    source_offset: Number(object.lineage.offset),
  };
}

export interface UploadedEncoder {
  encode(value: UploadedRecord): Promise<Buffer>;
}

export class UploadedNotifier implements AfterLanding {
  readonly #producer: Pick<Producer, 'send'>;
  readonly #encoder: UploadedEncoder;
  readonly #topic: string;
  /** Each destination's compression, by name: the copy's Content-Encoding. */
  readonly #encodings: ReadonlyMap<string, string | undefined>;

  constructor(producer: Pick<Producer, 'send'>, encoder: UploadedEncoder, topic: string, encodings: ReadonlyMap<string, string | undefined>) {
    this.#producer = producer;
    this.#encoder = encoder;
    this.#topic = topic;
    this.#encodings = encodings;
  }

  async afterLanding(object: SnapshotObject, copies: readonly LandedCopy[]): Promise<void> {
    // The registry being down shows here as RegistryUnavailableError: retryable, like a send failure.
    const values = await Promise.all(copies.map((copy) => this.#encoder.encode(uploadedRecord(object, copy, this.#encodings.get(copy.destination)))));
    const key = String(object.snapshot.lastModified);
    try {
      await this.#producer.send({ topic: this.#topic, acks: -1, compression: CompressionTypes.None, messages: values.map((value) => ({ key, value })) });
    } catch (cause) {
      if (classifyProduceFailure(cause) === 'bug') throw cause;
      // Whatever the broker said (down, a missing ACL, the topic missing), the record stays uncommitted until it takes the notification.
      throw new KafkaUnavailableError(`could not announce ${key} on ${this.#topic} (${describeError(cause)})`, { cause });
    }
  }
}
