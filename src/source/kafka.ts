/**
 * The Kafka source: a consumer-group member that feeds each partition's batch to the pipeline and
 * commits what the pipeline checkpoints. Auto-commit is off; kafkajs never resolves an offset that
 * the pipeline did not finish.
 *
 * kafkajs settings, and why:
 * - eachBatch with eachBatchAutoResolve=false: the pipeline owns resolution (the watermark).
 * - heartbeat() is called between records and during every backoff, so a long upload or an outage
 *   does not get the member expelled (kafkajs throttles it to heartbeatInterval).
 * - isRunning()/isStale() are checked before every record and commit: after a revocation or a seek
 *   nothing more is committed for that partition.
 * - The handler never throws a plain Error into kafkajs (it would retry the same batch forever).
 *   Bugs go to `onFatal`; only kafkajs' own errors (rebalance, connection) are rethrown to it.
 * - A CRASH that kafkajs will not restart from, or a STOP we did not ask for, is fatal: the process
 *   exits non-zero so its supervisor restarts it, instead of idling as a zombie.
 */
import {
  type Consumer,
  type EachBatchPayload,
  Kafka,
  type KafkaConfig,
  type KafkaMessage,
  logLevel,
  Partitioners,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { SourceRecord } from '../dlq.ts';
import type { Metrics } from '../metrics.ts';
import type { Pipeline } from '../pipeline.ts';
import { nextOffset } from '../watermark.ts';

export type KafkaSettings = Pick<
  Config,
  'KAFKA_BROKERS' | 'KAFKA_CLIENT_ID' | 'KAFKA_SSL' | 'KAFKA_SASL_MECHANISM' | 'KAFKA_SASL_USERNAME' | 'KAFKA_SASL_PASSWORD'
>;

export function createKafka(c: KafkaSettings, log: Logger): Kafka {
  const config: KafkaConfig = {
    clientId: c.KAFKA_CLIENT_ID,
    brokers: [...c.KAFKA_BROKERS],
    ssl: c.KAFKA_SSL,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    // kafkajs retries broker calls itself; past these, its errors reach our handlers.
    retry: { initialRetryTime: 300, retries: 8, maxRetryTime: 10000 },
    logLevel: logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...extra } = entry.log;
      const level = entry.level === logLevel.ERROR ? 'error' : entry.level === logLevel.WARN ? 'warn' : 'debug';
      log[level]({ kafkajs: entry.namespace, ...extra }, message);
    },
  };
  const sasl = saslOptions(c);
  if (sasl !== undefined) config.sasl = sasl;
  return new Kafka(config);
}

function saslOptions(c: KafkaSettings): SASLOptions | undefined {
  const username = c.KAFKA_SASL_USERNAME ?? '';
  const password = c.KAFKA_SASL_PASSWORD ?? '';
  switch (c.KAFKA_SASL_MECHANISM) {
    case 'none':
      return undefined;
    case 'plain':
      return { mechanism: 'plain', username, password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username, password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username, password };
  }
}

/**
 * The one producer configuration (DLQ, publisher, replay). Not idempotent: kafkajs' idempotent
 * producer wants unbounded retries, which would hang a send through a broker outage instead of
 * handing the failure to the pipeline's own backoff. A retry can then duplicate a record, which
 * both consumers of these topics tolerate: an identical snapshot is a no-op, and the DLQ is
 * documented as at-least-once. One request in flight keeps the order; acks are per send (-1).
 */
export function createProducer(kafka: Kafka): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
}

export function toSourceRecord(topic: string, partition: number, m: KafkaMessage): SourceRecord {
  return { topic, partition, offset: m.offset, timestamp: m.timestamp, key: m.key, value: m.value, headers: m.headers };
}

export interface SourceSettings {
  readonly topic: string;
  readonly groupId: string;
  readonly fromBeginning: boolean;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly partitionsConcurrently: number;
}

export interface SourceEvents {
  onJoined(memberId: string, assignment: Record<string, number[]>): void;
  onRebalancing(): void;
  onFatal(error: unknown): void;
}

export class KafkaSource {
  readonly #consumer: Consumer;
  readonly #s: SourceSettings;
  readonly #pipeline: Pipeline;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #events: SourceEvents;
  #stopping = false;
  readonly #batches = new Set<Promise<void>>();

  constructor(kafka: Kafka, s: SourceSettings, pipeline: Pipeline, log: Logger, metrics: Metrics, events: SourceEvents) {
    this.#s = s;
    this.#pipeline = pipeline;
    this.#log = log;
    this.#metrics = metrics;
    this.#events = events;
    this.#consumer = kafka.consumer({
      groupId: s.groupId,
      sessionTimeout: s.sessionTimeoutMs,
      heartbeatInterval: s.heartbeatIntervalMs,
      rebalanceTimeout: s.rebalanceTimeoutMs,
      allowAutoTopicCreation: false,
      retry: {
        // Restart after retriable crashes (broker restarts, coordinator moves); anything else is fatal.
        restartOnFailure: async (error) => {
          this.#log.warn({ err: error.message }, 'consumer crashed; kafkajs restarts it');
          return true;
        },
      },
    });
    const { GROUP_JOIN, REBALANCING, CRASH, STOP } = this.#consumer.events;
    this.#consumer.on(GROUP_JOIN, (e) => this.#events.onJoined(e.payload.memberId, e.payload.memberAssignment));
    this.#consumer.on(REBALANCING, () => this.#events.onRebalancing());
    this.#consumer.on(CRASH, (e) => {
      if (!e.payload.restart) this.#events.onFatal(e.payload.error);
    });
    this.#consumer.on(STOP, () => {
      if (!this.#stopping) this.#events.onFatal(new Error('consumer stopped by itself'));
    });
  }

  async start(): Promise<void> {
    await this.#consumer.connect();
    await this.#consumer.subscribe({ topic: this.#s.topic, fromBeginning: this.#s.fromBeginning });
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#s.partitionsConcurrently,
      eachBatch: (payload) => {
        const running = this.#eachBatch(payload);
        const tracked = running.then(
          () => undefined,
          () => undefined,
        );
        this.#batches.add(tracked);
        void tracked.finally(() => this.#batches.delete(tracked));
        return running;
      },
    });
  }

  /**
   * Stops starting records, waits for the running batches to finish their in-flight writes and
   * commit what landed, and only then disconnects (which leaves the group). kafkajs' own
   * disconnect does not wait for a batch handler's last commit, so this order is ours to keep.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.allSettled(this.#batches);
    await this.#consumer.disconnect();
  }

  async #eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const records = batch.messages.map((m) => toSourceRecord(batch.topic, batch.partition, m));
    this.#metrics.lag.set({ partition: String(batch.partition) }, Number(batch.offsetLag()));
    try {
      await this.#pipeline.processBatch(records, {
        isActive: () => !this.#stopping && isRunning() && !isStale(),
        canCommit: () => !isStale(),
        heartbeat,
        checkpoint: async (offset) => {
          resolveOffset(offset);
          await this.#consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: nextOffset(offset) }]);
          this.#metrics.commits.add({}, 1);
        },
      });
    } catch (error) {
      // kafkajs' own errors (rebalance in progress, connection lost) are its to handle: it rejoins
      // and re-fetches from the last committed offset.
      if (isKafkaJsError(error)) throw error;
      this.#events.onFatal(error);
      // Stop feeding this partition while the process goes down.
      this.#consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
    }
  }
}

function isKafkaJsError(error: unknown): boolean {
  return error instanceof Error && error.name.startsWith('KafkaJS');
}
