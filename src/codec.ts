/**
 * Confluent wire format + Avro, with the schema registry. Decode is pure apart from the schema
 * lookup: it returns the decoded value and the writer schema id, and classifies every failure.
 *
 * The registry HTTP client, its per-id cache and its merging of concurrent fetches come from
 * @kafkajs/confluent-schema-registry. The Avro step itself is done here rather than by its
 * `decode()`, because that builds a new reader type and resolver for every message; here both are
 * built once per writer schema id.
 */
import { readFileSync } from 'node:fs';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro, { type Resolver, type Type } from 'avsc';
import { AvroShapeError, assertWellFormedAvro } from './avro-guard.ts';
import { DecodeError, describeError, RegistryUnavailableError } from './errors.ts';

export const SNAPSHOT_SCHEMA_PATH = new URL('../avro/tow-and-go-snapshot.avsc', import.meta.url);
const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;
/** Unknown ids are remembered briefly so a flood of poison records is not a flood of lookups. */
const UNKNOWN_ID_TTL_MS = 30_000;
/** Confluent's error code for "schema not found"; Apicurio's ccompat API uses it too. */
const SCHEMA_NOT_FOUND = 40403;

export interface RegistrySettings {
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly timeoutMs: number;
}

export interface Decoded {
  readonly schemaId: number;
  readonly value: unknown;
}

interface WriterEntry {
  readonly writer: Type;
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

export function createRegistry(settings: RegistrySettings): SchemaRegistry {
  const auth = settings.username !== undefined && settings.password !== undefined ? { username: settings.username, password: settings.password } : undefined;
  return new SchemaRegistry({
    host: settings.url,
    clientId: 'tow-and-go-sink',
    ...(auth === undefined ? {} : { auth }),
    // The pipeline owns retries (with backoff and partition stalling); one quick retry here only
    // smooths over a dropped connection.
    retry: { retries: 1, initialRetryTimeInSecs: 0.1, maxRetryTimeInSecs: 1 },
    middlewares: [timeoutMiddleware(settings.timeoutMs)],
  });
}

export class AvroCodec {
  readonly #registry: SchemaRegistry;
  readonly #settings: RegistrySettings;
  readonly #reader: Type;
  readonly #writers = new Map<number, Promise<WriterEntry>>();
  readonly #unknownUntil = new Map<number, number>();

  constructor(registry: SchemaRegistry, settings: RegistrySettings, reader: Type) {
    this.#registry = registry;
    this.#settings = settings;
    this.#reader = reader;
  }

  /** Size and header checks happen before any lookup or decode. */
  async decode(bytes: Buffer | null, maxPayloadBytes: number): Promise<Decoded> {
    if (bytes === null) throw new DecodeError('PAYLOAD_NULL', 'record value is null (tombstone)');
    if (bytes.length > maxPayloadBytes)
      throw new DecodeError('PAYLOAD_TOO_LARGE', `record value is ${bytes.length} bytes, over the ${maxPayloadBytes}-byte limit`);
    if (bytes.length < HEADER_BYTES)
      throw new DecodeError('WIRE_FORMAT_INVALID', `record value is ${bytes.length} bytes, shorter than the 5-byte Confluent header`);
    if (bytes[0] !== MAGIC_BYTE) throw new DecodeError('WIRE_FORMAT_INVALID', `wrong magic byte ${bytes[0]} (expected 0: Confluent wire format)`);
    const schemaId = bytes.readInt32BE(1);
    const writer = await this.#writerFor(schemaId);
    return { schemaId, value: this.#decodeBody(bytes.subarray(HEADER_BYTES), schemaId, writer) };
  }

  #decodeBody(body: Buffer, schemaId: number, entry: WriterEntry): unknown {
    try {
      assertWellFormedAvro(entry.writer, body);
      return this.#reader.fromBuffer(body, entry.resolver, true);
    } catch (error) {
      const what = error instanceof AvroShapeError ? error.message : 'avsc could not decode the body';
      throw new DecodeError('AVRO_DECODE_FAILED', `Avro body does not match writer schema ${schemaId}: ${what}`, schemaId, { cause: error });
    }
  }

