/**
 * The local broker's secured listeners (stack/stack.sh, stack/README.md "Secured listeners"):
 * addresses, certificate files, users, the Java client configurations stack.sh writes, and Kafka's
 * own console tools run over them.
 *
 * Ports and the stack directory follow the same environment variables as stack.sh
 * (STACK_HOME, STACK_KAFKA_PORT, STACK_KAFKA_SASL_SSL_PORT, STACK_KAFKA_MTLS_PORT), so the same
 * tests can run against a second, private stack; the defaults are the shared stack's.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.ts';

const env = process.env;

export const STACK_HOME = env.STACK_HOME ?? `${ROOT}.stack`;
/** Certificates, keys, PKCS12 stores and client configurations, made by `stack.sh install|up`. */
export const SECURITY_DIR = `${STACK_HOME}/security`;

export const HOST = '127.0.0.1';
/** PLAINTEXT, no authentication: every client is User:ANONYMOUS, a super user. */
export const PLAINTEXT_PORT = Number(env.STACK_KAFKA_PORT ?? 9092);
/** SASL_SSL: SCRAM-SHA-256, SCRAM-SHA-512, PLAIN and OAUTHBEARER (unsecured JWTs); ACLs apply. */
export const SASL_SSL_PORT = Number(env.STACK_KAFKA_SASL_SSL_PORT ?? 9094);
/** SSL with a required client certificate (mTLS); the principal is the certificate's CN; ACLs apply. */
export const MTLS_PORT = Number(env.STACK_KAFKA_MTLS_PORT ?? 9095);
export const PLAINTEXT_BOOTSTRAP = `${HOST}:${PLAINTEXT_PORT}`;
export const SASL_SSL_BOOTSTRAP = `${HOST}:${SASL_SSL_PORT}`;
export const MTLS_BOOTSTRAP = `${HOST}:${MTLS_PORT}`;

/** The broker certificate's SAN holds exactly these two names: DNS:localhost and IP:127.0.0.1. */
export const SERVERNAME = 'localhost';
/** A name the broker certificate does not carry: TLS with it as servername must fail. */
export const WRONG_SERVERNAME = 'wrong.example';

/** The CA that signed the broker's and the client's certificates. */
export const CA_PEM = `${SECURITY_DIR}/ca.pem`;
/** An unrelated CA: trusting only it, the broker's certificate is unknown. */
export const OTHER_CA_PEM = `${SECURITY_DIR}/other-ca.pem`;
/** mTLS client certificate (CN=tow-and-go-mtls, signed by ca.pem) and its unencrypted PKCS#8 key. */
export const CLIENT_CERT_PEM = `${SECURITY_DIR}/client.pem`;
export const CLIENT_KEY_PEM = `${SECURITY_DIR}/client-key.pem`;
/** A client certificate with the same CN signed by the unrelated CA: the mTLS listener refuses it. */
export const OTHER_CLIENT_CERT_PEM = `${SECURITY_DIR}/other-client.pem`;
export const OTHER_CLIENT_KEY_PEM = `${SECURITY_DIR}/other-client-key.pem`;
/** PKCS12 stores (password STORE_PASSWORD): truststore.p12 holds ca.pem, other-truststore.p12 other-ca.pem. */
export const TRUSTSTORE_P12 = `${SECURITY_DIR}/truststore.p12`;
export const OTHER_TRUSTSTORE_P12 = `${SECURITY_DIR}/other-truststore.p12`;
export const CLIENT_P12 = `${SECURITY_DIR}/client.p12`;
export const STORE_PASSWORD = 'tow-and-go-store';

/** SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN. May read tow-and-go.* and it-* topics, write the DLQs, use the groups. */
export const USER = { username: 'tow-and-go', password: 'tow-and-go-secret' } as const;
/** Same ACLs as USER except that it may READ no topic (it keeps group READ and topic DESCRIBE/WRITE). */
export const NO_READ_USER = { username: 'no-read', password: 'no-read-secret' } as const;
/** The principal of client.pem on the mTLS listener (User:tow-and-go-mtls); same ACLs as USER. */
export const MTLS_PRINCIPAL = 'tow-and-go-mtls';
/** The `sub` that maps to User:tow-and-go over OAUTHBEARER. */
export const OAUTH_SUBJECT = 'tow-and-go';

/** Java client configurations (properties format) written by stack.sh; each carries its bootstrap.servers. */
export const PROPERTIES = {
  scramSha512: `${SECURITY_DIR}/client-scram-sha-512.properties`,
  scramSha256: `${SECURITY_DIR}/client-scram-sha-256.properties`,
  plain: `${SECURITY_DIR}/client-plain.properties`,
  oauthbearer: `${SECURITY_DIR}/client-oauthbearer.properties`,
  mtls: `${SECURITY_DIR}/client-mtls.properties`,
  noRead: `${SECURITY_DIR}/client-no-read.properties`,
} as const;

/**
 * An unsecured JWT (`alg: none`, empty signature) as the broker's OAUTHBEARER validator
 * (OAuthBearerUnsecuredValidatorCallbackHandler) accepts it: `sub` becomes the principal, `exp`
 * is required, `iat` and `scope` are optional.
 */
