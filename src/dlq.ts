/**
 * The dead-letter topic: where a record goes when it can never become a snapshot.
 *
 * The original key, value bytes and headers are kept as they were, so a fixed consumer can replay
 * the DLQ. Error context goes in headers named after Kafka Connect's `__connect.errors.*`, so
 * tooling built for Connect's DLQs can read ours. The source offset is committed only after the
 * DLQ has the record, so no failed produce is ever final for the pipeline: it stalls and retries.
 *
 * A copy the topic will never accept (larger than its `max.message.bytes`, even gzipped) would
 * stall the partition for ever, so the DLQ then sends an envelope instead: the same headers, the
 * value's size and SHA-256, and an empty value. The source record stays findable by its topic,
 * partition and offset headers for as long as the source topic retains it.
 */
import { createHash } from 'node:crypto';
import { CompressionTypes, type IHeaders, type Producer } from 'kafkajs';
import { BUG_ERRORS, clearlyTooLarge, headersSize, type OutgoingRecord } from './dlq-limits.ts';
import { causeChain, KafkaUnavailableError, type SinkError } from './errors.ts';

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

/** Headers only an envelope carries: what was left out of it, and how to recognise the original. */
export const DLQ_ENVELOPE_HEADER = {
  valueOmitted: '__tow_and_go.errors.value_omitted',
  originalSize: '__tow_and_go.errors.original_size',
  originalSha256: '__tow_and_go.errors.original_sha256',
  headersOmitted: '__tow_and_go.errors.headers_omitted',
  originalHeadersSize: '__tow_and_go.errors.original_headers_size',
  keyOmitted: '__tow_and_go.errors.key_omitted',
  originalKeySize: '__tow_and_go.errors.original_key_size',
} as const;

