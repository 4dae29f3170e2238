/**
 * Helpers for integration tests against the real stack: unique topics, groups and prefixes per
 * test, publishing (ours and a third-party encoder), and reading back S3, offsets and the DLQ.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { type Admin, type IHeaders, type ITopicConfig, Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from '../../src/codec.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { s3Settings } from '../../src/main.ts';
import { publishSnapshots } from '../../src/publish.ts';
import { createS3Client } from '../../src/sink/s3.ts';
import type { Snapshot } from '../../src/snapshot.ts';
import { createKafka } from '../../src/source/kafka.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const NODE = process.execPath;
export const silent = pino({ level: 'silent' });

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export interface TestEnv {
  readonly topic: string;
  readonly dlqTopic: string;
  readonly group: string;
  readonly prefix: string;
  readonly env: Record<string, string>;
  readonly config: Config;
}

/** Settings that make tests quick: short backoffs and session timeouts. */
const QUICK: Readonly<Record<string, string>> = {
  RETRY_INITIAL_MS: '100',
  RETRY_MAX_MS: '2000',
  KAFKA_SESSION_TIMEOUT_MS: '10000',
  KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
  KAFKA_REBALANCE_TIMEOUT_MS: '20000',
  SHUTDOWN_TIMEOUT_MS: '20000',
  // A write (up to 3 S3 calls) must fit in the session timeout; the config refuses it otherwise.
  S3_TIMEOUT_MS: '3000',
};

/** A topic of its own (with DLQ topic, group and S3 prefix named after it), quiet, on a free HTTP port. */
export function isolatedEnv(topic: string, overrides: Record<string, string> = {}): TestEnv {
  const env: Record<string, string> = {
    KAFKA_TOPIC: topic,
    KAFKA_DLQ_TOPIC: `${topic}.dlq`,
    KAFKA_GROUP_ID: `${topic}-group`,
    S3_PREFIX: `${topic}/`,
    HTTP_PORT: '0',
    LOG_LEVEL: 'warn',
    PROGRESS_INTERVAL_MS: '0',
    ...overrides,
  };
  const config = loadConfig(env);
  return { topic, dlqTopic: config.KAFKA_DLQ_TOPIC, group: config.KAFKA_GROUP_ID, prefix: config.S3_PREFIX, env, config };
}

/** A fresh topic, DLQ topic, group and S3 prefix, with settings tuned for quick tests. */
export function testEnv(name: string, overrides: Record<string, string> = {}): TestEnv {
  return isolatedEnv(uniqueName(`it-${name}`), { ...QUICK, ...overrides });
}

export function kafkaClient(): Kafka {
  return new Kafka({ clientId: 'tow-and-go-tests', brokers: ['127.0.0.1:9092'], logLevel: logLevel.NOTHING, retry: { retries: 10 } });
}

export async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

export async function createTopics(t: TestEnv, partitions = 3): Promise<void> {
  await withAdmin((admin) =>
    createTopicsReady(admin, [
      { topic: t.topic, numPartitions: partitions, replicationFactor: 1 },
      { topic: t.dlqTopic, numPartitions: 1, replicationFactor: 1 },
    ]),
  );
}

/**
 * Creates topics and waits until every partition has a leader. Not kafkajs' `waitForLeaders`: it
 * retries only LEADER_NOT_AVAILABLE, but a KRaft broker whose metadata cache is a moment behind the
 * controller answers UNKNOWN_TOPIC_OR_PARTITION for a topic just created, and kafkajs then gives up
 * (seen in a cold CI run with several tests creating topics at once).
 */
