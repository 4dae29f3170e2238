/**
 * Confluent wire format + Avro. Decode is pure apart from the writer schema lookup
 * (registry-client.ts): it returns the decoded value and the writer schema id, and classifies every
 * failure. The reader and its resolver are built once per writer schema id, never per message.
 * Writer schemas are read as the snapshot schema with the registries' own compatibility rules
 * (schema-resolution.ts), so what a registry accepts under the subject is what this reads.
 */
import { readFileSync } from 'node:fs';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro, { type Resolver, type Type } from 'avsc';
import { AvroShapeError, assertWellFormedAvro } from './avro-guard.ts';
import { DecodeError, describeError, RegistryUnavailableError } from './errors.ts';
import { type RegistrySchema, type RegistrySettings, registryAgent, registryEndpoint, SchemaLookup } from './registry-client.ts';
import { resolveWriter, SchemaResolutionError } from './schema-resolution.ts';

export type { RegistrySettings } from './registry-client.ts';

export const SNAPSHOT_SCHEMA_PATH = new URL('../avro/tow-and-go-snapshot.avsc', import.meta.url);
const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;
/** avsc's reasons are short; the cap only keeps a surprise from bloating DLQ headers and logs. */
const MAX_REASON_CHARS = 300;

export interface Decoded {
  readonly schemaId: number;
  readonly value: unknown;
}

/** A record's Avro body and its writer schema, not yet decoded: the fast path may not need avsc. */
export interface Framed {
  readonly schemaId: number;
  /** The writer schema is the snapshot schema itself, so the body can be transcoded as it is. */
  readonly plain: boolean;
  /** The Avro body, after the 5-byte Confluent header. */
  readonly avro: Buffer;
  /** avsc's decode behind the structural guard; throws DecodeError AVRO_DECODE_FAILED. */
  decode(): unknown;
}

interface WriterEntry {
  readonly writer: Type;
  /** The snapshot schema, or its copy that also answers to the writer's names. */
  readonly reader: Type;
  /** Absent when the writer schema is the reader schema. */
  readonly resolver: Resolver | undefined;
}

export function loadSnapshotSchema(): { raw: string; type: Type } {
  const raw = readFileSync(SNAPSHOT_SCHEMA_PATH, 'utf8');
  return { raw, type: avro.Type.forSchema(JSON.parse(raw) as avro.Schema) };
}

type RegistryMiddleware = NonNullable<ConstructorParameters<typeof SchemaRegistry>[0]['middlewares']>[number];

/** Every registry request gets a timeout: a hung registry must not hold a partition forever. */
function timeoutMiddleware(timeoutMs: number): RegistryMiddleware {
  return () => ({
    prepareRequest: async (next) => (await next()).enhance({ timeout: timeoutMs }),
  });
}

/**
 * The library client, which registers and encodes for the publisher. Credentials as registryEndpoint
 * reads them (never in the host it is given), and the same kind of agent as the lookup, so a
 * private CA is trusted by both.
 */
export function createRegistry(settings: RegistrySettings): SchemaRegistry {
  const { url, auth } = registryEndpoint(settings);
  return new SchemaRegistry({
    host: url,
    clientId: 'tow-and-go-sink',
    agent: registryAgent(url, settings.ca),
    ...(auth === undefined ? {} : { auth: { ...auth } }),
    // Callers own real retries; one quick retry here only smooths over a dropped connection.
    retry: { retries: 1, initialRetryTimeInSecs: 0.1, maxRetryTimeInSecs: 1 },
    middlewares: [timeoutMiddleware(settings.timeoutMs)],
  });
}

export class AvroCodec {
  readonly #lookup: SchemaLookup;
  readonly #reader: Type;
  readonly #writers = new Map<number, Promise<WriterEntry>>();

  constructor(settings: RegistrySettings, reader: Type) {
    this.#lookup = new SchemaLookup(settings);
    this.#reader = reader;
  }

  async decode(bytes: Buffer | null, maxPayloadBytes: number): Promise<Decoded> {
    const framed = await this.frame(bytes, maxPayloadBytes);
    return { schemaId: framed.schemaId, value: framed.decode() };
  }

