#!/usr/bin/env node
/**
 * tow-and-go consume | publish [file|-] | replay … | offsets reset … | get … | stack up|down|status|…
 * Exit codes: 0 done, 1 failed at run time, 2 bad usage, input or configuration, or a dependency
 * that refused the service (a wrong password, a missing ACL, an untrusted certificate, a missing
 * bucket: src/preflight.ts), each with one line on stderr.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runGet } from './archive/get-command.ts';
import { reconcileCommand } from './archive/reconcile-command.ts';
import { AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from './codec.ts';
import { parseCompression } from './compression.ts';
import { type Config, loadConfig, redactSecrets } from './config.ts';
import type { SourceRecord } from './dlq.ts';
import { ConfigError, DependencyRefusedError, describeError, InputError } from './errors.ts';
import { createLogger } from './logger.ts';
import { buildAdapters, buildPipeline, kafkaScopeOf, refusalScope, registrySettings, startConsumerService, startupChecksOf } from './main.ts';
import { Metrics } from './metrics.ts';
import { resetGroupOffsets } from './offsets.ts';
import { type KafkaCheckScope, kafkaCheck, startupChecks } from './preflight.ts';
import { startProgress } from './progress.ts';
import { parseSnapshots, publishSnapshots, readInput } from './publish.ts';
import { kafkaRefusal } from './refusals.ts';
import { checkReplayGroup, parseFrom, parseTo, resolveRanges, runReplay } from './replay.ts';
import { ReplayTracker } from './replay-tracker.ts';
import { createKafka } from './source/kafka.ts';
import { filterKnownWarnings } from './warnings.ts';

const USAGE = `usage:
  tow-and-go consume                      run the sink (consumer group) until SIGTERM/SIGINT
  tow-and-go publish [--compression none|gzip|snappy|lz4|zstd] [file|-]
                                          publish one JSON snapshot or JSON Lines (default: stdin)
  tow-and-go replay [--from earliest|<ISO time>|<p:o,…>] [--to latest|<ISO time>] [--group id] [--dry-run]
                                          re-write a range of the topic to S3 (own consumer group)
  tow-and-go offsets reset --group <id> --to earliest|<ISO time>|<p:o,…> [--topic <topic>]
                                          move a stopped consumer group's offsets
  tow-and-go reconcile [--from earliest|<ISO time>|<p:o,…>] [--to latest|<ISO time>] [--repair]
                                          account for every record of a range (S3, DLQ); exit 1 if any is not
  tow-and-go get --at <ISO time|unix seconds> | --latest [--out file]
                                          the archived snapshot current at a time, or the newest
  tow-and-go stack up|down|status|clean   the local Kafka + registry + S3 stack
  tow-and-go stack start|stop|restart <kafka|registry|s3proxy>`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'consume':
      return consume(loadConfig(process.env));
    case 'publish':
      return publish(loadConfig(process.env), args);
    case 'replay':
      return replay(loadConfig(process.env), args);
    case 'offsets':
      return offsets(loadConfig(process.env), args);
    case 'reconcile':
      return reconcileCommand(loadConfig(process.env), args);
    case 'get':
      return runGet(loadConfig(process.env), args, {
        stdout: (bytes) => process.stdout.write(bytes),
        stderr: (line) => process.stderr.write(`${line}\n`),
        stdoutIsTty: process.stdout.isTTY === true,
      });
    case 'stack':
      return stack(args);
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}

async function consume(config: Config): Promise<number> {
  const log = createLogger(config.LOG_LEVEL);
  const service = await startConsumerService(config, log);
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  let fatal: unknown;
  const reason = await Promise.race([
    signalled,
    service.failed.then((error) => {
      fatal = error;
      return 'fatal';
    }),
  ]);
  const inTime = await service.stop(reason);
  // A dependency refused the service: its one line and exit 2, as at start.
  if (fatal instanceof DependencyRefusedError) throw fatal;
  return reason === 'fatal' || !inTime ? 1 : 0;
}

/** What a one-shot command does when a dependency is down at start. */
const GOING_ON = 'going on: the command retries it as it always does';

/** The start-up checks' logger for one-shot commands: their warnings, not their info line. */
function quiet(log: ReturnType<typeof createLogger>): ReturnType<typeof createLogger> {
  return log.child({ component: 'start-up check' }, { level: log.isLevelEnabled('info') ? 'warn' : log.level });
}

/** Runs `work`, turning a Kafka failure that will not pass into its DependencyRefusedError (exit 2). */
async function refusalsOf<T>(config: Config, scope: KafkaCheckScope, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw kafkaRefusal(error, refusalScope(config, scope)) ?? error;
  }
}

