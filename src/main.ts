/**
 * The composition root of `tow-and-go consume`: the only place where adapters meet.
 * source (Kafka) → codec (registry + Avro) → validate (zod) → sink (S3) → commit, with the DLQ for
 * records that can never be valid, and HTTP for health and metrics.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { LatestPointer } from './archive/latest-pointer.ts';
import { S3SnapshotArchive } from './archive/snapshot-archive.ts';
import { ChangePublisher } from './changes/change-publisher.ts';
import { loadChangeSchema } from './changes/change-record.ts';
import { AvroCodec, AvroEncoder, createRegistry, loadSnapshotSchema, valueSubject } from './codec.ts';
import { type Config, redactedConfig } from './config.ts';
import { type DestinationSettings, destinationSettings, kafkaScopeOf, primaryDestination, refusalScope, registrySettings, s3Settings } from './config-views.ts';
import { KafkaDeadLetterQueue } from './dlq.ts';
import { logDeadLetterLimits } from './dlq-limits.ts';
import { type Dependency, describeError } from './errors.ts';
import { Health, type HttpServer, startHttpServer } from './http.ts';
import { Metrics } from './metrics.ts';
import { Pipeline, type PipelineSettings } from './pipeline.ts';
import { type Check, type KafkaCheckScope, kafkaCheck, type Recheck, recheckUntilAnswered, registryCheck, s3Check, startupChecks } from './preflight.ts';
import { logProgressEvery } from './progress.ts';
import { kafkaRefusal } from './refusals.ts';
import { type AfterLanding, DestinationSet } from './sink/destinations.ts';
import { AdvanceLatestPointers, PublishChanges } from './sink/landing-steps.ts';
import { createS3Client, S3Sink, type SnapshotSink } from './sink/s3.ts';
import { loadUploadedSchema, UploadedNotifier } from './sink/uploaded-notifier.ts';
import { type BodyBuilder, inlineBodies } from './snapshot-transcoder.ts';
import { SnapshotWorkers } from './snapshot-workers.ts';
import { connectWithRetry } from './source/connect-with-retry.ts';
import { KafkaSource } from './source/consumer.ts';
import { createKafka, createProducer } from './source/kafka.ts';

export { kafkaScopeOf, refusalScope, registrySettings, s3Settings };

export interface RunningService {
  readonly health: Health;
  readonly metrics: Metrics;
  readonly http: HttpServer;
  /** Graceful stop within SHUTDOWN_TIMEOUT_MS; resolves true when it finished in time. */
  stop(reason: string): Promise<boolean>;
  /** Resolves with an error when the service failed for good (the process must exit non-zero). */
  readonly failed: Promise<unknown>;
}

