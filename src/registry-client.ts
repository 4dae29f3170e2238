/**
 * The schema registry's id lookup (GET /schemas/ids/{id}), with `fetch`, and the one classification
 * of its answers. @kafkajs/confluent-schema-registry is not used for this: it reports an unreachable
 * registry as HTTP 400 and fails alike for an outage and for a schema it cannot build (JSON Schema,
 * Protobuf, an unknown schemaType, references), so its errors cannot tell a stall from a bad record.
 * Here the real status and body are at hand. The library still registers and encodes (codec.ts).
 */
import { ConfigError, DecodeError, RegistryUnavailableError } from './errors.ts';

export interface RegistrySettings {
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly timeoutMs: number;
}

export interface BasicAuth {
  readonly username: string;
  readonly password: string;
}

/** The registry base URL without credentials, and the basic-auth pair to send. */
export interface RegistryEndpoint {
  readonly url: string;
  readonly auth: BasicAuth | undefined;
}

/** What GET /schemas/ids/{id} answers (Confluent API; Apicurio's ccompat API answers the same). */
export interface RegistrySchema {
  readonly schema: string;
  readonly schemaType?: unknown;
  readonly references?: unknown;
}

/** Confluent's error code for "schema not found"; Apicurio's ccompat API uses it too. */
const SCHEMA_NOT_FOUND = 40403;

/**
 * The one place registry credentials are read. WHATWG fetch refuses a URL with credentials in it,
 * so https://user:pass@host/... becomes the bare URL plus basic auth, exactly like
 * SCHEMA_REGISTRY_USERNAME/PASSWORD. When both are given, the explicit settings win.
 */
export function registryEndpoint(settings: RegistrySettings): RegistryEndpoint {
  let url: URL;
  try {
    url = new URL(settings.url);
  } catch {
    // The input is not echoed: it may hold credentials.
    throw new ConfigError('SCHEMA_REGISTRY_URL is not a valid URL');
  }
  const inUrl = url.username === '' ? undefined : { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
  url.username = '';
  url.password = '';
  const explicit =
    settings.username !== undefined && settings.password !== undefined ? { username: settings.username, password: settings.password } : undefined;
  return { url: url.href.replace(/\/+$/, ''), auth: explicit ?? inUrl };
}

/**
 * How a lookup answer is classified. Only the schema id comes from the record, and the registry
 * answers 404 with error_code 40403 for every id it lacks (Apicurio does so for 0 and for negative
 * ids too), so that is the one answer about the record: SCHEMA_UNKNOWN, permanent. (A schema that
 * comes back but is not Avro, or cannot be built, is permanent too: the codec's SCHEMA_INCOMPATIBLE.)
 * Every other answer stalls the partition and retries:
 * - no answer, a timeout, 408, 429 and 5xx: the registry is down or busy and will recover;
 * - 401 and 403: the credentials or ACLs are wrong. That is an operator problem, and every record
 *   would fail alike, so dead-lettering would drain the topic into the DLQ. Stalling keeps the
 *   records where they are and turns /readyz red until someone fixes the secret;
 * - any other 4xx, a 404 without 40403, or a 200 without a schema: the URL points at something
 *   that is not this registry's API (a proxy, a wrong path). Also an operator problem.
 */
export type LookupVerdict = 'found' | 'unknown' | 'stall';

export function lookupVerdict(status: number, body: unknown): LookupVerdict {
  if (status === 200 && isRegistrySchema(body)) return 'found';
  if (status === 404 && typeof body === 'object' && body !== null && 'error_code' in body && body.error_code === SCHEMA_NOT_FOUND) return 'unknown';
  return 'stall';
}

/**
 * Ids a healthy registry said it does not have, remembered briefly so a flood of poison records is
 * not a flood of lookups. Bounded: past `capacity` the oldest entry goes (all entries share one
 * TTL, so insertion order is expiry order), and an expired entry goes when it is read.
 */
export class RecentlyUnknownIds {
  readonly #until = new Map<number, number>();
  readonly #ttlMs: number;
  readonly #capacity: number;

  constructor(ttlMs = 30_000, capacity = 1024) {
    this.#ttlMs = ttlMs;
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#until.size;
  }

  has(id: number, now: number): boolean {
    const until = this.#until.get(id);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#until.delete(id);
    return false;
  }

  add(id: number, now: number): void {
    this.#until.delete(id);
    this.#until.set(id, now + this.#ttlMs);
    if (this.#until.size > this.#capacity) {
      const oldest = this.#until.keys().next();
      if (oldest.done !== true) this.#until.delete(oldest.value);
    }
  }
}

/** Looks writer schemas up by id. Throws DecodeError SCHEMA_UNKNOWN or RegistryUnavailableError. */
export class SchemaLookup {
  readonly #endpoint: RegistryEndpoint;
  readonly #timeoutMs: number;
  readonly #unknown: RecentlyUnknownIds;
  readonly #headers: Readonly<Record<string, string>>;

  constructor(settings: RegistrySettings, unknown = new RecentlyUnknownIds()) {
    this.#endpoint = registryEndpoint(settings);
    this.#timeoutMs = settings.timeoutMs;
    this.#unknown = unknown;
    const { auth } = this.#endpoint;
    this.#headers = {
      accept: 'application/vnd.schemaregistry.v1+json, application/json',
      ...(auth === undefined ? {} : { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` }),
    };
  }

  async get(schemaId: number): Promise<RegistrySchema> {
    if (this.#unknown.has(schemaId, Date.now())) throw unknownId(schemaId);
    const what = `schema registry lookup of id ${schemaId}`;
    let status: number;
    let body: unknown;
    try {
      const res = await fetch(`${this.#endpoint.url}/schemas/ids/${schemaId}`, { headers: this.#headers, signal: AbortSignal.timeout(this.#timeoutMs) });
      status = res.status;
      body = parseJson(await res.text());
    } catch (error) {
      // Refused, reset, DNS, TLS or the timeout. The message names no URL, so no credentials.
      throw new RegistryUnavailableError(`${what} got no answer: ${networkReason(error)}`, { cause: error });
    }
    const verdict = lookupVerdict(status, body);
    if (verdict === 'found' && isRegistrySchema(body)) return body;
    if (verdict === 'unknown') {
      this.#unknown.add(schemaId, Date.now());
      throw unknownId(schemaId);
    }
    const code = typeof body === 'object' && body !== null && 'error_code' in body ? ` (error_code ${String(body.error_code)})` : '';
    throw new RegistryUnavailableError(`${what} failed: HTTP ${status}${code}${status === 200 ? ' without a schema in the body' : ''}`);
  }
}

function unknownId(schemaId: number): DecodeError {
  return new DecodeError('SCHEMA_UNKNOWN', `schema id ${schemaId} is not in the registry`, schemaId);
}

function isRegistrySchema(body: unknown): body is RegistrySchema {
  return typeof body === 'object' && body !== null && 'schema' in body && typeof body.schema === 'string';
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** undici rejects with "fetch failed" and puts the reason (ECONNREFUSED, ...) in `cause`. The URL has no credentials. */
function networkReason(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'timed out';
  const cause = error instanceof Error ? error.cause : undefined;
  if (typeof cause === 'object' && cause !== null && 'code' in cause) return String(cause.code);
  // e.g. "bad port": fetch refuses some ports outright.
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.name : 'unknown failure';
}