/** Pure: the error headers alone, without the record's own. */
export function errorHeaders(record: SourceRecord, error: SinkError, schemaId: number | undefined, failedAt: Date): IHeaders {
  const headers: IHeaders = {};
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

/** Pure: the headers of the dead-letter copy. Original headers come first and are never dropped. */
export function deadLetterHeaders(record: SourceRecord, error: SinkError, schemaId: number | undefined, failedAt: Date): IHeaders {
  return { ...(record.headers ?? {}), ...errorHeaders(record, error, schemaId, failedAt) };
}

/**
 * How much of the original a dead-letter record leaves out, smallest loss first; each step also
 * leaves out what the steps before it did. Only `value` is expected in practice (an over-size
 * value); `headers` and `key` exist so that no original, however odd, can stall the partition.
 */
export const OMISSIONS = ['nothing', 'value', 'headers', 'key'] as const;
export type Omission = (typeof OMISSIONS)[number];

/**
 * Pure: the dead-letter record that leaves out `omit`. An envelope's value is empty, not null: on a
 * compacted DLQ topic a null value is a tombstone and the envelope would be deleted.
 */
export function deadLetterRecord(record: SourceRecord, extra: IHeaders, omit: Omission): OutgoingRecord {
  const original = record.headers ?? {};
  if (omit === 'nothing') return { key: record.key, value: record.value, headers: { ...original, ...extra } };
  const level = OMISSIONS.indexOf(omit);
  const markers: IHeaders = { [DLQ_ENVELOPE_HEADER.valueOmitted]: 'true' };
  // No size or hash for a null value: their absence is how the envelope says the value was null.
  if (record.value !== null) {
    markers[DLQ_ENVELOPE_HEADER.originalSize] = String(record.value.length);
    markers[DLQ_ENVELOPE_HEADER.originalSha256] = createHash('sha256').update(record.value).digest('hex');
  }
  if (level >= OMISSIONS.indexOf('headers')) {
    markers[DLQ_ENVELOPE_HEADER.headersOmitted] = 'true';
    markers[DLQ_ENVELOPE_HEADER.originalHeadersSize] = String(headersSize(original));
  }
  const omitKey = level >= OMISSIONS.indexOf('key');
  if (omitKey) {
    markers[DLQ_ENVELOPE_HEADER.keyOmitted] = 'true';
    if (record.key !== null) markers[DLQ_ENVELOPE_HEADER.originalKeySize] = String(record.key.length);
  }
  const kept = level >= OMISSIONS.indexOf('headers') ? {} : original;
  return { key: omitKey ? null : record.key, value: Buffer.alloc(0), headers: { ...kept, ...extra, ...markers } };
}

/**
 * What a failed `producer.send` means, read from kafkajs' own `retriable` flags:
 * - `too_large`: the broker refused the batch as too large (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE);
 *   the same bytes will never pass, a smaller record may.
 * - `retriable`: kafkajs gave up on something that may pass (broker down, leader moving, topic
 *   metadata missing). kafkajs wraps it in KafkaJSNumberOfRetriesExceeded, which is itself marked
 *   not retriable; like kafkajs' consumer (onCrash), the wrapper and the original cause decide.
 * - `refused`: the original cause says `retriable: false`; the broker will keep refusing until an
 *   operator acts (TOPIC_AUTHORIZATION_FAILED, INVALID_RECORD, a SASL failure).
 * - `bug`: TypeError and friends, which kafkajs itself never retries.
 */
export type ProduceFailure = 'too_large' | 'retriable' | 'refused' | 'bug';

const TOO_LARGE: ReadonlySet<string> = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

export function classifyProduceFailure(error: unknown): ProduceFailure {
  const chain = causeChain(error);
  if (chain.some((e) => TOO_LARGE.has(String(field(e, 'type'))))) return 'too_large';
  const original = chain[chain.length - 1];
  if (original instanceof Error && BUG_ERRORS.has(original.name)) return 'bug';
  if (field(error, 'name') === 'KafkaJSNumberOfRetriesExceeded') return 'retriable';
  // Only an explicit `retriable: false` counts as a refusal; kafkajs' retrier retries an unflagged error too.
  return field(original, 'retriable') === false ? 'refused' : 'retriable';
}

function field(value: unknown, name: 'type' | 'name' | 'retriable'): unknown {
  return typeof value === 'object' && value !== null && name in value ? (value as Record<string, unknown>)[name] : undefined;
}

/** `TYPE: message` of the innermost cause, for an error message that tells the operator what Kafka said. */
export function kafkaReason(error: unknown): string {
  const chain = causeChain(error);
  const original = chain[chain.length - 1];
  const type = field(original, 'type') ?? field(original, 'name');
  const message = original instanceof Error ? original.message : String(original);
  return typeof type === 'string' ? `${type}: ${message}` : message;
}

export interface DeadLetterOptions {
  /** The topic's `max.message.bytes` (from checkDeadLetterLimits): records clearly over it skip straight to an envelope. */
  readonly maxMessageBytes?: number | undefined;
}

export class KafkaDeadLetterQueue implements DeadLetterPort {
  readonly #producer: Pick<Producer, 'send'>;
  readonly #topic: string;
  readonly #maxMessageBytes: number | undefined;

  constructor(producer: Pick<Producer, 'send'>, topic: string, options: DeadLetterOptions = {}) {
    this.#producer = producer;
    this.#topic = topic;
    this.#maxMessageBytes = options.maxMessageBytes;
  }

  /**
   * Sends the fullest record the topic accepts. Every failure but a bug is retryable for the
   * pipeline, on purpose even when kafkajs says it will not pass: a refused DLQ produce is an
   * operator's problem (ACLs, a missing topic, a tiny limit), and stalling keeps the source record
   * uncommitted until it is fixed. Dead-lettering it elsewhere or skipping it would lose it, and
   * crashing would only restart into the same refusal.
   */
  async send(record: SourceRecord, error: SinkError, schemaId: number | undefined): Promise<void> {
    const extra = errorHeaders(record, error, schemaId, new Date());
    const last = OMISSIONS[OMISSIONS.length - 1];
    for (const omit of OMISSIONS) {
      const outgoing = deadLetterRecord(record, extra, omit);
      if (omit !== last && this.#maxMessageBytes !== undefined && (await clearlyTooLarge(outgoing, this.#maxMessageBytes))) continue;
      try {
        await this.#producer.send({ topic: this.#topic, acks: -1, compression: CompressionTypes.GZIP, messages: [{ ...outgoing }] });
        return;
      } catch (cause) {
        const failure = classifyProduceFailure(cause);
        if (failure === 'too_large' && omit !== last) continue;
        throw this.#failed(failure, cause);
      }
    }
  }

  #failed(failure: ProduceFailure, cause: unknown): unknown {
    const reason = kafkaReason(cause);
    switch (failure) {
      case 'bug':
        return cause;
      case 'retriable':
        return new KafkaUnavailableError(`could not produce to dead-letter topic ${this.#topic} (${reason})`, { cause });
      case 'refused':
        return new KafkaUnavailableError(
          `dead-letter topic ${this.#topic} refused the record (${reason}); it will until an operator fixes the topic or its ACLs, so the partition stalls`,
          { cause },
        );
      case 'too_large':
        return new KafkaUnavailableError(
          `dead-letter topic ${this.#topic} refused even an envelope without value, headers or key (${reason}); raise its max.message.bytes`,
          { cause },
        );
    }
  }
}