async function publish(config: Config, args: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: { compression: { type: 'string', default: 'none' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 1) throw new InputError('usage: tow-and-go publish [--compression none|gzip|snappy|lz4|zstd] [file|-]');
  const compression = parseCompression(values.compression);
  const { text, source } = await readInput(positionals[0]);
  const { snapshots } = parseSnapshots(
    text,
    source,
    { minLastModified: config.MIN_LAST_MODIFIED, maxFutureSkewSeconds: config.MAX_FUTURE_SKEW_SECONDS, maxLinks: config.MAX_LINKS },
    Math.floor(Date.now() / 1000),
  );
  const log = createLogger(config.LOG_LEVEL);
  const scope = kafkaScopeOf(config, 'publish');
  // Warnings only: stdout is the one "published" line at the default level.
  await startupChecks(startupChecksOf(config, scope, { registry: true, s3: false }), quiet(log), GOING_ON);
  const registry = createRegistry(registrySettings(config));
  const encoder = new AvroEncoder(registry, loadSnapshotSchema().raw, valueSubject(config.KAFKA_TOPIC));
  const kafka = createKafka(config, log.child({ component: 'kafka' }));
  const schemaId = await refusalsOf(config, scope, () => publishSnapshots(kafka, config.KAFKA_TOPIC, encoder, snapshots, compression));
  process.stdout.write(`published ${snapshots.length} snapshot(s) to ${config.KAFKA_TOPIC} with schema id ${schemaId}\n`);
  return 0;
}

async function replay(config: Config, args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      from: { type: 'string', default: 'earliest' },
      to: { type: 'string', default: 'latest' },
      group: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const from = parseFrom(values.from);
  const to = parseTo(values.to);
  const dryRun = values['dry-run'];
  const groupId = values.group ?? `tow-and-go-replay-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const log = createLogger(config.LOG_LEVEL);
  const scope = kafkaScopeOf(config, 'replay', groupId);
  await startupChecks(startupChecksOf(config, scope, { registry: true, s3: true }), log.child({ component: 'start-up check' }), GOING_ON);
  return refusalsOf(config, scope, () => replayChecked(config, log, { from, to, dryRun, groupId }));
}

async function replayChecked(
  config: Config,
  log: ReturnType<typeof createLogger>,
  o: { from: ReturnType<typeof parseFrom>; to: ReturnType<typeof parseTo>; dryRun: boolean; groupId: string },
): Promise<number> {
  const { from, to, dryRun, groupId } = o;
  const metrics = new Metrics();
  const { codec, sink, bodies, kafka, producer } = buildAdapters(config, log, metrics);
  const admin = kafka.admin();
  await admin.connect();
  const ranges = await (async () => {
    await checkReplayGroup(admin, groupId, config.KAFKA_GROUP_ID);
    return resolveRanges(admin, config.KAFKA_TOPIC, from, to);
  })().finally(() => admin.disconnect());
  const tracker = new ReplayTracker(ranges);
  await producer.connect();
  // Offsets bound the range; record timestamps make a time range exact (CreateTime need not be monotonic).
  const fromMs = from.kind === 'time' ? from.ms : Number.NEGATIVE_INFINITY;
  const toMs = to.kind === 'time' ? to.ms : Number.POSITIVE_INFINITY;
  const accept = (r: SourceRecord) => Number(r.timestamp) >= fromMs && Number(r.timestamp) < toMs;
  const pipeline = buildPipeline(config, { codec, sink, bodies, producer, log, metrics }, { accept, dryRun });
  log.info({ groupId, topic: config.KAFKA_TOPIC, ranges, dryRun }, 'replay starting');
  const progress = startProgress({
    label: dryRun ? 'replay (dry run)' : 'replay',
    sample: () => tracker.progress(),
    tty: process.stderr.isTTY === true,
    intervalMs: config.PROGRESS_INTERVAL_MS,
    write: (text) => process.stderr.write(text),
    log: (report) => log.info({ progress: report }, 'replay progress'),
  });
  try {
    const summary = await runReplay(
      kafka,
      pipeline,
      metrics,
      {
        topic: config.KAFKA_TOPIC,
        groupId,
        commit: !dryRun,
        tracker,
        heartbeatIntervalMs: config.KAFKA_HEARTBEAT_INTERVAL_MS,
        sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
      },
      log,
    );
    progress.stop();
    process.stdout.write(`${JSON.stringify({ replay: { groupId, dryRun, ...summary } })}\n`);
    return 0;
  } finally {
    progress.stop();
    await bodies.close();
    await producer.disconnect();
    await sink.close();
  }
}

async function offsets(config: Config, args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { group: { type: 'string' }, to: { type: 'string' }, topic: { type: 'string' } }, strict: true });
  if (sub !== 'reset' || values.group === undefined || values.to === undefined)
    throw new InputError('usage: tow-and-go offsets reset --group <id> --to earliest|<ISO time>|<partition:offset,…> [--topic <topic>]');
  const log = createLogger(config.LOG_LEVEL);
  const topic = values.topic ?? config.KAFKA_TOPIC;
  const scope: KafkaCheckScope = {
    topic: { name: topic, setting: values.topic === undefined ? 'KAFKA_TOPIC' : '--topic', operations: 'DESCRIBE' },
    group: { name: values.group, setting: '--group', operations: 'READ' },
  };
  await startupChecks([kafkaCheck(config, scope)], quiet(log), GOING_ON);
  const { group, to } = values;
  return refusalsOf(config, scope, async () => {
    const admin = createKafka(config, log.child({ component: 'kafka' })).admin();
    await admin.connect();
    try {
      const partitions = await resetGroupOffsets(admin, group, topic, to);
      process.stdout.write(`${JSON.stringify({ reset: { group, topic, partitions } })}\n`);
      return 0;
    } finally {
      await admin.disconnect();
    }
  });
}

function stack(args: readonly string[]): number {
  const script = fileURLToPath(new URL('../stack/stack.sh', import.meta.url));
  const result = spawnSync('bash', [script, ...args], { stdio: 'inherit' });
  return result.status ?? 1;
}

filterKnownWarnings();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // kafkajs and the SDK may keep sockets alive briefly; the command is done.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (error: unknown) => {
    const permanentInput =
      error instanceof ConfigError ||
      error instanceof InputError ||
      error instanceof DependencyRefusedError ||
      (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'));
    // Config errors are already redacted; anything else (a library's message) is scrubbed of every secret setting's value.
    process.stderr.write(`tow-and-go: ${redactSecrets(describeError(error), process.env)}\n`);
    process.exit(permanentInput ? 2 : 1);
  },
);
