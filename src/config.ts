/**
 * Every setting, as one zod schema over environment variables, parsed once at start.
 * Nothing else in the code reads process.env. The README's settings table is generated from
 * SETTINGS (and a test checks it), so a setting cannot exist without a description and default.
 */
import os from 'node:os';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const list = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  )
  .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port')).min(1, 'expected at least one host:port'));
const url = z.url({ protocol: /^https?$/ });
const optionalString = z.string().transform((s) => (s === '' ? undefined : s));
/**
 * `auto` is resolved here and nowhere else: one thread per core the event loop leaves free, at most
 * 4 (a few threads already keep pace with what one event loop can fetch and upload).
 */
export function autoBodyWorkers(availableParallelism: number): number {
  return Math.max(0, Math.min(availableParallelism - 1, 4));
}
const bodyWorkers = z.union([z.literal('auto').transform(() => autoBodyWorkers(os.availableParallelism())), int(0, 16)], {
  error: 'expected auto or an integer from 0 to 16',
});

interface Setting<S extends z.ZodType> {
  readonly schema: S;
  readonly default: string;
  readonly description: string;
  /** Redacted in the startup log line. */
  readonly secret?: boolean;
}

function setting<S extends z.ZodType>(schema: S, defaultValue: string, description: string, secret = false): Setting<S> {
  return { schema, default: defaultValue, description, secret };
}

/** Local stack endpoints: `tow-and-go consume` with no settings works against `npm run stack:up`. */
export const LOCAL_S3_ENDPOINT = 'http://127.0.0.1:9000';
export const LOCAL_S3_CREDENTIALS = { accessKeyId: 'local-access-key', secretAccessKey: 'local-secret-key' } as const;