  /** Size and header checks happen before any lookup; decoding is left to the caller. */
  async frame(bytes: Buffer | null, maxPayloadBytes: number): Promise<Framed> {
    if (bytes === null) throw new DecodeError('PAYLOAD_NULL', 'record value is null (tombstone)');
    if (bytes.length > maxPayloadBytes)
      throw new DecodeError('PAYLOAD_TOO_LARGE', `record value is ${bytes.length} bytes, over the ${maxPayloadBytes}-byte limit`);
    if (bytes.length < HEADER_BYTES)
      throw new DecodeError('WIRE_FORMAT_INVALID', `record value is ${bytes.length} bytes, shorter than the 5-byte Confluent header`);
    if (bytes[0] !== MAGIC_BYTE) throw new DecodeError('WIRE_FORMAT_INVALID', `wrong magic byte ${bytes[0]} (expected 0: Confluent wire format)`);
    const schemaId = bytes.readInt32BE(1);
    const writer = await this.#writerFor(schemaId);
    const avro = bytes.subarray(HEADER_BYTES);
    return { schemaId, plain: writer.resolver === undefined, avro, decode: () => decodeBody(avro, schemaId, writer) };
  }

  #writerFor(schemaId: number): Promise<WriterEntry> {
    let entry = this.#writers.get(schemaId);
    if (entry === undefined) {
      entry = this.#lookup.get(schemaId).then((found) => this.#readerFor(schemaId, found));
      this.#writers.set(schemaId, entry);
      // Failed lookups are not cached: an outage must not poison the cache. (Unknown ids are
      // remembered briefly by the lookup itself.)
      entry.catch(() => this.#writers.delete(schemaId));
    }
    return entry;
  }

  /** Builds the writer type and the way to read it as the snapshot schema; once per schema id. */
  #readerFor(schemaId: number, found: RegistrySchema): WriterEntry {
    const incompatible = (why: string, cause?: unknown) =>
      new DecodeError('SCHEMA_INCOMPATIBLE', `schema id ${schemaId} ${why}`, schemaId, cause === undefined ? {} : { cause });
    const schemaType = found.schemaType ?? 'AVRO';
    if (schemaType !== 'AVRO') throw incompatible(`is a ${String(schemaType)} schema, not Avro`);
    if (Array.isArray(found.references) && found.references.length > 0) {
      throw incompatible(`uses ${found.references.length} schema reference(s), which this service does not resolve`);
    }
    let writer: Type;
    try {
      writer = avro.Type.forSchema(JSON.parse(found.schema) as avro.Schema);
    } catch (error) {
      throw incompatible(`is not an Avro schema that avsc can build: ${reasonOf(error)}`, error);
    }
    if (writer.equals(this.#reader)) return { writer, reader: this.#reader, resolver: undefined };
    try {
      return { writer, ...resolveWriter(this.#reader, writer) };
    } catch (error) {
      if (error instanceof SchemaResolutionError) throw incompatible(`cannot be read as the snapshot schema: ${error.message}`, error);
      throw error;
    }
  }
}

function decodeBody(body: Buffer, schemaId: number, entry: WriterEntry): unknown {
  try {
    assertWellFormedAvro(entry.writer, body);
    return entry.reader.fromBuffer(body, entry.resolver, true);
  } catch (error) {
    // avsc's read errors are structural ("truncated buffer", "potential precision loss"), never bytes.
    const what = error instanceof AvroShapeError ? error.message : `avsc: ${reasonOf(error)}`;
    throw new DecodeError('AVRO_DECODE_FAILED', `Avro body does not match writer schema ${schemaId}: ${what}`, schemaId, { cause: error });
  }
}

function reasonOf(error: unknown): string {
  return describeError(error).slice(0, MAX_REASON_CHARS);
}

/** Publisher side: registers (or looks up) the snapshot schema under its subject and encodes. */
export class AvroEncoder {
  readonly #registry: SchemaRegistry;
  readonly #rawSchema: string;
  readonly #subject: string;
  #schemaId: Promise<number> | undefined;

  constructor(registry: SchemaRegistry, rawSchema: string, subject: string) {
    this.#registry = registry;
    this.#rawSchema = rawSchema;
    this.#subject = subject;
  }

  schemaId(): Promise<number> {
    this.#schemaId ??= this.#registry
      .register({ type: SchemaType.AVRO, schema: this.#rawSchema }, { subject: this.#subject })
      .then((r) => r.id)
      .catch((error: unknown) => {
        this.#schemaId = undefined;
        throw new RegistryUnavailableError(`could not register the schema under subject ${this.#subject}: ${describeError(error)}`, { cause: error });
      });
    return this.#schemaId;
  }

  async encode(value: unknown): Promise<Buffer> {
    return this.#registry.encode(await this.schemaId(), value);
  }
}

/** TopicNameStrategy: the value schema of topic T is registered under subject "T-value". */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}