  #writerFor(schemaId: number): Promise<WriterEntry> {
    const unknownUntil = this.#unknownUntil.get(schemaId);
    if (unknownUntil !== undefined && unknownUntil > Date.now()) {
      return Promise.reject(new DecodeError('SCHEMA_UNKNOWN', `schema id ${schemaId} is not in the registry`, schemaId));
    }
    let entry = this.#writers.get(schemaId);
    if (entry === undefined) {
      entry = this.#fetchWriter(schemaId);
      this.#writers.set(schemaId, entry);
      // Failed lookups are not cached: an outage must not poison the cache.
      entry.catch(() => this.#writers.delete(schemaId));
    }
    return entry;
  }

  async #fetchWriter(schemaId: number): Promise<WriterEntry> {
    let schema: unknown;
    try {
      schema = await this.#registry.getSchema(schemaId);
    } catch (error) {
      throw await this.#classifyLookupFailure(schemaId, error);
    }
    if (!isAvroType(schema)) {
      throw new DecodeError('SCHEMA_INCOMPATIBLE', `schema id ${schemaId} is not an Avro schema`, schemaId);
    }
    try {
      // Rebuilt with our own avsc: the registry library may resolve to another copy of avsc, and
      // avsc's resolvers only accept types of their own copy. Once per schema id.
      const writer = avro.Type.forSchema(schema.schema() as avro.Schema);
      const resolver = writer.equals(this.#reader) ? undefined : this.#reader.createResolver(writer);
      return { writer, resolver };
    } catch (error) {
      throw new DecodeError('SCHEMA_INCOMPATIBLE', `writer schema ${schemaId} cannot be read as the snapshot schema`, schemaId, { cause: error });
    }
  }

  /**
   * The registry client reports an unreachable registry as HTTP 400 and wraps every failure the same
   * way, so its status alone is not evidence. "Unknown schema" is permanent only when a healthy
   * registry says so in its own words: 404 with error_code 40403. Anything else stalls and retries.
   */
  async #classifyLookupFailure(schemaId: number, error: unknown): Promise<Error> {
    const status = typeof error === 'object' && error !== null && 'status' in error ? error.status : undefined;
    if (status === 404 && (await this.#registrySaysNotFound(schemaId))) {
      this.#unknownUntil.set(schemaId, Date.now() + UNKNOWN_ID_TTL_MS);
      return new DecodeError('SCHEMA_UNKNOWN', `schema id ${schemaId} is not in the registry`, schemaId);
    }
    return new RegistryUnavailableError(`schema registry lookup of id ${schemaId} failed (status ${String(status ?? 'none')})`, { cause: error });
  }

  async #registrySaysNotFound(schemaId: number): Promise<boolean> {
    try {
      const headers: Record<string, string> = { accept: 'application/vnd.schemaregistry.v1+json' };
      if (this.#settings.username !== undefined && this.#settings.password !== undefined) {
        headers.authorization = `Basic ${Buffer.from(`${this.#settings.username}:${this.#settings.password}`).toString('base64')}`;
      }
      const res = await fetch(`${this.#settings.url.replace(/\/$/, '')}/schemas/ids/${schemaId}`, {
        headers,
        signal: AbortSignal.timeout(this.#settings.timeoutMs),
      });
      if (res.status !== 404) return false;
      const body = (await res.json()) as { error_code?: unknown };
      return body.error_code === SCHEMA_NOT_FOUND;
    } catch {
      return false;
    }
  }
}

/** Structural, not `instanceof`: the library's avsc copy need not be ours. */
function isAvroType(value: unknown): value is { schema(): unknown; typeName: string } {
  return typeof value === 'object' && value !== null && 'typeName' in value && 'schema' in value && typeof value.schema === 'function';
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