export const SETTINGS = {
  KAFKA_BROKERS: setting(list, '127.0.0.1:9092', 'Comma-separated bootstrap brokers (host:port).'),
  KAFKA_CLIENT_ID: setting(z.string().min(1), 'tow-and-go-sink', 'Kafka client id, shown in broker logs and quotas.'),
  KAFKA_TOPIC: setting(z.string().min(1), 'tow-and-go.updates', 'Topic the snapshots are read from.'),
  KAFKA_GROUP_ID: setting(z.string().min(1), 'tow-and-go-s3-sink', 'Consumer group id. Add instances with the same id to scale out.'),
  KAFKA_DLQ_TOPIC: setting(z.string().min(1), 'tow-and-go.updates.dlq', 'Dead-letter topic for records that can never be valid.'),
  KAFKA_FROM_BEGINNING: setting(bool, 'true', 'Where a group with no committed offset starts: true = earliest (nothing is skipped), false = latest.'),
  KAFKA_SSL: setting(bool, 'false', 'Use TLS to the brokers (system CA store).'),
  KAFKA_SASL_MECHANISM: setting(
    z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512']),
    'none',
    'SASL mechanism: none, plain, scram-sha-256 or scram-sha-512 (MSK SCRAM, Confluent Cloud).',
  ),
  KAFKA_SASL_USERNAME: setting(optionalString, '', 'SASL user name.'),
  KAFKA_SASL_PASSWORD: setting(optionalString, '', 'SASL password.', true),
  KAFKA_SESSION_TIMEOUT_MS: setting(int(6000, 300000), '30000', 'Group session timeout; the member is dropped when no heartbeat arrives within it.'),
  KAFKA_HEARTBEAT_INTERVAL_MS: setting(int(500, 60000), '3000', 'Heartbeat interval, also used between retries and during long batches.'),
  KAFKA_REBALANCE_TIMEOUT_MS: setting(int(6000, 600000), '60000', 'How long the group waits for members to rejoin during a rebalance.'),
  SCHEMA_REGISTRY_URL: setting(url, 'http://127.0.0.1:8081/apis/ccompat/v7', 'Confluent-compatible schema registry base URL.'),
  SCHEMA_REGISTRY_USERNAME: setting(optionalString, '', 'Registry basic-auth user (Confluent Cloud API key).'),
  SCHEMA_REGISTRY_PASSWORD: setting(optionalString, '', 'Registry basic-auth password.', true),
  SCHEMA_REGISTRY_TIMEOUT_MS: setting(int(100, 120000), '5000', 'Timeout of one registry request.'),
  S3_BUCKET: setting(z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'not a valid S3 bucket name'), 'tow-and-go', 'Destination bucket.'),
  S3_PREFIX: setting(
    z.string().regex(/^([^/].*\/)?$/, 'must be empty or end with "/" and not start with "/"'),
    'tow-and-go/',
    'Key prefix; objects land at <prefix><last_modified>.json.',
  ),
  S3_ENDPOINT: setting(z.union([z.literal(''), url]), LOCAL_S3_ENDPOINT, 'S3 endpoint URL. Empty for AWS S3 itself.'),
  S3_REGION: setting(z.string().min(1), 'us-east-1', 'S3 region.'),
  S3_FORCE_PATH_STYLE: setting(bool, 'true', 'Path-style addressing (S3Proxy, MinIO). Set false for AWS S3.'),
  S3_ACCESS_KEY_ID: setting(
    optionalString,
    '',
    'Static access key. Empty: the AWS default chain (IAM role, web identity, profile, env); with the local endpoint, the local stack key.',
  ),
  S3_SECRET_ACCESS_KEY: setting(optionalString, '', 'Static secret key, with S3_ACCESS_KEY_ID.', true),
  S3_TIMEOUT_MS: setting(
    int(100, 600000),
    '10000',
    'Timeout of one S3 call, SDK retries included. A write is at most 2 calls (3 with S3_ON_CONFLICT=overwrite), and that worst case must fit in KAFKA_SESSION_TIMEOUT_MS.',
  ),
  S3_COMPRESSION: setting(
    z.enum(['none', 'gzip']),
    'none',
    'Compress bodies before upload: gzip stores them with Content-Encoding: gzip (same key; readers that use the AWS SDK must gunzip). The content-sha256 metadata is always of the uncompressed JSON.',
  ),
  S3_ON_CONFLICT: setting(
    z.enum(['dlq', 'overwrite']),
    'dlq',
    'A different snapshot with an already-written last_modified: dlq keeps the first object, overwrite replaces it.',
  ),
  MIN_LAST_MODIFIED: setting(int(0, Number.MAX_SAFE_INTEGER), '946684800', 'Oldest accepted last_modified (unix seconds; default 2000-01-01).'),
  MAX_FUTURE_SKEW_SECONDS: setting(int(0, 10 * 365 * 86400), '86400', 'How far past now a last_modified may be.'),
  MAX_LINKS: setting(int(0, 10_000_000), '200000', 'Most links accepted in one snapshot.'),
  MAX_PAYLOAD_BYTES: setting(int(64, 512 * 1024 * 1024), '4194304', 'Largest record value accepted, checked before decoding.'),
  PARTITIONS_CONCURRENTLY: setting(
    int(1, 256),
    '32',
    'Partitions processed at the same time by one instance. Cover every partition the instance may own: kafkajs fetches again only when all batches of a fetch are done.',
  ),
  INFLIGHT_PER_PARTITION: setting(int(1, 1024), '8', 'Uploads in flight within one partition (the commit watermark keeps order).'),
  MAX_INFLIGHT_BYTES: setting(
    int(1024, 4 * 1024 * 1024 * 1024),
    '67108864',
    'Bytes held per partition before reading waits: a record counts 16 x its Avro size while decoded, then its body.',
  ),
  MAX_PROCESS_INFLIGHT_BYTES: setting(
    int(1024, 16 * 1024 * 1024 * 1024),
    '134217728',
    'Bytes held across all partitions of the process (same accounting as MAX_INFLIGHT_BYTES). One record larger than it still passes alone.',
  ),
  BODY_WORKERS: setting(
    bodyWorkers,
    'auto',
    'Worker threads that turn big snapshots into their JSON body and SHA-256 (auto = CPUs - 1, at most 4; 0 = all on the main thread). Helps with big snapshots (64 KiB of Avro, ~8,000 links, and up) when the pod has more than one CPU: the main thread keeps fetching and uploading while other cores transcode. Smaller snapshots always stay on the main thread, where they cost less than the hand-off.',
  ),
  RETRY_INITIAL_MS: setting(int(1, 60000), '250', 'First backoff after a retryable failure (then doubled, with full jitter).'),
  RETRY_MAX_MS: setting(int(10, 600000), '15000', 'Longest backoff between retries.'),
  SHUTDOWN_TIMEOUT_MS: setting(
    int(100, 600000),
    '30000',
    'Bound on graceful shutdown after SIGTERM/SIGINT; past it the process exits 1 without committing unfinished work.',
  ),
  HTTP_HOST: setting(z.string().min(1), '127.0.0.1', 'Address of the health and metrics server (0.0.0.0 in containers).'),
  HTTP_PORT: setting(int(0, 65535), '9464', 'Port of /healthz, /readyz and /metrics. 0 picks a free port.'),
  LOG_LEVEL: setting(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info', 'pino log level.'),
  PROGRESS_INTERVAL_MS: setting(int(0, 3600000), '30000', 'Interval of the progress log line; 0 turns it off.'),
} as const;