export interface PipelineParts {
  readonly codec: AvroCodec;
  readonly sink: SnapshotSink;
  /** Body and hash; on the main thread when absent. */
  readonly bodies?: BodyBuilder;
  readonly producer: Producer;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** The pipeline as the live service and the replay both run it; `extra` adds replay's options. */
export function buildPipeline(c: Config, parts: PipelineParts, extra: Pick<PipelineSettings, 'accept' | 'dryRun'> = {}): Pipeline {
  // Objects are built for the first destination; the others get their copy from it (sink/destinations.ts).
  const first = primaryDestination(c);
  return new Pipeline(
    {
      prefix: first.prefix,
      compression: first.compression,
      limits: { minLastModified: c.MIN_LAST_MODIFIED, maxFutureSkewSeconds: c.MAX_FUTURE_SKEW_SECONDS, maxLinks: c.MAX_LINKS },
      maxPayloadBytes: c.MAX_PAYLOAD_BYTES,
      inflightPerPartition: c.INFLIGHT_PER_PARTITION,
      maxInflightBytes: c.MAX_INFLIGHT_BYTES,
      maxProcessInflightBytes: c.MAX_PROCESS_INFLIGHT_BYTES,
      retryInitialMs: c.RETRY_INITIAL_MS,
      retryMaxMs: c.RETRY_MAX_MS,
      commitIntervalMs: 1000,
      ...extra,
    },
    {
      decoder: parts.codec,
      ...(parts.bodies === undefined ? {} : { bodies: parts.bodies }),
      sink: parts.sink,
      dlq: new KafkaDeadLetterQueue(parts.producer, c.KAFKA_DLQ_TOPIC),
      log: parts.log.child({ component: 'pipeline' }),
      metrics: parts.metrics,
      nowSeconds: () => Math.floor(Date.now() / 1000),
      random: Math.random,
    },
  );
}

/** A body builder the caller closes when done (with the sink): its threads, if it has any. */
export type ClosableBodies = BodyBuilder & { close(): Promise<void> };

/** BODY_WORKERS threads for big snapshots (started on first use), or the main thread alone for 0. */
export function buildBodies(c: Config): ClosableBodies {
  if (c.BODY_WORKERS === 0) return { build: inlineBodies.build, close: async () => undefined };
  return new SnapshotWorkers({ workers: c.BODY_WORKERS });
}

export interface Adapters {
  readonly codec: AvroCodec;
  readonly sink: DestinationSet;
  readonly bodies: ClosableBodies;
  readonly kafka: Kafka;
  /** The DLQ's producer, also the notifications'; the caller connects it. */
  readonly producer: Producer;
}

/** Registry codec, the S3 destinations (and what follows a landing), body builder and Kafka clients, as every command that runs the pipeline needs them. */
export function buildAdapters(c: Config, log: Logger, metrics: Metrics): Adapters {
  const codec = new AvroCodec(registrySettings(c), loadSnapshotSchema().type);
  const kafka = createKafka(c, log.child({ component: 'kafka' }));
  const producer = createProducer(kafka);
  const destinations = destinationSettings(c).map((d) => ({ ...d, client: createS3Client(d.s3) }));
  const sink = new DestinationSet(
    destinations.map((d) => ({ name: d.name, bucket: d.s3.bucket, prefix: d.prefix, compression: d.compression, store: new S3Sink(d.client, d.s3) })),
    { builtWith: primaryDestination(c), metrics, after: afterLanding(c, destinations, producer) },
  );
  return { codec, sink, bodies: buildBodies(c), kafka, producer };
}

/** What runs once every destination has a snapshot, in this order: latest pointers, change stream, uploaded notification. */
function afterLanding(c: Config, destinations: readonly (DestinationSettings & { client: S3Client })[], producer: Producer): AfterLanding[] {
  const steps: AfterLanding[] = [];
  // One registry client for every encoder (its cache and connections are shared).
  const registry = createRegistry(registrySettings(c));
  const exclusion = c.LATEST_POINTER;
  if (exclusion !== 'off') {
    steps.push(
      new AdvanceLatestPointers(new Map(destinations.map((d) => [d.name, new LatestPointer(d.client, { bucket: d.s3.bucket, prefix: d.prefix, exclusion })]))),
    );
  }
  const [primary] = destinations;
  if (c.PUBLISH_CHANGES && primary !== undefined) {
    const archive = new S3SnapshotArchive(primary.client, { bucket: primary.s3.bucket, prefix: primary.prefix }, c.MIN_LAST_MODIFIED);
    const encoder = new AvroEncoder(registry, loadChangeSchema().raw, valueSubject(c.KAFKA_CHANGES_TOPIC));
    steps.push(new PublishChanges(new ChangePublisher({ archive, encoder, producer }, { topic: c.KAFKA_CHANGES_TOPIC })));
  }
  if (c.NOTIFY_UPLOADED) {
    const encoder = new AvroEncoder(registry, loadUploadedSchema(), valueSubject(c.KAFKA_UPLOADED_TOPIC));
    const encodings = new Map(destinations.map((d) => [d.name, d.compression === 'gzip' ? 'gzip' : undefined]));
    steps.push(new UploadedNotifier(producer, encoder, c.KAFKA_UPLOADED_TOPIC, encodings));
  }
  return steps;
}

/** The start-up checks of a command (src/preflight.ts): Kafka always, the registry and S3 as the command uses them. */
export function startupChecksOf(c: Config, scope: KafkaCheckScope, uses: { registry: boolean; s3: boolean }): Check[] {
  const checks: Check[] = [kafkaCheck(c, scope)];
  if (uses.registry) checks.push(registryCheck(registrySettings(c)));
  if (uses.s3) for (const d of destinationSettings(c)) checks.push(s3Check(() => createS3Client(d.s3), { bucket: d.s3.bucket, prefix: d.prefix }));
  return checks;
}

export async function startConsumerService(c: Config, log: Logger): Promise<RunningService> {
  log.info({ config: redactedConfig(c) }, 'starting tow-and-go consumer');
  // Before anything connects: a refusal throws DependencyRefusedError (exit 2); a dependency that
  // is down is asked again below until it answers, and the service is not ready until then.
  const scope = kafkaScopeOf(c, 'consume');
  const down = await startupChecks(startupChecksOf(c, scope, { registry: true, s3: true }), log.child({ component: 'start-up check' }));
  const refusalOf = (error: unknown) => kafkaRefusal(error, refusalScope(c, scope)) ?? error;
  const metrics = new Metrics({ expectedCadenceSeconds: c.EXPECTED_CADENCE_SECONDS, processMetrics: true });
  const { codec, sink, bodies, kafka, producer } = buildAdapters(c, log, metrics);
  // Connected in the background: a process started during a broker outage waits (not ready)
  // instead of exiting into a crash loop. A DLQ send before then fails retryably and stalls.
  const producerReady = connectWithRetry(
    async () => {
      await producer.connect();
      await logDeadLetterLimits(kafka, c.KAFKA_DLQ_TOPIC, c.MAX_PAYLOAD_BYTES, log);
    },
    log,
    'DLQ producer',
  );

  const pipeline = buildPipeline(c, { codec, sink, bodies, producer, log, metrics });

  // Ready: joined, in contact with the brokers, no partition stalled, and every dependency answered
  // its start-up check. Kafka's is not asked again: the consumer's own retries join when it is back.
  const waitingFor = new Set<Dependency>(down.map((check) => check.dependency).filter((d) => d !== 'kafka'));
  const health = new Health(
    () => pipeline.stalled,
    () => source.connected,
    () => [...waitingFor],
  );
  let fail: (error: unknown) => void = () => undefined;
  const failed = new Promise<unknown>((resolve) => {
    fail = resolve;
  });
  const rechecks: Recheck[] = down
    .filter((check) => waitingFor.has(check.dependency))
    .map((check) =>
      recheckUntilAnswered(
        check,
        {
          onAnswered: () => waitingFor.delete(check.dependency),
          // Down at start, then refused once it answered: the start-up check failed after all.
          onRefused: (error) => {
            if (health.fatal) return;
            health.fatal = true;
            log.fatal({ err: error.message }, 'start-up check refused');
            fail(error);
          },
        },
        log.child({ component: 'start-up check' }),
      ),
    );
  const source = new KafkaSource(
    kafka,
    {
      topic: c.KAFKA_TOPIC,
      groupId: c.KAFKA_GROUP_ID,
      fromBeginning: c.KAFKA_FROM_BEGINNING,
      sessionTimeoutMs: c.KAFKA_SESSION_TIMEOUT_MS,
      heartbeatIntervalMs: c.KAFKA_HEARTBEAT_INTERVAL_MS,
      rebalanceTimeoutMs: c.KAFKA_REBALANCE_TIMEOUT_MS,
      partitionsConcurrently: c.PARTITIONS_CONCURRENTLY,
    },
    pipeline,
    log.child({ component: 'source' }),
    metrics,
    {
      onJoined: (memberId, assignment) => {
        health.joined = true;
        metrics.groupJoins.add({}, 1);
        log.info({ memberId, assignment }, 'joined consumer group');
      },
      onRebalancing: () => {
        health.joined = false;
      },
      onRestarting: (error) => {
        health.joined = false;
        log.warn({ err: describeError(error) }, 'consumer crashed on a retriable error; kafkajs restarts it');
      },
      onFatal: (error) => {
        if (health.fatal) return;
        health.fatal = true;
        // A refusal (no READ on the topic shows only here, at the first fetch) exits 2 with its one line.
        const cause = refusalOf(error);
        log.fatal({ err: describeError(cause) }, 'consumer failed for good; exiting so the supervisor restarts it');
        fail(cause);
      },
    },
  );
  const http = await startHttpServer(c.HTTP_HOST, c.HTTP_PORT, health, metrics);
  try {
    await source.start();
  } catch (error) {
    for (const r of rechecks) r.cancel();
    producerReady.cancel();
    await producer.disconnect().catch(() => undefined);
    await http.close();
    throw refusalOf(error);
  }
  log.info({ httpPort: http.port, topic: c.KAFKA_TOPIC, groupId: c.KAFKA_GROUP_ID }, 'consuming');

  const progress = logProgressEvery(c.PROGRESS_INTERVAL_MS, metrics, () => pipeline.stalled, log);

  let stopping: Promise<boolean> | undefined;
  const stop = (reason: string): Promise<boolean> => {
    stopping ??= (async () => {
      log.info({ reason, boundMs: c.SHUTDOWN_TIMEOUT_MS }, 'shutting down: finishing in-flight writes and committing');
      progress.stop();
      for (const r of rechecks) r.cancel();
      const graceful = (async () => {
        producerReady.cancel();
        await source.stop();
        await bodies.close(); // nothing is in flight once the source has stopped
        await producer.disconnect();
        await sink.close();
        return true;
      })();
      const timedOut = sleep(c.SHUTDOWN_TIMEOUT_MS, false, { ref: false });
      const inTime = await Promise.race([graceful, timedOut]);
      await http.close();
      log.info({ inTime }, inTime ? 'stopped cleanly' : 'shutdown bound exceeded; unfinished records stay uncommitted');
      return inTime;
    })();
    return stopping;
  };

  return { health, metrics, http, stop, failed };
}
