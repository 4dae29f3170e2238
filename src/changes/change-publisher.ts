/**
 * The change stream (issue 12, item 4): after a snapshot lands in S3, its difference from the
 * previous snapshot goes to `tow-and-go.changes`, so the MongoDB sync can apply deltas instead of
 * whole snapshots.
 *
 * "Previous" is asked of the archive (`previousBefore`), never remembered in process memory: any
 * instance, before or after a restart, computes the same delta for the same snapshot as long as
 * the archive holds the same older snapshots. What the archive cannot know is whether an older
 * snapshot is still on its way (another partition, another instance, a stalled write). So the base
 * is "the nearest earlier snapshot the archive held", said in the record (`base`,
 * `base_last_modified`, `base_key`), and the consumer checks it against its own state; the rules
 * are in the schema's doc (avro/tow-and-go-change.avsc):
 *
 * - No earlier snapshot at all: base NONE, the delta is the whole snapshot as gained.
 * - The predecessor lands late (after this one): this record's base is the snapshot before it. A
 *   consumer that has applied the predecessor sees a base that is not its state and reloads this
 *   snapshot from `key`; the predecessor's own record then arrives older than the state and is
 *   skipped. A consumer that has not applied it applies this record normally.
 * - The predecessor never lands: the same as late, without the skipped record.
 * - A snapshot published twice (a redelivery after a crash, or two instances): the same delta
 *   twice; the second is skipped by last_modified and content_sha256.
 *
 * Ordering: every record has one key (CHANGE_RECORD_KEY), so the stream is one partition in
 * produce order. Produce order follows landing order, which is last_modified order except for the
 * late cases above; the consumer's rules make those safe instead of the producer pretending to
 * a global order it cannot have with several source partitions.
 */
import { CompressionTypes, type Producer } from 'kafkajs';
import { classifyProduceFailure, kafkaReason } from '../dlq.ts';
import { describeError, KafkaUnavailableError, S3UnavailableError, SinkError } from '../errors.ts';
import type { Snapshot } from '../snapshot.ts';
import { CHANGE_RECORD_KEY, type ChangeRecord, type ChangeSource, changeRecord, DEFAULT_CHANGES_TOPIC, omittedRecord } from './change-record.ts';
import { computeDelta } from './delta.ts';

/** A snapshot as the archive (S3) holds it. */
export interface ArchivedSnapshot {
  readonly lastModified: number;
  readonly key: string;
  readonly snapshot: Snapshot;
}

/** The as-of lookup in the archive; its S3 adapter lives in src/archive/. */
export interface SnapshotArchive {
  /** The archived snapshot with the greatest last_modified strictly below `lastModified`, if any. */
  previousBefore(lastModified: number): Promise<ArchivedSnapshot | undefined>;
}

/** What AvroEncoder offers: Confluent-framed Avro under the changes topic's subject. */
export interface ChangeEncoder {
  encode(value: unknown): Promise<Buffer>;
}

/** The snapshot that just landed, as the sink wrote it. */
export interface LandedSnapshot extends ChangeSource {
  readonly snapshot: Snapshot;
}

export interface ChangePublisherPorts {
  readonly archive: SnapshotArchive;
  readonly encoder: ChangeEncoder;
  readonly producer: Pick<Producer, 'send'>;
}

export interface ChangePublisherOptions {
  /** Default `tow-and-go.changes`. */
  readonly topic?: string;
}

export interface PublishedChange {
  /** The record as sent (with empty lists when `delta_omitted`). */
  readonly record: ChangeRecord;
  readonly partition: number;
  /** The record's offset, as kafkajs gives it (a string), or undefined when the broker did not say. */
  readonly offset: string | undefined;
}

export class ChangePublisher {
  readonly #archive: SnapshotArchive;
  readonly #encoder: ChangeEncoder;
  readonly #producer: Pick<Producer, 'send'>;
  readonly topic: string;

  constructor(ports: ChangePublisherPorts, options: ChangePublisherOptions = {}) {
    this.#archive = ports.archive;
    this.#encoder = ports.encoder;
    this.#producer = ports.producer;
    this.topic = options.topic ?? DEFAULT_CHANGES_TOPIC;
  }

  /**
   * Computes and produces the change that `current` makes. Resolves once the broker has it (acks
   * all). Throws SinkErrors with `retryable` set: archive and Kafka failures are retryable (stall
   * and retry, like the DLQ), so a change is never skipped because a dependency misbehaved.
   */
  async publish(current: LandedSnapshot): Promise<PublishedChange> {
    const base = await this.#previous(current.lastModified);
    const delta = computeDelta(base?.snapshot.tow_and_go ?? [], current.snapshot.tow_and_go);
    const full = changeRecord(current, base, delta);
    // Encoding stays outside the produce handling: AvroEncoder classifies its own failures.
    const value = await this.#encoder.encode(full);
    try {
      return await this.#send(full, value);
    } catch (cause) {
      if (classifyProduceFailure(cause) !== 'too_large') throw this.#failed(cause);
    }
    // The broker refused the full delta as too large; the counts and keys still tell the consumer
    // what happened and where the snapshot is, and keep the stream moving.
    const omitted = omittedRecord(full);
    const small = await this.#encoder.encode(omitted);
    try {
      return await this.#send(omitted, small);
    } catch (cause) {
      throw this.#failed(cause);
    }
  }

  async #previous(lastModified: number): Promise<ArchivedSnapshot | undefined> {
    let base: ArchivedSnapshot | undefined;
    try {
      base = await this.#archive.previousBefore(lastModified);
    } catch (error) {
      if (error instanceof SinkError) throw error;
      // An unknown failure of an infrastructure call is retryable (src/errors.ts).
      throw new S3UnavailableError(`could not look up the snapshot before ${lastModified} in the archive: ${describeError(error)}`, { cause: error });
    }
    // A base at or after the snapshot would make a delta that goes backwards: an adapter bug, so not retryable.
    if (base !== undefined && base.lastModified >= lastModified) {
      throw new Error(`archive.previousBefore(${lastModified}) returned ${base.lastModified}, which is not earlier`);
    }
    return base;
  }

  async #send(record: ChangeRecord, value: Buffer): Promise<PublishedChange> {
    const [metadata] = await this.#producer.send({
      topic: this.topic,
      acks: -1,
      // A delta is mostly small; a first one (the whole snapshot) is several bytes a link, which gzip shrinks well.
      compression: CompressionTypes.GZIP,
      messages: [{ key: CHANGE_RECORD_KEY, value }],
    });
    return { record, partition: metadata?.partition ?? -1, offset: metadata?.baseOffset };
  }

  /** Like the DLQ: everything but a bug is retryable, so the partition stalls until Kafka or an operator fixes it. */
  #failed(cause: unknown): unknown {
    const reason = kafkaReason(cause);
    switch (classifyProduceFailure(cause)) {
      case 'bug':
        return cause;
      case 'retriable':
        return new KafkaUnavailableError(`could not produce to change topic ${this.topic} (${reason})`, { cause });
      case 'refused':
        return new KafkaUnavailableError(
          `change topic ${this.topic} refused the record (${reason}); it will until an operator fixes the topic or its ACLs, so the partition stalls`,
          { cause },
        );
      case 'too_large':
        return new KafkaUnavailableError(`change topic ${this.topic} refused even a change record without its lists (${reason}); raise its max.message.bytes`, {
          cause,
        });
    }
  }
}