type Settings = typeof SETTINGS;
export type Config = Readonly<{ [K in keyof Settings]: z.output<Settings[K]['schema']> }>;
export type SettingName = keyof Settings;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Parses every setting; collects all problems and throws one ConfigError whose message has one
 * line per bad variable, naming it.
 */
export function loadConfig(env: Env): Config {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, Setting<z.ZodType>][]) {
    const raw = env[name] ?? spec.default;
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) out[name] = parsed.data;
    else problems.push(`${name}=${spec.secret ? '<redacted>' : JSON.stringify(redactUserInfo(raw))}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  const config = out as Config;
  if (problems.length === 0) problems.push(...crossChecks(config));
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join(' | ')}`);
  return Object.freeze(config);
}

function crossChecks(c: Config): string[] {
  const problems: string[] = [];
  if (c.RETRY_MAX_MS < c.RETRY_INITIAL_MS) problems.push('RETRY_MAX_MS: must be >= RETRY_INITIAL_MS');
  if (c.KAFKA_HEARTBEAT_INTERVAL_MS * 3 > c.KAFKA_SESSION_TIMEOUT_MS) {
    problems.push('KAFKA_HEARTBEAT_INTERVAL_MS: must be at most a third of KAFKA_SESSION_TIMEOUT_MS');
  }
  const writeCalls = c.S3_ON_CONFLICT === 'overwrite' ? 3 : 2;
  if (writeCalls * c.S3_TIMEOUT_MS > c.KAFKA_SESSION_TIMEOUT_MS) {
    problems.push(
      `S3_TIMEOUT_MS: a write is up to ${writeCalls} S3 calls (${writeCalls} x ${c.S3_TIMEOUT_MS} ms), which must fit in KAFKA_SESSION_TIMEOUT_MS (${c.KAFKA_SESSION_TIMEOUT_MS} ms)`,
    );
  }
  if (c.KAFKA_SASL_MECHANISM !== 'none' && (c.KAFKA_SASL_USERNAME === undefined || c.KAFKA_SASL_PASSWORD === undefined)) {
    problems.push('KAFKA_SASL_USERNAME: KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required when KAFKA_SASL_MECHANISM is set');
  }
  if ((c.S3_ACCESS_KEY_ID === undefined) !== (c.S3_SECRET_ACCESS_KEY === undefined)) {
    problems.push('S3_ACCESS_KEY_ID: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together');
  }
  if ((c.SCHEMA_REGISTRY_USERNAME === undefined) !== (c.SCHEMA_REGISTRY_PASSWORD === undefined)) {
    problems.push('SCHEMA_REGISTRY_USERNAME: SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD go together');
  }
  return problems;
}

/** The effective config for the startup log: secrets replaced, never printed. */
export function redactedConfig(c: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, Setting<z.ZodType>][]) {
    const value = c[name];
    out[name] = spec.secret && value !== undefined ? '<redacted>' : typeof value === 'string' ? withoutUserInfo(value) : value;
  }
  return out;
}

/**
 * A URL may carry credentials (https://user:pass@host). The userinfo ends at the last `@` of the
 * authority, which ends at the first `/`, `?` or `#` (as WHATWG URL parses it), so a password may
 * itself contain `@`. The log keeps the scheme, host and path, never the pair.
 */
export function withoutUserInfo(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#\\]*@/i, '$1<redacted>@');
}

/**
 * For a value that failed to parse, where the authority cannot be trusted to end where a URL
 * parser would say: everything up to the last `@` anywhere is dropped, keeping a scheme prefix.
 * An error line names the variable and the reason; losing the rest of a bad value costs little.
 */
export function redactUserInfo(raw: string): string {
  const at = raw.lastIndexOf('@');
  if (at < 0) return raw;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(raw)?.[0] ?? '';
  return `${scheme}<redacted>${raw.slice(at)}`;
}
