/**
 * How big a dead-letter record is, and how big the dead-letter topic lets it be.
 *
 * The broker compares each produced record batch (after compression, its 61-byte header included)
 * with the topic's `max.message.bytes`, and refuses a larger one with MESSAGE_TOO_LARGE for ever.
 * MAX_PAYLOAD_BYTES (4 MiB by default) lets the source carry values four times the broker's
 * default limit (1 MiB), so the DLQ must know the limit to send an envelope instead of a copy that
 * can never land. The sizes here are estimates made without kafkajs' internal record encoder: an
 * upper bound says "surely fits", a gzip of the bytes says "clearly too large", and the broker's
 * own refusal settles everything in between.
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import kafkajs, { type Admin, type IHeaders, type Kafka, type ConfigResourceTypes as ResourceType } from 'kafkajs';

// kafkajs is CommonJS and Node's ESM loader cannot see this export by name (vitest can): take it
// from the default export, or the real process fails to start.
const { ConfigResourceTypes } = kafkajs;

import type { Logger } from 'pino';
import { describeError } from './errors.ts';

/** A v2 record batch around its records: offset, length, epoch, magic, CRC, attributes, deltas, timestamps, producer id/epoch, sequence, count. */
export const BATCH_OVERHEAD_BYTES = 61;
/** One record's own fields at their widest varints: length, attributes, timestamp and offset deltas, key and value lengths, header count. */
const RECORD_OVERHEAD_BYTES = 5 + 1 + 10 + 5 + 5 + 5 + 5;
/** One header's key and value lengths at their widest varints. */
const HEADER_OVERHEAD_BYTES = 5 + 5;
/** Room the DLQ copy needs beside the value: error headers, batch and record framing, and typical original headers. */
export const DLQ_HEADER_ALLOWANCE_BYTES = 16 * 1024;

const gzipAsync = promisify(gzip);

/** A record as the DLQ hands it to kafkajs' `producer.send`. */
export interface OutgoingRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: IHeaders;
}

/** Header name and value pairs as Kafka stores them: an array value is one header per element. */
export function headerPairs(headers: IHeaders): Array<[string, Buffer | string]> {
  const pairs: Array<[string, Buffer | string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) pairs.push([name, one]);
  }
  return pairs;
}

/** Bytes of header names and values, without framing: what `original_headers_size` reports. */
export function headersSize(headers: IHeaders): number {
  let size = 0;
  for (const [name, value] of headerPairs(headers)) size += Buffer.byteLength(name) + Buffer.byteLength(value);
  return size;
}

/** Uncompressed size of a one-record batch, never less than the real encoding. */
export function recordSizeBound(record: OutgoingRecord): number {
  let size = BATCH_OVERHEAD_BYTES + RECORD_OVERHEAD_BYTES + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const [name, value] of headerPairs(record.headers)) size += HEADER_OVERHEAD_BYTES + Buffer.byteLength(name) + Buffer.byteLength(value);
  return size;
}

/** zlib's deflateBound plus the gzip wrapper: what gzip can make of n incompressible bytes at worst. */
export function gzipSizeBound(n: number): number {
  return n + (n >> 12) + (n >> 14) + (n >> 25) + 13 + 18;
}

/**
 * True when the gzipped batch surely exceeds `limit`, so sending it would only earn a
 * MESSAGE_TOO_LARGE. Cheap when the record surely fits even incompressible; otherwise the bytes are
 * gzipped (off the event loop) as kafkajs' GZIP codec will. The estimate leaves out the varint
 * framing, so it errs small: a miss costs one refused round trip, never a wrongly omitted value.
 */
export async function clearlyTooLarge(record: OutgoingRecord, limit: number): Promise<boolean> {
  const bound = recordSizeBound(record);
  if (BATCH_OVERHEAD_BYTES + gzipSizeBound(bound - BATCH_OVERHEAD_BYTES) <= limit) return false;
  const parts: Buffer[] = [];
  if (record.key !== null) parts.push(record.key);
  if (record.value !== null) parts.push(record.value);
  for (const [name, value] of headerPairs(record.headers)) parts.push(Buffer.from(name), Buffer.isBuffer(value) ? value : Buffer.from(value));
  const compressed = await gzipAsync(Buffer.concat(parts));
  return BATCH_OVERHEAD_BYTES + compressed.length > limit;
}

export interface DeadLetterLimits {
  /** The DLQ topic's `max.message.bytes`; undefined when it could not be read (the DLQ then learns from refusals). */
  readonly maxMessageBytes: number | undefined;
  /** One line for the startup log. */
  readonly line: string;
  /** `warn` when the operator has something to act on. */
  readonly level: 'info' | 'warn';
}

