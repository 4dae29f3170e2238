/**
 * `tow-and-go reconcile [--from earliest|<ISO time>|<p:o,…>] [--to latest|<ISO time>] [--repair]`:
 * the command around runReconcile (reconcile.ts): arguments, start-up checks, adapters, output.
 *
 * stdout carries one JSON summary line and nothing else (logs go to stderr), so scripts can read
 * it. stderr carries the logs, the progress (a redrawn line on a terminal), and one JSON line per
 * record still unaccounted. Exit 0 when every record is accounted for, 1 when any is not (or the
 * run failed), 2 on bad usage or a refusal at start.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Message } from 'kafkajs';
import type { Config } from '../config.ts';
import { destinationSettings } from '../config-views.ts';
import { InputError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { buildAdapters, buildPipeline, refusalScope, startupChecksOf } from '../main.ts';
import { Metrics } from '../metrics.ts';
import { type KafkaCheckScope, startupChecks } from '../preflight.ts';
import { startProgress } from '../progress.ts';
import { kafkaRefusal } from '../refusals.ts';
import { parseFrom, parseTo } from '../replay.ts';
import { createS3Client } from '../sink/s3.ts';
import { runReconcile } from './reconcile.ts';
import { unaccountedLine } from './reconcile-classify.ts';
import { BodyInspector, ObjectHeads, type RetrySettings } from './reconcile-inspect.ts';
import { holdingDeadLetters, repairMissing } from './reconcile-repair.ts';

export const RECONCILE_USAGE = 'usage: tow-and-go reconcile [--from earliest|<ISO time>|<p:o,…>] [--to latest|<ISO time>] [--repair]';

/** Records examined at once: each is at most one HeadObject, and S3 serves many in parallel. */
const CONCURRENCY = 32;
/** A dependency failing this many times in a row fails the run (about a minute at the default backoff). */
const ATTEMPTS = 8;

/** Where the command writes; the process's streams unless a test gives its own. */
export interface CommandIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly stderrIsTTY: boolean;
}

const processIo: CommandIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stderrIsTTY: process.stderr.isTTY === true,
};

/** What a one-shot command does when a dependency is down at start (as cli.ts says it). */
const GOING_ON = 'going on: the command retries it as it always does';

/** Pure: the parsed arguments; InputError on bad usage. */
export function parseReconcileArgs(args: readonly string[]): { from: string; to: string; repair: boolean } {
  try {
    const { values } = parseArgs({
      args: [...args],
      options: { from: { type: 'string', default: 'earliest' }, to: { type: 'string', default: 'latest' }, repair: { type: 'boolean', default: false } },
      allowPositionals: false,
      strict: true,
    });
    parseFrom(values.from);
    parseTo(values.to);
    return values;
  } catch (error) {
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))
      throw new InputError(`${error.message}; ${RECONCILE_USAGE}`, { cause: error });
    throw error;
  }
}

export async function reconcileCommand(config: Config, args: readonly string[], io: CommandIo = processIo): Promise<number> {
  const o = parseReconcileArgs(args);
  const groupId = `tow-and-go-reconcile-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`;
  const log = createLogger(config.LOG_LEVEL, 2);
  // Reconcile reads the DLQ topic (it never writes it) and uses a group of its own, which it deletes.
  const scope: KafkaCheckScope = {
    topic: { name: config.KAFKA_TOPIC, setting: 'KAFKA_TOPIC', operations: 'READ and DESCRIBE' },
    dlqTopic: { name: config.KAFKA_DLQ_TOPIC, setting: 'KAFKA_DLQ_TOPIC', operations: 'READ and DESCRIBE' },
    group: { name: groupId, setting: 'the tow-and-go-reconcile-* groups', operations: 'READ and DELETE' },
  };
  await startupChecks(startupChecksOf(config, scope, { registry: true, s3: true }), log.child({ component: 'start-up check' }), GOING_ON);
  try {
    return await reconcileChecked(config, { ...o, groupId }, io, log);
  } catch (error) {
    throw kafkaRefusal(error, refusalScope(config, scope)) ?? error;
  }
}