export function unsecuredJwt(claims: { sub?: string; lifetimeSeconds?: number; scope?: string } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const payload: Record<string, unknown> = { sub: claims.sub ?? OAUTH_SUBJECT, iat: now, exp: now + (claims.lifetimeSeconds ?? 3600) };
  if (claims.scope !== undefined) payload.scope = claims.scope;
  return `${b64({ alg: 'none' })}.${b64(payload)}.`;
}

/** Reads one setting of a properties file (no escapes, no continuation lines: what stack.sh writes). */
export function propertyOf(file: string, key: string): string | undefined {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([^#!\s=:][^=:]*?)\s*[=:]\s*(.*)$/.exec(line);
    if (m?.[1] === key) return m[2];
  }
  return undefined;
}

let scratch: string | undefined;
let scratchFiles = 0;

/** Removes the scratch files (call it in afterAll; process exit does it too, when it comes). */
export function removeScratch(): void {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

/** A new file path in one temp dir per process, removed by removeScratch or when the process exits. */
export function scratchFile(name: string): string {
  if (scratch === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'secure-stack-'));
    scratch = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  scratchFiles += 1;
  return join(scratch, `${scratchFiles}-${name}`);
}

/** A copy of a client configuration with some settings replaced, added or (null) removed, in a scratch file. */
export function withProperties(base: string, overrides: Readonly<Record<string, string | null>>): string {
  const lines = readFileSync(base, 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !Object.keys(overrides).some((k) => line.startsWith(`${k}=`)));
  for (const [k, v] of Object.entries(overrides)) if (v !== null) lines.push(`${k}=${v}`);
  const file = scratchFile('client.properties');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

export interface JavaRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The JVM flags stack.sh and test/support/clients.ts use for Kafka's tools: quick start, quiet logging. */
function jvm(): string[] {
  return [
    '-Xmx256m',
    '-XX:TieredStopAtLevel=1',
    '-XX:+UseSerialGC',
    '-Dstack.log.level=WARN',
    // Log lines (a refused login, a refused read) go to stderr; stdout carries only the output.
    '-Dstack.log.target=SYSTEM_ERR',
    `-Dlog4j2.configurationFile=${ROOT}stack/kafka/log4j2.properties`,
    '-cp',
    readFileSync(`${STACK_HOME}/install/kafka.classpath`, 'utf8').trim(),
  ];
}

/** Runs one of Kafka's tool classes on the stack's classpath, asynchronously (several can run side by side). Never throws for the tool's own failure. */
export function runKafkaTool(mainClass: string, args: readonly string[], input?: string, timeoutMs = 90_000): Promise<JavaRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('java', [...jvm(), mainClass, ...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** The bootstrap address a stack.sh client configuration names. */
function bootstrapOf(propertiesFile: string): string {
  const bootstrap = propertyOf(propertiesFile, 'bootstrap.servers');
  if (bootstrap === undefined) throw new Error(`${propertiesFile} has no bootstrap.servers`);
  return bootstrap;
}

/** A short form of a tool's stderr for assertion messages: its error lines, no stack frames. */
export function errorLines(run: JavaRun): string {
  return run.stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^\s+at /.test(l))
    .slice(0, 12)
    .join('\n');
}

/** Kafka's console producer over a secured listener: one record per line (no key); throws if the tool fails or logs an error. */
export async function produceWithJavaSecure(topic: string, lines: readonly string[], propertiesFile: string): Promise<void> {
  const run = await runKafkaTool(
    'org.apache.kafka.tools.ConsoleProducer',
    ['--bootstrap-server', bootstrapOf(propertiesFile), '--topic', topic, '--command-config', propertiesFile],
    `${lines.join('\n')}\n`,
  );
  if (run.status !== 0 || /\bERROR\b/.test(run.stderr)) {
    throw new Error(`console producer to ${topic} with ${propertiesFile} failed (status ${String(run.status)}):\n${errorLines(run)}`);
  }
}

/**
 * Kafka's console consumer over a secured listener, from the beginning, in `group` (the ACLs allow
 * groups starting with it- or tow-and-go), until `count` records or `timeoutMs` without one. It
 * does not throw: a refused login or read shows in `stderr` (the tool exits 0 on a
 * TopicAuthorizationException). `records` are the values, one per line.
 */
export async function consumeWithJavaSecure(
  topic: string,
  count: number,
  propertiesFile: string,
  group: string,
  timeoutMs = 30_000,
): Promise<JavaRun & { readonly records: string[] }> {
  const run = await runKafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
    '--bootstrap-server',
    bootstrapOf(propertiesFile),
    '--topic',
    topic,
    '--group',
    group,
    '--from-beginning',
    '--max-messages',
    String(count),
    '--timeout-ms',
    String(timeoutMs),
    '--command-config',
    propertiesFile,
  ]);
  return { ...run, records: run.stdout.split('\n').filter((l) => l !== '') };
}

/** `kafka-topics --list` over a secured listener: a real login and metadata request. */
export function listTopicsWithJavaSecure(propertiesFile: string): Promise<JavaRun> {
  return runKafkaTool('org.apache.kafka.tools.TopicCommand', ['--bootstrap-server', bootstrapOf(propertiesFile), '--command-config', propertiesFile, '--list']);
}

/** A topic name the ACLs cover (prefix it-), unique to this run. */
export function secureTopicName(label: string): string {
  return `it-secure-${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}
