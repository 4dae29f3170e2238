/**
 * Every failure in the sink is one of these. The pipeline acts on `retryable` alone:
 * a retryable error stalls the partition and retries (never the DLQ); a permanent one routes the
 * record to the dead-letter topic. Classification happens at each adapter boundary, so nothing
 * downstream ever matches on message strings.
 *
 * The default is *not* retryable, except where noted: an unknown failure of an infrastructure call
 * (S3, registry, Kafka) is treated as retryable by that adapter's `classify`, because sending a good
 * record to the DLQ because a dependency misbehaved would lose it from the main path.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'PAYLOAD_NULL'
  | 'PAYLOAD_TOO_LARGE'
  | 'WIRE_FORMAT_INVALID'
  | 'AVRO_DECODE_FAILED'
  | 'SCHEMA_UNKNOWN'
  | 'SCHEMA_INCOMPATIBLE'
  | 'VALIDATION_FAILED'
  | 'OBJECT_CONFLICT'
  | 'OBJECT_CORRUPT'
  | 'REGISTRY_UNAVAILABLE'
  | 'S3_UNAVAILABLE'
  | 'S3_REJECTED'
  | 'KAFKA_UNAVAILABLE'
  | 'DEPENDENCY_REFUSED'
  | 'INPUT_INVALID';

export interface SinkErrorOptions {
  cause?: unknown;
}

export class SinkError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, retryable: boolean, options: SinkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = retryable;
  }
}

/** A setting is missing or malformed. Raised before any connection opens. */
export class ConfigError extends SinkError {
  constructor(message: string) {
    super('CONFIG_INVALID', message, false);
  }
}

/** The record's bytes can never be decoded: routed to the DLQ. */
export class DecodeError extends SinkError {
  readonly schemaId: number | undefined;

  constructor(
    code: 'PAYLOAD_NULL' | 'PAYLOAD_TOO_LARGE' | 'WIRE_FORMAT_INVALID' | 'AVRO_DECODE_FAILED' | 'SCHEMA_UNKNOWN' | 'SCHEMA_INCOMPATIBLE',
    message: string,
    schemaId?: number,
    options: SinkErrorOptions = {},
  ) {
    super(code, message, false, options);
    this.schemaId = schemaId;
  }
}

/** Decoded fine but is not a valid snapshot. `cause` carries zod's issues. */
export class ValidationError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super('VALIDATION_FAILED', message, false, options);
  }
}

/** A different snapshot already owns this key and overwrites are off. */
export class ConflictError extends SinkError {
  constructor(message: string) {
    super('OBJECT_CONFLICT', message, false);
  }
}

/**
 * A stored object is not what its metadata or its format says (a body whose SHA-256 differs from
 * content-sha256, a latest pointer that is not the pointer document). Reading it again gives the
 * same bytes, so it is not retryable; the message names the key.
 */
export class CorruptObjectError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super('OBJECT_CORRUPT', message, false, options);
  }
}

/** The registry could not answer: stall and retry, never DLQ. */
export class RegistryUnavailableError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super('REGISTRY_UNAVAILABLE', message, true, options);
  }
}

/** S3 failed in a way that may pass (5xx, throttling, timeout, network). */
export class S3UnavailableError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super('S3_UNAVAILABLE', message, true, options);
  }
}

/**
 * S3 refused the request for a reason that will not pass by retrying the same request
 * (403 AccessDenied, NoSuchBucket). It is still an infrastructure problem, not a bad record, so it
 * stalls instead of routing: an operator fixes the bucket or policy and the sink resumes.
 */
export class S3RejectedError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super('S3_REJECTED', message, true, options);
  }
}

/** A produce (DLQ, publisher) failed; kafkajs reconnects underneath. Commit failures stay kafkajs' own errors. */
export class KafkaUnavailableError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super('KAFKA_UNAVAILABLE', message, true, options);
  }
}

/** The three dependencies the start-up checks ask (src/preflight.ts). */
export type Dependency = 'kafka' | 'schema registry' | 's3';

/** What a dependency refused, and why, in the parts the one exit line is made of. */
export interface Refusal {
  readonly dependency: Dependency;
  /** What was refused: "the connection", "access to topic x", "the request". */
  readonly refused: string;
  /** What is wrong, in the service's words: "authentication failed". */
  readonly problem: string;
  /** The settings (or, where no setting applies, the thing) to look at. */
  readonly check: readonly string[];
  /** The broker's or server's own reason, as it gave it (made one line). Never holds a secret. */
  readonly reason: string;
}

/**
 * A dependency refused the service for a reason that retrying will not fix: a wrong password, a
 * missing ACL, an untrusted certificate, a missing bucket. Raised by the start-up checks and when
 * kafkajs stops the consumer for such a reason. The CLI prints its message, one line, and exits 2:
 * `kafka refused the connection: authentication failed (check KAFKA_SASL_USERNAME / …): <reason>`.
 */
export class DependencyRefusedError extends SinkError {
  readonly refusal: Refusal;

  constructor(refusal: Refusal, options: SinkErrorOptions = {}) {
    const r = refusal;
    super('DEPENDENCY_REFUSED', `${r.dependency} refused ${r.refused}: ${r.problem} (check ${r.check.join(' / ')}): ${oneLine(r.reason)}`, false, options);
    this.refusal = refusal;
  }
}

/** Longest reason kept on the exit line; servers' messages can be long (an OpenSSL error, a page of HTML). */
const MAX_REASON_CHARS = 300;

/** Whitespace runs (newlines included) as one space, trimmed and bounded: an exit line is one line. */
export function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= MAX_REASON_CHARS ? line : `${line.slice(0, MAX_REASON_CHARS - 1)}…`;
}

/** Publisher input (a file or stdin line) is not a valid snapshot. */
export class InputError extends SinkError {
  constructor(message: string, options: SinkErrorOptions = {}) {
    super('INPUT_INVALID', message, false, options);
  }
}

export function isSinkError(error: unknown): error is SinkError {
  return error instanceof SinkError;
}

/** One line, for logs: never includes payload bytes. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * The error, its cause, its cause's cause…, bounded against cycles. kafkajs' retrier wraps the
 * broker's error (KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded) and keeps it as `cause`.
 */
export function causeChain(error: unknown): unknown[] {
  const chain = [error];
  for (let e = error; chain.length < 10 && e instanceof Error && e.cause !== undefined && e.cause !== e; e = e.cause) chain.push(e.cause);
  return chain;
}
