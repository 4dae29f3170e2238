/**
 * Every setting, as one zod schema over environment variables, parsed once at start.
 * Nothing else in the code reads process.env. The README's settings table is generated from
 * SETTINGS (and a test checks it), so a setting cannot exist without a description and default.
 */
import os from 'node:os';
import { z } from 'zod';
import { crossChecks } from './config-checks.ts';
import { BUCKET_NAME, DESTINATIONS, ENDPOINT, KEY_PREFIX } from './config-destinations.ts';
import { looksLikePem, PemFile, pemFile } from './config-files.ts';
import { ConfigError } from './errors.ts';
import { redactUserInfo, scrub, urlPasswords, withoutUserInfo } from './redact.ts';

export { redactUserInfo, withoutUserInfo } from './redact.ts';

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
const optionalUrl = z.union([z.literal('').transform(() => undefined), url]);
const hostname = z.union([z.literal('').transform(() => undefined), z.string().regex(/^[A-Za-z0-9.-]+$/, 'expected a host name')]);
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
  NOTIFY_UPLOADED: setting(
    bool,
    'false',
    'Announce every object written on KAFKA_UPLOADED_TOPIC (Avro, avro/tow-and-go-uploaded.avsc; one record per destination), before the source offset is committed.',
  ),
  KAFKA_UPLOADED_TOPIC: setting(
    z.string().min(1),
    'tow-and-go.uploaded',
    'Topic of the uploaded notifications (NOTIFY_UPLOADED=true); needs WRITE and DESCRIBE.',
  ),
  PUBLISH_CHANGES: setting(
    bool,
    'false',
    "Publish each snapshot's change against the previous archived one on KAFKA_CHANGES_TOPIC (Avro, avro/tow-and-go-change.avsc), before the source offset is committed.",
  ),
  KAFKA_CHANGES_TOPIC: setting(
    z.string().min(1),
    'tow-and-go.changes',
    'Topic of the change stream (PUBLISH_CHANGES=true): one partition is used (a constant key); not compacted; max.message.bytes of 2 MiB or more.',
  ),
  KAFKA_FROM_BEGINNING: setting(bool, 'true', 'Where a group with no committed offset starts: true = earliest (nothing is skipped), false = latest.'),
  KAFKA_SSL: setting(
    bool,
    'false',
    'Use TLS to the brokers. Certificates and host names are always verified, against the system CA store unless KAFKA_SSL_CA_FILE is set.',
  ),
  KAFKA_SSL_CA_FILE: setting(
    pemFile('certificate'),
    '',
    "PEM file of the CA certificate(s) that signed the brokers' certificates; replaces the system CA store. Read at start; needs KAFKA_SSL=true.",
  ),
  KAFKA_SSL_CERT_FILE: setting(pemFile('certificate'), '', 'PEM client certificate for mutual TLS, with KAFKA_SSL_KEY_FILE.'),
  KAFKA_SSL_KEY_FILE: setting(pemFile('private key'), '', 'PEM private key of KAFKA_SSL_CERT_FILE. Read at start; its contents are never logged.'),
  KAFKA_SSL_KEY_PASSWORD: setting(optionalString, '', 'Passphrase of an encrypted KAFKA_SSL_KEY_FILE.', true),
  KAFKA_SSL_SERVERNAME: setting(
    hostname,
    '',
    "Host name the brokers' certificates must carry when it differs from the hosts in KAFKA_BROKERS (an IP address, a tunnel); also sent as SNI.",
  ),
  KAFKA_SASL_MECHANISM: setting(
    z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer', 'aws-msk-iam']),
    'none',
    'SASL mechanism: none, plain (Confluent Cloud API keys), scram-sha-256, scram-sha-512 (MSK SCRAM), oauthbearer (OIDC client credentials) or aws-msk-iam (MSK IAM, default AWS credential chain).',
  ),
  KAFKA_SASL_USERNAME: setting(optionalString, '', 'SASL user name, for plain and scram-*.'),
  KAFKA_SASL_PASSWORD: setting(optionalString, '', 'SASL password, for plain and scram-*.', true),
  KAFKA_SASL_OAUTHBEARER_TOKEN_URL: setting(optionalUrl, '', 'OAuth 2 token endpoint for oauthbearer; tokens come from its client-credentials grant.'),
  KAFKA_SASL_OAUTHBEARER_CLIENT_ID: setting(optionalString, '', 'OAuth client id for oauthbearer.'),
  KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET: setting(optionalString, '', 'OAuth client secret for oauthbearer.', true),
  KAFKA_SASL_OAUTHBEARER_SCOPE: setting(optionalString, '', 'Scope to ask the token endpoint for (space-separated); empty asks for none.'),
  KAFKA_SASL_AWS_REGION: setting(optionalString, '', 'AWS region of the MSK cluster, for aws-msk-iam. Empty: the AWS_REGION variable.'),
  KAFKA_SESSION_TIMEOUT_MS: setting(int(6000, 300000), '30000', 'Group session timeout; the member is dropped when no heartbeat arrives within it.'),
  KAFKA_HEARTBEAT_INTERVAL_MS: setting(int(500, 60000), '3000', 'Heartbeat interval, also used between retries and during long batches.'),
  KAFKA_REBALANCE_TIMEOUT_MS: setting(int(6000, 600000), '60000', 'How long the group waits for members to rejoin during a rebalance.'),
  SCHEMA_REGISTRY_URL: setting(url, 'http://127.0.0.1:8081/apis/ccompat/v7', 'Confluent-compatible schema registry base URL.'),
  SCHEMA_REGISTRY_USERNAME: setting(optionalString, '', 'Registry basic-auth user (Confluent Cloud API key).'),
  SCHEMA_REGISTRY_PASSWORD: setting(optionalString, '', 'Registry basic-auth password.', true),
  SCHEMA_REGISTRY_TIMEOUT_MS: setting(int(100, 120000), '5000', 'Timeout of one registry request.'),
  SCHEMA_REGISTRY_CA_FILE: setting(
    pemFile('certificate'),
    '',
    "PEM file of the CA certificate(s) that signed an https registry's certificate; replaces the system CA store for the registry. Read at start.",
  ),
  S3_BUCKET: setting(BUCKET_NAME, 'tow-and-go', 'Destination bucket.'),
  S3_PREFIX: setting(KEY_PREFIX, 'tow-and-go/', 'Key prefix; objects land at <prefix><last_modified>.json.'),
  S3_ENDPOINT: setting(ENDPOINT, LOCAL_S3_ENDPOINT, 'S3 endpoint URL. Empty for AWS S3 itself.'),
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
  S3_SSE: setting(
    z.enum(['none', 'AES256', 'aws:kms']),
    'none',
    "Server-side encryption asked for on every PUT: none (the bucket's default applies), AES256 (SSE-S3) or aws:kms (SSE-KMS).",
  ),
  S3_SSE_KMS_KEY_ID: setting(optionalString, '', "KMS key id or ARN for S3_SSE=aws:kms; empty uses the account's AWS-managed key."),
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
  S3_DESTINATIONS: setting(
    DESTINATIONS,
    '',
    'Several destinations, as a JSON list of {name, bucket, prefix, region, endpoint, compression} (all but name and bucket optional, defaulting to the S3_* settings above; credentials, SSE, timeouts and S3_ON_CONFLICT are shared). A record is committed only when every destination has it. Empty: one destination, "default", from S3_BUCKET and the rest.',
  ),
  LATEST_POINTER: setting(
    z.enum(['if-match', 'lease', 'off']),
    'if-match',
    'Keep <prefix>latest.json pointing at the newest snapshot of each destination, forward only: if-match (conditional writes, atomic on AWS S3), lease (adds a lock object, for stores whose If-Match is not atomic, such as S3Proxy), or off.',
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
  EXPECTED_CADENCE_SECONDS: setting(
    int(0, 31536000),
    '0',
    'Expected seconds between consecutive snapshots of a partition (their last_modified); a longer gap counts in tow_and_go_feed_gaps_total. 0 turns it off.',
  ),
} as const;

