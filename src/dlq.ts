/**
 * The dead-letter topic: where a record goes when it can never become a snapshot.
 *
 * The original key, value bytes and headers are kept as they were, so a fixed consumer can replay
 * the DLQ. Error context goes in headers named after Kafka Connect's `__connect.errors.*`, so
 * tooling built for Connect's DLQs can read ours. A failed produce is retryable: the source offset
 * is committed only after the DLQ has the record.
 */
import type { IHeaders, Producer } from 'kafkajs';
import { KafkaUnavailableError, type SinkError } from './errors.ts';

export interface SourceRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** Record timestamp, ms since epoch as a string (kafkajs' representation). */
  readonly timestamp: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: IHeaders | undefined;
}

export interface DeadLetterPort {
  send(record: SourceRecord, error: SinkError, schemaId: number | undefined): Promise<void>;
}

export const DLQ_HEADER = {
  topic: '__connect.errors.topic',
  partition: '__connect.errors.partition',
  offset: '__connect.errors.offset',
  timestamp: '__connect.errors.timestamp',
  errorClass: '__connect.errors.exception.class.name',
  message: '__connect.errors.exception.message',
  code: '__tow_and_go.errors.code',
  schemaId: '__tow_and_go.errors.schema_id',
  failedAt: '__tow_and_go.errors.failed_at',
} as const;

/** Pure: the headers of the dead-letter copy. Original headers come first and are never dropped. */
export function deadLetterHeaders(record: SourceRecord, error: SinkError, schemaId: number | undefined, failedAt: Date): IHeaders {
  const headers: IHeaders = { ...(record.headers ?? {}) };
  headers[DLQ_HEADER.topic] = record.topic;
  headers[DLQ_HEADER.partition] = String(record.partition);
  headers[DLQ_HEADER.offset] = record.offset;
  headers[DLQ_HEADER.timestamp] = record.timestamp;
  headers[DLQ_HEADER.errorClass] = error.name;
  headers[DLQ_HEADER.message] = error.message;
  headers[DLQ_HEADER.code] = error.code;
  if (schemaId !== undefined) headers[DLQ_HEADER.schemaId] = String(schemaId);
  headers[DLQ_HEADER.failedAt] = failedAt.toISOString();
  return headers;
}

export class KafkaDeadLetterQueue implements DeadLetterPort {
  readonly #producer: Producer;
  readonly #topic: string;

  constructor(producer: Producer, topic: string) {
    this.#producer = producer;
    this.#topic = topic;
  }

  async send(record: SourceRecord, error: SinkError, schemaId: number | undefined): Promise<void> {
    try {
      await this.#producer.send({
        topic: this.#topic,
        acks: -1,
        messages: [{ key: record.key, value: record.value, headers: deadLetterHeaders(record, error, schemaId, new Date()) }],
      });
    } catch (cause) {
      throw new KafkaUnavailableError(`could not produce to dead-letter topic ${this.#topic}`, { cause });
    }
  }
}