export async function createTopicsReady(admin: Admin, topics: ITopicConfig[], timeoutMs = 30_000): Promise<void> {
  await admin.createTopics({ waitForLeaders: false, topics });
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: names });
      if (found.length === names.length && found.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (Date.now() > deadline) throw new Error(`topics ${names.join(', ')} have no leaders after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export function s3(): S3Client {
  return createS3Client(s3Settings(loadConfig({})));
}

export async function publish(t: TestEnv, snapshots: readonly Snapshot[]): Promise<number> {
  const c = t.config;
  const registry = createRegistry({ url: c.SCHEMA_REGISTRY_URL, timeoutMs: 10000 });
  const encoder = new AvroEncoder(registry, loadSnapshotSchema().raw, valueSubject(t.topic));
  return publishSnapshots(createKafka(c, silent), t.topic, encoder, snapshots);
}

/** Produces raw records (poison, hand-encoded) straight to the topic. */
export async function produceRaw(
  topic: string,
  messages: ReadonlyArray<{ key: string | null; value: Buffer | null; headers?: IHeaders; partition?: number }>,
): Promise<void> {
  const producer = kafkaClient().producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ ...m })) });
  } finally {
    await producer.disconnect();
  }
}

/**
 * The snapshot objects under the prefix (with S3Proxy's temporary files of writes in progress).
 * The latest pointer, its lock and their temporary files (`<prefix>latest.json…`) are left out:
 * tests of the pointer read it on their own.
 */
export async function listKeys(prefix: string): Promise<string[]> {
  return (await listAllKeys(prefix)).filter((k) => !k.startsWith(`${prefix}latest.json`));
}

/** Every key under the prefix, the latest pointer included. */
export async function listAllKeys(prefix: string): Promise<string[]> {
  const client = s3();
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: 'tow-and-go', Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
    token = page.NextContinuationToken;
  } while (token !== undefined);
  client.destroy();
  return keys.sort();
}

export async function getObject(key: string): Promise<{ body: string; contentType: string | undefined; metadata: Record<string, string> }> {
  const client = s3();
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: 'tow-and-go', Key: key }));
    return { body: (await res.Body?.transformToString('utf8')) ?? '', contentType: res.ContentType, metadata: res.Metadata ?? {} };
  } finally {
    client.destroy();
  }
}

/** The stored bytes as they are (the SDK does not undo Content-Encoding). */
export async function getObjectBytes(key: string): Promise<{ bytes: Buffer; contentEncoding: string | undefined; metadata: Record<string, string> }> {
  const client = s3();
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: 'tow-and-go', Key: key }));
    return { bytes: Buffer.from((await res.Body?.transformToByteArray()) ?? []), contentEncoding: res.ContentEncoding, metadata: res.Metadata ?? {} };
  } finally {
    client.destroy();
  }
}

export async function headObject(key: string): Promise<Record<string, string>> {
  const client = s3();
  try {
    return (await client.send(new HeadObjectCommand({ Bucket: 'tow-and-go', Key: key }))).Metadata ?? {};
  } finally {
    client.destroy();
  }
}

export async function deletePrefix(prefix: string): Promise<void> {
  const keys = await listKeys(prefix);
  const client = s3();
  for (let i = 0; i < keys.length; i += 1000) {
    await client.send(new DeleteObjectsCommand({ Bucket: 'tow-and-go', Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) } }));
  }
  client.destroy();
}

/** Sum over partitions of committed offsets and of end offsets. */
export async function offsets(t: TestEnv): Promise<{ committed: Map<number, string>; end: Map<number, string> }> {
  return withAdmin(async (admin) => {
    const [group] = await admin.fetchOffsets({ groupId: t.group, topics: [t.topic] });
    const ends = await admin.fetchTopicOffsets(t.topic);
    return {
      committed: new Map((group?.partitions ?? []).map((p) => [p.partition, p.offset])),
      end: new Map(ends.map((p) => [p.partition, p.high])),
    };
  });
}

export async function allCommitted(t: TestEnv): Promise<boolean> {
  const { committed, end } = await offsets(t);
  for (const [partition, high] of end) {
    const c = committed.get(partition) ?? '-1';
    if (high !== '0' && c !== high) return false;
  }
  return true;
}

export interface DlqRecord {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
}

/** Reads the whole DLQ topic from the beginning (its end offsets as of now). */
export async function readTopic(topic: string): Promise<DlqRecord[]> {
  const ends = await withAdmin((admin) => admin.fetchTopicOffsets(topic));
  const total = ends.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  if (total === 0) return [];
  const consumer = kafkaClient().consumer({ groupId: uniqueName('reader') });
  const out: DlqRecord[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${out.length}/${total} records of ${topic}`)), 60_000);
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
        out.push({ partition, offset: message.offset, key: message.key?.toString('utf8') ?? null, value: message.value, headers });
        if (out.length >= total) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return out;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 120_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : ` (last error: ${String(last)})`}`);
}

export interface ConsumerProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
  readonly httpPort: () => Promise<number>;
}

/** Runs `tow-and-go consume` as a real process, so it can be SIGKILLed and SIGTERMed. */
export function spawnConsumer(t: TestEnv, extraEnv: Record<string, string> = {}): ConsumerProcess {
  const child = spawn(NODE, ['src/cli.ts', 'consume'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...t.env, LOG_LEVEL: 'info', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const httpPort = () =>
    waitFor('the consumer to log its HTTP port', async () => {
      const m = /"httpPort":(\d+)/.exec(out);
      return m?.[1] === undefined ? undefined : Number(m[1]);
    });
  return { child, output: () => out, exited, httpPort };
}

export function stack(...args: string[]): void {
  stackWith({}, ...args);
}

/** stack.sh with extra environment, e.g. S3PROXY_LATENCY_MS for a slow S3. */
export function stackWith(env: Record<string, string>, ...args: string[]): void {
  const result = spawnSync('bash', [`${ROOT}stack/stack.sh`, ...args], { stdio: 'inherit', timeout: 10 * 60_000, env: { ...process.env, ...env } });
  if (result.status !== 0) throw new Error(`stack.sh ${args.join(' ')} failed with ${String(result.status)}`);
}

/** n valid snapshots with distinct last_modified values starting at `base`. */
export function snapshots(n: number, base: number, links = 3): Snapshot[] {
  return Array.from({ length: n }, (_, i) => ({
    last_modified: base + i,
    tow_and_go: Array.from({ length: links }, (_, j) => ({ link_id: 17_800_000 + i * 10 + j, segment_id: j % 2 === 0 ? 457_000_000 + j : null })),
  }));
}

/** A base last_modified unique to this run, so tests never collide on keys (keys are per prefix anyway). */
export function baseTime(): number {
  return 1_684_216_515;
}
