/**
 * In-memory fakes of the pipeline's ports (decoder, sink, DLQ, source control), shared by the
 * pipeline's unit tests. The sink keeps the real conditional-write semantics (first writer wins,
 * identical bytes are a no-op, anything else conflicts); the control models what the real source
 * does (see src/source/consumer.ts).
 */
import pino from 'pino';
import { KeySequencer } from '../../src/batch/key-sequencer.ts';
import type { Framed } from '../../src/codec.ts';
import type { DeadLetterPort, SourceRecord } from '../../src/dlq.ts';
import { ConflictError, DecodeError, type SinkError } from '../../src/errors.ts';
import { Metrics } from '../../src/metrics.ts';
import { type BatchControl, type Outcome, Pipeline, type PipelineSettings, type RecordDecoder } from '../../src/pipeline.ts';
import type { PlanOutcome, SnapshotObject, SnapshotSink, WriteOutcome } from '../../src/sink/s3.ts';

export const NOW = 1_700_000_000;
export const SCHEMA_ID = 7;

// ---------------------------------------------------------------------------------------------
// Small helpers and in-memory fakes of the pipeline's ports.
// ---------------------------------------------------------------------------------------------

export { type Deferred, deferred, flush, until } from './async.ts';

export interface Link {
  link_id: number;
  segment_id: number | null;
}

export function record(offset: string, lastModified = NOW, options: { key?: string | null; links?: Link[]; partition?: number } = {}): SourceRecord {
  const key = options.key === undefined ? String(lastModified) : options.key;
  const value = { last_modified: lastModified, tow_and_go: options.links ?? [{ link_id: 1, segment_id: null }] };
  return {
    topic: 'tow-and-go.updates',
    partition: options.partition ?? 0,
    offset,
    timestamp: '1700000000000',
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from(JSON.stringify(value)),
    headers: undefined,
  };
}

/** Decodes JSON values; a per-offset script can throw or wait instead. */
export class FakeDecoder implements RecordDecoder {
  readonly calls: (Buffer | null)[] = [];
  before: (text: string) => Promise<void> | void = () => undefined;

  /** JSON stands in for Avro here, so records are never `plain` (the transcoder reads Avro only). */
  async frame(bytes: Buffer | null): Promise<Framed> {
    this.calls.push(bytes);
    if (bytes === null) throw new DecodeError('PAYLOAD_NULL', 'record value is null (tombstone)');
    const text = bytes.toString('utf8');
    await this.before(text);
    return { schemaId: SCHEMA_ID, plain: false, avro: bytes, decode: () => JSON.parse(text) };
  }
}

/** Conditional-write semantics of the real sink: first writer wins, identical bytes are a no-op, anything else conflicts. */
export class FakeSink implements SnapshotSink {
  readonly objects = new Map<string, SnapshotObject>();
  readonly writes: SnapshotObject[] = [];
  readonly plans: SnapshotObject[] = [];
  readonly finished: string[] = [];
  active = 0;
  maxActive = 0;
  before: (object: SnapshotObject, attempt: number) => Promise<void> | void = () => undefined;
  readonly #attempts = new Map<string, number>();

  async write(object: SnapshotObject): Promise<WriteOutcome> {
    this.writes.push(object);
    const attempt = this.#attempts.get(object.lineage.offset) ?? 0;
    this.#attempts.set(object.lineage.offset, attempt + 1);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await this.before(object, attempt);
      const existing = this.objects.get(object.key);
      if (existing !== undefined) {
        if (existing.sha256 !== object.sha256) throw new ConflictError(`conflict: ${object.key} already holds a different snapshot`);
        this.finished.push(object.lineage.offset);
        return 'unchanged';
      }
      this.objects.set(object.key, object);
      this.finished.push(object.lineage.offset);
      return 'created';
    } finally {
      this.active--;
    }
  }

  async plan(object: SnapshotObject): Promise<PlanOutcome> {
    this.plans.push(object);
    const existing = this.objects.get(object.key);
    if (existing === undefined) return 'would_create';
    return existing.sha256 === object.sha256 ? 'unchanged' : 'would_conflict';
  }

  async close(): Promise<void> {}
}

export interface DeadLetter {
  readonly record: SourceRecord;
  readonly error: SinkError;
  readonly schemaId: number | undefined;
}

export class FakeDlq implements DeadLetterPort {
  readonly sent: DeadLetter[] = [];
  calls = 0;
  before: (attempt: number) => Promise<void> | void = () => undefined;

  async send(record: SourceRecord, error: SinkError, schemaId: number | undefined): Promise<void> {
    const attempt = this.calls++;
    await this.before(attempt);
    this.sent.push({ record, error, schemaId });
  }
}

/** The source's side of a batch. kafkajs' revocation is modelled by the source (membership.ts); here it is just `active`. */
export class FakeControl implements BatchControl {
  active = true;
  readonly checkpoints: string[] = [];
  onCheckpoint: (offset: string) => void = () => undefined;

  /** Undefined: commits follow `active` (revocation); a boolean models a graceful shutdown. */
  committable: boolean | undefined;

  isActive(): boolean {
    return this.active;
  }

  canCommit(): boolean {
    return this.committable ?? this.active;
  }

  async checkpoint(offset: string): Promise<void> {
    this.onCheckpoint(offset);
    this.checkpoints.push(offset);
  }
}

export const SETTINGS: PipelineSettings = {
  prefix: 'tow-and-go/',
  compression: 'none',
  limits: { minLastModified: 946_684_800, maxFutureSkewSeconds: 86_400, maxLinks: 100 },
  maxPayloadBytes: 1024 * 1024,
  inflightPerPartition: 8,
  maxInflightBytes: 64 * 1024 * 1024,
  maxProcessInflightBytes: 256 * 1024 * 1024,
  retryInitialMs: 100,
  retryMaxMs: 1000,
  commitIntervalMs: 0,
};

export function setup(overrides: Partial<PipelineSettings> = {}, random = () => 0.5) {
  const decoder = new FakeDecoder();
  const sink = new FakeSink();
  const dlq = new FakeDlq();
  const control = new FakeControl();
  const metrics = new Metrics();
  const pipeline: Pipeline = new Pipeline(
    { ...SETTINGS, ...overrides },
    { decoder, sink, dlq, log: pino({ level: 'silent' }), metrics, nowSeconds: () => NOW, random },
  );
  return { pipeline, decoder, sink, dlq, control, metrics };
}

/** One record on its own (a batch of one, as far as key order goes). */
export function once(pipeline: Pipeline, r: SourceRecord): Promise<Outcome | undefined> {
  return pipeline.processOnce(r, new KeySequencer().next());
}
