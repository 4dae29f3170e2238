/**
 * The schema registry's id lookup (GET /schemas/ids/{id}), with node:http(s), and the one
 * classification of its answers. @kafkajs/confluent-schema-registry is not used for this: it reports
 * an unreachable registry as HTTP 400 and fails alike for an outage and for a schema it cannot build
 * (JSON Schema, Protobuf, an unknown schemaType, references), so its errors cannot tell a stall from
 * a bad record. Here the real status and body are at hand. The library still registers and encodes
 * (codec.ts).
 *
 * Why node:https and not fetch: a registry signed by a private CA (SCHEMA_REGISTRY_CA_FILE) needs
 * that CA on the connection. Node's fetch takes it only through an undici dispatcher, which means
 * the undici package as a dependency; an https.Agent does it with Node alone, and the library client
 * takes the very same agent (its `agent` option), so both clients trust exactly the same CAs.
 */
import http from 'node:http';
import https from 'node:https';
import { ConfigError, DecodeError, RegistryUnavailableError } from './errors.ts';

export interface RegistrySettings {
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly timeoutMs: number;
  /** PEM CA certificate(s) for an https registry, instead of the system store. */
  readonly ca?: Buffer | undefined;
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
  const inUrl = url.username === '' ? undefined : { username: percentDecoded(url.username), password: percentDecoded(url.password) };
  url.username = '';
  url.password = '';
  const explicit =
    settings.username !== undefined && settings.password !== undefined ? { username: settings.username, password: settings.password } : undefined;
  return { url: url.href.replace(/\/+$/, ''), auth: explicit ?? inUrl };
}

/** WHATWG URL keeps a stray `%` (p%ss) as typed, where decodeURIComponent would throw: keep it as typed too. */
function percentDecoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * The one connection pool of a registry endpoint, for the lookup and the library client alike: for
 * https, trusting `ca` instead of the system store when given (host names are always checked).
 */
export function registryAgent(url: string, ca: Buffer | undefined): http.Agent {
  if (!url.startsWith('https:')) return new http.Agent({ keepAlive: true });
  return new https.Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) });
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
  readonly #agent: http.Agent;

  constructor(settings: RegistrySettings, unknown = new RecentlyUnknownIds()) {
    this.#endpoint = registryEndpoint(settings);
    this.#agent = registryAgent(this.#endpoint.url, settings.ca);
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
      const answer = await get(new URL(`${this.#endpoint.url}/schemas/ids/${schemaId}`), this.#agent, this.#headers, this.#timeoutMs);
      status = answer.status;
      body = parseJson(answer.text);
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

/** One GET, its status and body; the timeout covers connecting, the headers and the whole body. */
function get(url: URL, agent: http.Agent, headers: Readonly<Record<string, string>>, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, { agent, headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
      // A body cut short (the timeout, a reset) may end the response without an 'error' of its own.
      res.on('close', () => {
        if (!res.complete) reject(new Error('the answer was cut short'));
      });
    });
    request.on('error', reject);
    request.end();
  });
}

/** TLS verification failures name the setting to look at; the URL is not repeated. */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

function networkReason(error: unknown): string {
  // The timeout aborts the request: an AbortError whose cause is the signal's TimeoutError.
  if (error instanceof Error && (error.name === 'TimeoutError' || (error.cause instanceof Error && error.cause.name === 'TimeoutError'))) return 'timed out';
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `TLS: ${code} (the certificate does not name the host of SCHEMA_REGISTRY_URL)`;
  if (code !== undefined && CERTIFICATE_CODES.has(code)) return `TLS: ${code} (the certificate is not trusted; see SCHEMA_REGISTRY_CA_FILE)`;
  if (code !== undefined) return code;
  return error instanceof Error ? error.message : 'unknown failure';
}
