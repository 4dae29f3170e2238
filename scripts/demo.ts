/**
 * `npm run demo`: the main job on the local stack, start to finish.
 * 1. brings the stack up (Kafka, Apicurio Registry, S3Proxy), 2. publishes the seed's example
 * snapshot, 3. runs the consumer until the snapshot has landed and its offset is committed,
 * 4. prints where it landed and what it holds, then stops the consumer (the stack keeps running).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import pino from 'pino';
import { AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from '../src/codec.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { s3Settings, startConsumerService } from '../src/main.ts';
import { publishSnapshots } from '../src/publish.ts';
import { createS3Client } from '../src/sink/s3.ts';
import { objectKey, type Snapshot } from '../src/snapshot.ts';
import { createKafka } from '../src/source/kafka.ts';
import { filterKnownWarnings } from '../src/warnings.ts';

/** The seed's example (the upload job's documented input), shipped in avro/examples/. */
const SEED = JSON.parse(readFileSync(new URL('../avro/examples/seed-snapshot.json', import.meta.url), 'utf8')) as Snapshot;

function step(text: string): void {
  process.stdout.write(`\n==> ${text}\n`);
}

async function main(): Promise<void> {
  step('starting the local stack (first run downloads Kafka, Apicurio Registry and S3Proxy from Maven Central)');
  const up = spawnSync('bash', [fileURLToPath(new URL('../stack/stack.sh', import.meta.url)), 'up'], { stdio: 'inherit' });
  if (up.status !== 0) throw new Error('stack/stack.sh up failed; see .stack/logs/');

  const config = loadConfig({ ...process.env, PROGRESS_INTERVAL_MS: '0', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' });
  step(`publishing the seed example to ${config.KAFKA_TOPIC}`);
  const registry = createRegistry({ url: config.SCHEMA_REGISTRY_URL, timeoutMs: config.SCHEMA_REGISTRY_TIMEOUT_MS });
  const encoder = new AvroEncoder(registry, loadSnapshotSchema().raw, valueSubject(config.KAFKA_TOPIC));
  const schemaId = await publishSnapshots(createKafka(config, pino({ level: 'silent' })), config.KAFKA_TOPIC, encoder, [SEED]);
  process.stdout.write(`published last_modified=${SEED.last_modified} with schema id ${schemaId}\n`);

  step(`running the consumer (group ${config.KAFKA_GROUP_ID}) until the snapshot lands`);
  const service = await startConsumerService(config, createLogger(config.LOG_LEVEL));
  const key = objectKey(config.S3_PREFIX, SEED);
  const s3 = createS3Client(s3Settings(config));
  const deadline = Date.now() + 120_000;
  let body: string | undefined;
  while (body === undefined && Date.now() < deadline) {
    body = await s3
      .send(new GetObjectCommand({ Bucket: config.S3_BUCKET, Key: key }))
      .then((r) => r.Body?.transformToString('utf8'))
      .catch(() => undefined);
    if (body === undefined || service.metrics.commits.total() === 0) {
      body = undefined;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const inTime = await service.stop('demo finished');
  s3.destroy();
  if (body === undefined) throw new Error(`s3://${config.S3_BUCKET}/${key} did not appear within 120 s`);
  if (JSON.stringify(JSON.parse(body)) !== JSON.stringify(SEED)) throw new Error(`s3://${config.S3_BUCKET}/${key} holds something else: ${body}`);

  step('done');
  process.stdout.write(`landed: s3://${config.S3_BUCKET}/${key} (S3Proxy at ${config.S3_ENDPOINT}, files under .stack/s3/)\n${body}\n`);
  process.stdout.write(`records finished: ${service.metrics.records.total()}, commits: ${service.metrics.commits.total()}, clean stop: ${inTime}\n`);
  process.stdout.write('the stack keeps running: `npm run stack:down` stops it\n');
}

filterKnownWarnings();
main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