type Settings = typeof SETTINGS;
export type Config = Readonly<{ [K in keyof Settings]: z.output<Settings[K]['schema']> }>;
export type SettingName = keyof Settings;

type Env = Readonly<Record<string, string | undefined>>;

/** A setting left unset takes the value of a well-known variable before its default. */
const FALLBACKS: Partial<Record<SettingName, string>> = { KAFKA_SASL_AWS_REGION: 'AWS_REGION' };

/**
 * Parses every setting; collects all problems and throws one ConfigError whose message has one
 * line per bad variable, naming it. A bad value is echoed only as far as it cannot be a secret.
 */
export function loadConfig(env: Env): Config {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, Setting<z.ZodType>][]) {
    const fallback = FALLBACKS[name];
    const raw = env[name] ?? (fallback === undefined ? undefined : env[fallback]) ?? spec.default;
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) out[name] = parsed.data;
    else problems.push(`${name}=${shownValue(spec, raw)}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  const config = out as Config;
  if (problems.length === 0) problems.push(...crossChecks(config));
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join(' | ')}`);
  return Object.freeze(config);
}

function shownValue(spec: Setting<z.ZodType>, raw: string): string {
  return spec.secret || looksLikePem(raw) ? '<redacted>' : JSON.stringify(redactUserInfo(raw));
}

/** The effective config for the startup log: secrets replaced, never printed. */
export function redactedConfig(c: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, Setting<z.ZodType>][]) {
    const value = c[name];
    if (spec.secret && value !== undefined) out[name] = '<redacted>';
    else if (value instanceof PemFile) out[name] = value.path;
    else out[name] = typeof value === 'string' ? withoutUserInfo(value) : value;
  }
  return out;
}

/**
 * The last line of defence for a line printed on the way out (an error from a library, say): the
 * value of every secret setting, and the password of every URL setting, replaced wherever it appears.
 */
export function redactSecrets(text: string, env: Env): string {
  const secrets: string[] = [];
  for (const [name, spec] of Object.entries(SETTINGS) as [SettingName, Setting<z.ZodType>][]) {
    const value = env[name];
    if (value === undefined) continue;
    if (spec.secret) secrets.push(value);
    secrets.push(...urlPasswords(value));
  }
  return scrub(text, secrets);
}