export type LimitsAdmin = Pick<Admin, 'describeConfigs' | 'describeCluster'>;

const ENVELOPE = 'dead-lettered as envelopes (headers, size and SHA-256; value omitted)';

/**
 * Reads the DLQ topic's `max.message.bytes` and says what it means for MAX_PAYLOAD_BYTES. A topic
 * without an override reports the broker's `message.max.bytes` as its value, so one describe is
 * enough. Never fails the start for a Kafka reason: a missing DescribeConfigs ACL must not stop
 * the sink, because the DLQ still falls back to an envelope when the broker refuses a copy.
 */
export async function checkDeadLetterLimits(admin: LimitsAdmin, topic: string, maxPayloadBytes: number): Promise<DeadLetterLimits> {
  let limit: number;
  try {
    limit = await describedLimit(admin, ConfigResourceTypes.TOPIC, topic, 'max.message.bytes');
  } catch (error) {
    rethrowBug(error);
    if (protocolType(error) !== 'UNKNOWN_TOPIC_OR_PARTITION') return unreadable(topic, error);
    // The topic may be created later without an override: the broker's default is what it will get.
    try {
      const { controller, brokers } = await admin.describeCluster();
      const broker = controller ?? brokers[0]?.nodeId;
      if (broker === undefined) return unreadable(topic, error);
      limit = await describedLimit(admin, ConfigResourceTypes.BROKER, String(broker), 'message.max.bytes');
    } catch (brokerError) {
      rethrowBug(brokerError);
      return unreadable(topic, brokerError);
    }
    return {
      maxMessageBytes: limit,
      level: 'warn',
      line: `DLQ topic ${topic} does not exist: dead-lettering stalls until it is created (the broker's default accepts ${limit} bytes per record)`,
    };
  }
  if (maxPayloadBytes + DLQ_HEADER_ALLOWANCE_BYTES <= limit) {
    return {
      maxMessageBytes: limit,
      level: 'info',
      line: `DLQ topic ${topic} accepts ${limit} bytes per record; MAX_PAYLOAD_BYTES is ${maxPayloadBytes}: dead-lettered values fit as full copies`,
    };
  }
  return {
    maxMessageBytes: limit,
    level: 'warn',
    line:
      `DLQ topic ${topic} accepts ${limit} bytes per record; MAX_PAYLOAD_BYTES is ${maxPayloadBytes}: records over the limit are ${ENVELOPE}; ` +
      `for full copies set its max.message.bytes to at least ${maxPayloadBytes + DLQ_HEADER_ALLOWANCE_BYTES}`,
  };
}

async function describedLimit(admin: LimitsAdmin, type: ResourceType, name: string, config: string): Promise<number> {
  const response = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type, name, configNames: [config] }] });
  const value = response.resources[0]?.configEntries.find((e) => e.configName === config)?.configValue;
  const bytes = Number(value);
  // A missing or odd value is a Kafka answer we cannot use, not a bug: report it as unreadable.
  if (value === undefined || value === '' || !Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`${config} of ${name} is ${String(value)}`);
  return bytes;
}

function unreadable(topic: string, error: unknown): DeadLetterLimits {
  return {
    maxMessageBytes: undefined,
    level: 'warn',
    line: `could not read max.message.bytes of DLQ topic ${topic} (${describeError(error)}): records the broker refuses as too large are ${ENVELOPE}`,
  };
}

function protocolType(error: unknown): unknown {
  return error instanceof Error && 'type' in error ? error.type : undefined;
}

/** kafkajs' own list of errors it never retries because they are bugs (src/retry/index.js). */
export const BUG_ERRORS: ReadonlySet<string> = new Set(['RangeError', 'ReferenceError', 'SyntaxError', 'TypeError']);

function rethrowBug(error: unknown): void {
  if (error instanceof Error && BUG_ERRORS.has(error.name)) throw error;
}

/** Says once, at start, whether a record of MAX_PAYLOAD_BYTES fits the DLQ topic whole. Never fatal. */
export async function logDeadLetterLimits(kafka: Pick<Kafka, 'admin'>, topic: string, maxPayloadBytes: number, log: Logger): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const limits = await checkDeadLetterLimits(admin, topic, maxPayloadBytes);
    log[limits.level]({ topic: topic, maxMessageBytes: limits.maxMessageBytes }, limits.line);
  } catch (error) {
    log.warn({ err: describeError(error) }, 'could not read the DLQ topic limits; over-size dead letters fall back on the broker refusing them');
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