async function reconcileChecked(
  config: Config,
  o: { from: string; to: string; repair: boolean; groupId: string },
  io: CommandIo,
  log: ReturnType<typeof createLogger>,
): Promise<number> {
  const retry: RetrySettings = { retryInitialMs: config.RETRY_INITIAL_MS, retryMaxMs: config.RETRY_MAX_MS, attempts: ATTEMPTS };
  // The repair writes through the live service's adapters (every destination, and what follows a
  // landing), but conditionally whatever S3_ON_CONFLICT says: a conflict is reported, never overwritten.
  const adapters = buildAdapters({ ...config, S3_ON_CONFLICT: 'dlq' }, log.child({ component: 'repair' }), new Metrics());
  const { codec, bodies, kafka, producer } = adapters;
  const destinations = destinationSettings(config).map((d) => ({ name: d.name, prefix: d.prefix, client: createS3Client(d.s3), s3: d.s3 }));
  const limits = { minLastModified: config.MIN_LAST_MODIFIED, maxFutureSkewSeconds: config.MAX_FUTURE_SKEW_SECONDS, maxLinks: config.MAX_LINKS };
  const held: Message[] = [];
  const repairPipeline = buildPipeline(config, {
    codec,
    sink: adapters.sink,
    bodies,
    producer: holdingDeadLetters(producer, (m) => held.push(m)),
    // Its dead-letter warnings would be false (nothing is sent); the repair logs what it does.
    log: log.child({ component: 'repair' }, { level: 'error' }),
    metrics: new Metrics(),
  });
  let connected = false;
  try {
    const result = await runReconcile(
      {
        topic: config.KAFKA_TOPIC,
        dlqTopic: config.KAFKA_DLQ_TOPIC,
        groupId: o.groupId,
        from: parseFrom(o.from),
        to: parseTo(o.to),
        heartbeatIntervalMs: config.KAFKA_HEARTBEAT_INTERVAL_MS,
        sessionTimeoutMs: config.KAFKA_SESSION_TIMEOUT_MS,
        concurrency: CONCURRENCY,
      },
      {
        kafka,
        inspector: new BodyInspector(codec, bodies, { limits, maxPayloadBytes: config.MAX_PAYLOAD_BYTES, retry }, log),
        destinations: destinations.map((d) => ({
          name: d.name,
          prefix: d.prefix,
          heads: new ObjectHeads(d.client, { bucket: d.s3.bucket, timeoutMs: d.s3.timeoutMs, retry }, log),
        })),
        ...(o.repair
          ? {
              repair: async (records) => {
                // The uploaded notification and the change stream (when on) send with it; dead letters never do.
                await producer.connect();
                connected = true;
                await repairMissing(repairPipeline, records, ATTEMPTS, log);
                if (held.length > 0) log.warn({ records: held.length }, 'repair: records that now conflict were not dead-lettered; they are reported');
              },
            }
          : {}),
        progress: (sample) => {
          const handle = startProgress({
            label: 'reconcile',
            sample,
            tty: io.stderrIsTTY,
            intervalMs: config.PROGRESS_INTERVAL_MS,
            write: io.stderr,
            log: (report) => log.info({ progress: report }, 'reconcile progress'),
          });
          return () => handle.stop();
        },
        log,
        nowSeconds: () => Math.floor(Date.now() / 1000),
      },
    );
    for (const u of result.unaccounted) io.stderr(`${unaccountedLine(u.facts, u.verdict)}\n`);
    const range = { topic: config.KAFKA_TOPIC, from: o.from, to: o.to, ranges: result.ranges, offsets: result.offsets, groupId: o.groupId };
    io.stdout(`${JSON.stringify({ reconcile: { ...range, repair: o.repair, ...result.counts } })}\n`);
    return result.unaccounted.length > 0 ? 1 : 0;
  } finally {
    await bodies.close();
    await adapters.sink.close();
    for (const d of destinations) d.client.destroy();
    if (connected) await producer.disconnect();
  }
}
