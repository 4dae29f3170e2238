/**
 * Start-up checks (issue 10): before anything starts, each dependency is asked once, in parallel,
 * with a timeout, whether it will serve this service. Each answer is one of:
 * - ok;
 * - refused: it will not pass by waiting (a wrong password, a missing ACL, an untrusted
 *   certificate, a missing bucket). The command prints one line and exits 2;
 * - down: no answer, or an answer that may change (connection refused, timeout, 5xx). Not fatal:
 *   one warning, the service starts, stays not ready, and the normal retry paths take over.
 *
 * The classification is pure (kafkaOutcome, registryOutcome, s3Outcome) and unit-tested; the I/O
 * around it is thin. What each dependency answers to what is written next to each check.
 */
import http from 'node:http';
import https from 'node:https';
import { GetObjectCommand, HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import type { Logger } from 'pino';
import { causeChain, type Dependency, type DependencyRefusedError, describeError, oneLine } from './errors.ts';
import { type KafkaResource, type KafkaScope, kafkaRefusal, refused, type TlsSettings, tlsRefusal } from './refusals.ts';
import { type RegistrySettings, registryAgent, registryEndpoint } from './registry-client.ts';
import { httpStatus, RETRYABLE_S3_STATUSES } from './sink/s3.ts';
import { type KafkaSettings, saslOptions, tlsOptions } from './source/kafka.ts';

/** Bound on one dependency's check. */
export const CHECK_TIMEOUT_MS = 10_000;

export type Outcome =
  | { readonly state: 'ok'; readonly note?: string }
  | { readonly state: 'down'; readonly reason: string }
  | { readonly state: 'refused'; readonly error: DependencyRefusedError };

export interface Check {
  readonly dependency: Dependency;
  run(): Promise<Outcome>;
}

const ok: Outcome = { state: 'ok' };
const down = (reason: string): Outcome => ({ state: 'down', reason: oneLine(reason) });
const refusal = (error: DependencyRefusedError): Outcome => ({ state: 'refused', error });

/** One check, bounded: no answer within `timeoutMs` is `down`, and a check that throws is `down` too. */
export async function runCheck(check: Check, timeoutMs = CHECK_TIMEOUT_MS): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve(down(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([check.run().catch((error: unknown) => down(describeError(error))), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs every check in parallel. Throws the first refusal (in the order given) after logging any
 * further ones; logs one warning per dependency that is down and returns those checks, so the
 * caller can ask them again until they answer.
 */
export async function startupChecks(
  checks: readonly Check[],
  log: Logger,
  whenDown = 'starting anyway, not ready until it answers',
  timeoutMs = CHECK_TIMEOUT_MS,
): Promise<Check[]> {
  const started = Date.now();
  const outcomes = await Promise.all(checks.map((check) => runCheck(check, timeoutMs)));
  const refusals: DependencyRefusedError[] = [];
  const downChecks: Check[] = [];
  outcomes.forEach((outcome, i) => {
    const check = checks[i] as Check;
    if (outcome.state === 'refused') refusals.push(outcome.error);
    else if (outcome.state === 'down') {
      downChecks.push(check);
      log.warn({ dependency: check.dependency, reason: outcome.reason }, `${check.dependency} did not answer the start-up check; ${whenDown}`);
    } else if (outcome.note !== undefined) log.warn({ dependency: check.dependency }, outcome.note);
  });
  const [first, ...others] = refusals;
  for (const other of others) log.error({ err: other.message }, 'start-up check refused');
  if (first !== undefined) throw first;
  log.info({ ms: Date.now() - started, down: downChecks.map((c) => c.dependency) }, 'start-up checks done');
  return downChecks;
}

export interface Recheck {
  cancel(): void;
}

/** Asks a dependency that was down at start again, with capped backoff, until it answers (ok or refused). */
export function recheckUntilAnswered(
  check: Check,
  events: { onAnswered(): void; onRefused(error: DependencyRefusedError): void },
  log: Logger,
  timeoutMs = CHECK_TIMEOUT_MS,
): Recheck {
  let cancelled = false;
  let timer: NodeJS.Timeout | undefined;
  const attempt = async (n: number): Promise<void> => {
    if (cancelled) return;
    const outcome = await runCheck(check, timeoutMs);
    if (cancelled) return;
    if (outcome.state === 'down') {
      timer = setTimeout(() => void attempt(n + 1), Math.min(10_000, 1000 * 2 ** n)).unref();
      return;
    }
    if (outcome.state === 'refused') {
      events.onRefused(outcome.error);
      return;
    }
    log.info({ dependency: check.dependency }, `${check.dependency} answers now`);
    events.onAnswered();
  };
  timer = setTimeout(() => void attempt(0), 1000).unref();
  return {
    cancel: () => {
      cancelled = true;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Kafka

export interface KafkaCheckScope {
  /** The topic the command reads (or, for publish, writes). */
  readonly topic: KafkaResource;
  readonly dlqTopic?: KafkaResource | undefined;
  readonly group?: KafkaResource | undefined;
}

/**
 * Authentication (an admin connects), topic authorization (metadata of the topic and the DLQ topic:
 * TOPIC_AUTHORIZATION_FAILED without DESCRIBE) and group authorization (describeGroups:
 * GROUP_AUTHORIZATION_FAILED without DESCRIBE). No admin call shows a missing READ on the topic:
 * metadata, ListOffsets and OffsetFetch all need DESCRIBE only (the stack's `no-read` user passes
 * them all). The consumer's first fetch does show it, within a second of joining, and the consumer
 * treats it as a refusal (source/consumer.ts, main.ts): same line, same exit code.
 *
 * Its own short-retry client: kafkajs retries TLS failures as connection errors for ~40 s.
 */
export function kafkaCheck(c: KafkaSettings, scope: KafkaCheckScope, timeoutMs = CHECK_TIMEOUT_MS): Check {
  return { dependency: 'kafka', run: () => checkKafka(c, scope, timeoutMs) };
}

async function checkKafka(c: KafkaSettings, scope: KafkaCheckScope, timeoutMs: number): Promise<Outcome> {
  // kafkajs logs, at debug, the errors it swallows (FindCoordinator's GROUP_AUTHORIZATION_FAILED).
  const logged: unknown[] = [];
  const config: KafkaConfig = {
    clientId: c.KAFKA_CLIENT_ID,
    brokers: [...c.KAFKA_BROKERS],
    ssl: tlsOptions(c),
    connectionTimeout: Math.min(5000, timeoutMs),
    authenticationTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    retry: { retries: 1, initialRetryTime: 250, maxRetryTime: 1000 },
    logLevel: logLevel.DEBUG,
    logCreator: () => (entry) => {
      if (entry.log.error instanceof Error) logged.push(entry.log.error);
    },
  };
  const sasl = saslOptions(c);
  if (sasl !== undefined) config.sasl = sasl;
  const admin = new Kafka(config).admin();
  const mechanism = c.KAFKA_SASL_MECHANISM;
  let step: KafkaScope = { mechanism };
  try {
    await admin.connect();
    for (const topic of [scope.topic, scope.dlqTopic]) {
      if (topic === undefined) continue;
      step = { mechanism, topic };
      await admin.fetchTopicMetadata({ topics: [topic.name] });
    }
    if (scope.group !== undefined) {
      step = { mechanism, group: scope.group };
      logged.length = 0;
      await admin.describeGroups([scope.group.name]);
    }
    return ok;
  } catch (error) {
    return kafkaOutcome(error, step, logged);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * A failed Kafka step: refused, or down. `logged` are the errors kafkajs logged during the step;
 * they are read only when kafkajs threw KafkaJSGroupCoordinatorNotFound, which replaces the
 * broker's own answer to FindCoordinator (brokerPool.withBroker drops it).
 */
export function kafkaOutcome(error: unknown, step: KafkaScope, logged: readonly unknown[] = []): Outcome {
  const direct = kafkaRefusal(error, step);
  if (direct !== undefined) return refusal(direct);
  if (causeChain(error).some((e) => e instanceof Error && e.name === 'KafkaJSGroupCoordinatorNotFound')) {
    for (const e of logged) {
      const swallowed = kafkaRefusal(e, step);
      if (swallowed !== undefined) return refusal(swallowed);
    }
  }
  const missing = causeChain(error).some((e) => typeof e === 'object' && e !== null && 'type' in e && e.type === 'UNKNOWN_TOPIC_OR_PARTITION');
  if (missing && step.topic !== undefined) return down(`topic ${step.topic.name} (${step.topic.setting}) does not exist yet`);
  return down(kafkaReason(error));
}

/** The deepest message of kafkajs' wrapping, with Node's code when it has one. */
function kafkaReason(error: unknown): string {
  const chain = causeChain(error);
  const last = chain[chain.length - 1];
  const code = typeof last === 'object' && last !== null && 'code' in last && typeof last.code === 'string' ? ` (${last.code})` : '';
  return `${describeError(last)}${code}`;
}

// ---------------------------------------------------------------------------------------------
// Schema registry

const REGISTRY_TLS: TlsSettings = {
  ca: ['SCHEMA_REGISTRY_CA_FILE'],
  name: ['SCHEMA_REGISTRY_URL'],
  clientCertificate: [],
  endpoint: ['SCHEMA_REGISTRY_URL'],
};
/** What a registry answers in every version of the Confluent API and in Apicurio's ccompat API, to any authenticated client. */
export const REGISTRY_PROBE_PATH = '/schemas/types';

/** GET <SCHEMA_REGISTRY_URL>/schemas/types with the configured basic auth and CA. */
export function registryCheck(s: RegistrySettings, timeoutMs = CHECK_TIMEOUT_MS): Check {
  return { dependency: 'schema registry', run: () => checkRegistry(s, Math.min(timeoutMs, s.timeoutMs)) };
}

async function checkRegistry(s: RegistrySettings, timeoutMs: number): Promise<Outcome> {
  const { url, auth } = registryEndpoint(s);
  const agent = registryAgent(url, s.ca);
  const headers: Record<string, string> = { accept: 'application/vnd.schemaregistry.v1+json, application/json' };
  if (auth !== undefined) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  try {
    const answer = await getOnce(new URL(`${url}${REGISTRY_PROBE_PATH}`), agent, headers, timeoutMs);
    return registryOutcome(answer, s.password === undefined ? [] : [s.password]);
  } catch (error) {
    return registryOutcome({ error });
  } finally {
    agent.destroy();
  }
}

/**
 * - 2xx: ok.
 * - 401, 403: refused, the credentials (or the registry's ACLs).
 * - 408, 429, 5xx, no answer: down.
 * - TLS verification failures: refused, the CA file or the URL's host.
 * - any other answer (404, a redirect to a login page, 400): refused, SCHEMA_REGISTRY_URL is not
 *   the base of a Confluent-compatible API. Every lookup would stall on it for ever.
 */
export function registryOutcome(answer: { status: number; body?: string } | { error: unknown }, secrets: readonly string[] = []): Outcome {
  if ('error' in answer) {
    const tls = tlsRefusal(answer.error, REGISTRY_TLS);
    if (tls !== undefined) return refusal(refused('schema registry', { refused: 'the connection', ...tls }, answer.error));
    return down(networkReason(answer.error));
  }
  const { status } = answer;
  if (status >= 200 && status < 300) return ok;
  const reason = `HTTP ${status} on GET ${REGISTRY_PROBE_PATH}${serverMessage(answer.body, secrets)}`;
  if (status === 401 || status === 403) {
    return refusal(
      refused('schema registry', {
        refused: 'the request',
        problem: status === 401 ? 'authentication failed' : 'not authorized',
        check: ['SCHEMA_REGISTRY_USERNAME', 'SCHEMA_REGISTRY_PASSWORD'],
        reason,
      }),
    );
  }
  if (status === 408 || status === 429 || status >= 500) return down(reason);
  return refusal(
    refused('schema registry', { refused: 'the request', problem: 'no Confluent-compatible registry API at this URL', check: ['SCHEMA_REGISTRY_URL'], reason }),
  );
}

/** The `message` of a Confluent-style JSON error body, scrubbed of the password; nothing else of the body. */
function serverMessage(body: string | undefined, secrets: readonly string[]): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body ?? '');
  } catch {
    return '';
  }
  if (typeof parsed !== 'object' || parsed === null || !('message' in parsed) || typeof parsed.message !== 'string') return '';
  let message = parsed.message.slice(0, 200);
  for (const secret of secrets) if (secret.length >= 4) message = message.replaceAll(secret, '<redacted>');
  return `: ${message}`;
}

function getOnce(url: URL, agent: http.Agent, headers: Record<string, string>, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, { agent, headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 64 * 1024) chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

// ---------------------------------------------------------------------------------------------
// S3

export interface S3CheckSettings {
  readonly bucket: string;
  /** Where the snapshots go: the second probe reads a key under it. */
  readonly prefix: string;
}

const S3_TLS: TlsSettings = {
  ca: ['S3_ENDPOINT', 'NODE_EXTRA_CA_CERTS'],
  name: ['S3_ENDPOINT'],
  clientCertificate: [],
  endpoint: ['S3_ENDPOINT'],
};
const CREDENTIAL_SETTINGS = ['S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'the AWS credential chain'];
/** S3's error codes for credentials it does not accept (as opposed to AccessDenied: accepted, not allowed). */
const CREDENTIAL_CODES: ReadonlySet<string> = new Set([
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
  'InvalidSecurity',
  'InvalidClientTokenId',
]);
/** A key no snapshot ever has (snapshots are <prefix><last_modified>.json). */
export const S3_PROBE_KEY = 'tow-and-go-start-up-check';

/**
 * HeadBucket on S3_BUCKET. HeadBucket needs s3:ListBucket, which the sink itself does not (README,
 * "Running against AWS"), and its 403 has no body, so it cannot tell a wrong secret key from a
 * missing s3:ListBucket. On a 403 the check therefore also reads a key that never exists under
 * S3_PREFIX (GetObject, whose error body names the reason): SignatureDoesNotMatch or
 * InvalidAccessKeyId is refused; AccessDenied means the credentials are good, and whether they may
 * write is left to the first write (a warning says so).
 */
export function s3Check(client: () => S3Client, s: S3CheckSettings, timeoutMs = CHECK_TIMEOUT_MS): Check {
  return { dependency: 's3', run: () => checkS3(client(), s, timeoutMs) };
}

async function checkS3(client: S3Client, s: S3CheckSettings, timeoutMs: number): Promise<Outcome> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: s.bucket }), { abortSignal: AbortSignal.timeout(timeoutMs) });
    return ok;
  } catch (head) {
    const outcome = s3Outcome(head, s, 'HeadBucket');
    if (httpStatus(head) !== 403) return outcome;
    try {
      await client.send(new GetObjectCommand({ Bucket: s.bucket, Key: `${s.prefix}${S3_PROBE_KEY}`, Range: 'bytes=0-0' }), {
        abortSignal: AbortSignal.timeout(timeoutMs),
      });
      return ok;
    } catch (get) {
      return s3Outcome(get, s, 'GetObject');
    }
  } finally {
    client.destroy();
  }
}

/**
 * - 200 (or, for the GetObject probe, 404 NoSuchKey): ok;
 * - 404 (NoSuchBucket): refused, S3_BUCKET (or S3_ENDPOINT: another store);
 * - 301 (PermanentRedirect), 400 (AuthorizationHeaderMalformed: the wrong region): refused, S3_REGION / S3_ENDPOINT;
 * - 403 on HeadBucket: see s3Check; 403 with a credentials code: refused, the credentials;
 *   403 AccessDenied on the GetObject probe: ok, with a warning;
 * - no credentials at all (CredentialsProviderError): refused, the credentials;
 * - TLS verification failures: refused, S3_ENDPOINT (and NODE_EXTRA_CA_CERTS for a private CA);
 * - 408, 425, 429, 5xx, connection refused, timeout: down.
 */
export function s3Outcome(error: unknown, s: S3CheckSettings, operation: 'HeadBucket' | 'GetObject'): Outcome {
  const status = httpStatus(error);
  const code = s3Code(error);
  const reason = `${operation}: ${status === undefined ? '' : `HTTP ${status} `}${code}${s3Message(error, code)}`;
  const bucket = `bucket ${s.bucket}`;
  if (status === undefined) {
    if (error instanceof Error && error.name === 'CredentialsProviderError') {
      return refusal(
        refused(
          's3',
          { refused: 'the request', problem: 'no AWS credentials found', check: CREDENTIAL_SETTINGS, reason: `${error.name}: ${error.message}` },
          error,
        ),
      );
    }
    const tls = tlsRefusal(error, S3_TLS);
    if (tls !== undefined) return refusal(refused('s3', { refused: 'the connection', ...tls }, error));
    return down(s3NetworkReason(error));
  }
  if (RETRYABLE_S3_STATUSES.has(status) || status >= 500) return down(reason);
  if (operation === 'GetObject' && status === 404 && code !== 'NoSuchBucket') return ok;
  if (status === 404)
    return refusal(refused('s3', { refused: `the ${bucket}`, problem: 'it does not exist', check: ['S3_BUCKET', 'S3_ENDPOINT'], reason }, error));
  if (status === 301 || status === 307 || (status === 400 && code === 'AuthorizationHeaderMalformed')) {
    return refusal(
      refused(
        's3',
        { refused: `the ${bucket}`, problem: 'it is in another region or on another endpoint', check: ['S3_REGION', 'S3_ENDPOINT'], reason },
        error,
      ),
    );
  }
  if (status === 403) {
    if (CREDENTIAL_CODES.has(code))
      return refusal(refused('s3', { refused: 'the request', problem: 'the credentials were not accepted', check: CREDENTIAL_SETTINGS, reason }, error));
    if (operation === 'GetObject') {
      return {
        state: 'ok',
        note: `s3 accepted the credentials but refused HeadBucket and a read of ${s.prefix}${S3_PROBE_KEY} (${code}): without s3:ListBucket the start-up check cannot prove access to ${bucket}; the first write will`,
      };
    }
    return refusal(refused('s3', { refused: `the ${bucket}`, problem: 'access denied', check: [...CREDENTIAL_SETTINGS, 'S3_BUCKET'], reason }, error));
  }
  return refusal(
    refused('s3', { refused: `the ${bucket}`, problem: 'the request was refused', check: ['S3_BUCKET', 'S3_ENDPOINT', 'S3_REGION'], reason }, error),
  );
}

/** S3's error code: the SDK's `Code`, else its name ("NotFound", "Unknown" for a HEAD without a body). */
function s3Code(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'Code' in error && typeof error.Code === 'string') return error.Code;
  return error instanceof Error ? error.name : 'UnknownError';
}

/** S3's own message when it sent one (a HEAD has no body: the SDK then says "UnknownError"). */
function s3Message(error: unknown, code: string): string {
  if (!(error instanceof Error) || error.message === '' || error.message === 'UnknownError' || error.message === code) return '';
  return `: ${error.message}`;
}

function s3NetworkReason(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'no answer in time';
  const code = typeof error === 'object' && error !== null && 'code' in error ? ` (${String(error.code)})` : '';
  return `${describeError(error)}${code}`;
}

/** Node's code for a refused or reset connection, else the message; the timeout's abort says so. */
function networkReason(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || (error.cause instanceof Error && error.cause.name === 'TimeoutError')))
    return 'no answer in time';
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
  return code ?? describeError(error);
}
