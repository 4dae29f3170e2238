/**
 * The Kafka source: a consumer-group member that feeds each partition's batch to the pipeline and
 * commits what the pipeline checkpoints. Auto-commit is off; kafkajs never resolves an offset that
 * the pipeline did not finish. What kafkajs 2.2.4 really does, and how this file works with it:
 *
 * - kafkajs fetches again only when every batch of the previous fetch has returned. So the handler
 *   does not wait for its uploads: it hands the batch to the partition's lane (pipeline.stream) and
 *   returns once the records have started, resolving the batch's last offset so kafkajs fetches on.
 *   Commits never follow that resolved offset: they are sent explicitly, from the lane's watermark.
 *   A record that arrives while uploads are in flight is fetched at once (p99 at half load went
 *   from ~3 uploads to ~1), and backpressure stays (the handler waits for window room).
 * - A stall (retryable failure), even after the handler returned, holds (pauses) the partition;
 *   once its lane is idle the partition is rewound (seek) to the first unfinished record and
 *   resumed after the backoff, so nothing is skipped and the other partitions keep going. Batches
 *   fetched before the rewind are recognised by where their fetch started and dropped.
 * - Revocation is seen only as a rebalance error from heartbeat() or a commit (see membership.ts).
 *   A generation object per GROUP_JOIN carries it; a revoked batch starts nothing and commits nothing.
 * - kafkajs sends heartbeats only when called. A timer calls heartbeat() while a batch runs, so slow
 *   uploads never get the member expelled.
 * - kafkajs' crash handling calls disconnect() (which emits STOP) before it emits CRASH with
 *   `restart`. Only CRASH decides: a restart is ridden out (the process stays up, not ready, for as
 *   long as the outage lasts); a crash kafkajs will not restart from is fatal. kafkajs restarts
 *   only from an error it calls retriable, and asks restartOnFailure first: the answer is no for a
 *   refusal (refusals.ts), e.g. an untrusted certificate, which kafkajs retries as a connection
 *   error. A refusal it does not call retriable (no READ on the topic: TOPIC_AUTHORIZATION_FAILED
 *   at the first fetch) arrives with restart=false without asking. Either way onFatal gets it.
 * - A transaction's commit marker is never handed to eachBatch, and a batch of only markers or
 *   aborted records is resolved by kafkajs but, with autoCommit off, never committed. The batch's
 *   last offset is committed once its records are done, and marker-only batches are committed from
 *   the END_BATCH_PROCESS event, so the committed offset reaches the log end.
 * - commitOffsets is silently skipped by kafkajs when its runner is not running; commits are counted
 *   from the COMMIT_OFFSETS event, which is emitted only for commits the coordinator accepted.
 */
import type { Admin, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.ts';
import type { Pipeline, StreamControl } from '../pipeline.ts';
import { isPermanentKafkaError } from '../refusals.ts';
import { nextOffset } from '../watermark.ts';
import { keepAlive, PausedPartitions } from './batch-support.ts';
import { toSourceRecord } from './kafka.ts';
import { describe, fetchedOffsetOf, isRetriable } from './kafkajs-facts.ts';
import { Generation } from './membership.ts';
import { partitionControl } from './partition-control.ts';

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
  /** kafkajs crashed and restarts the consumer by itself (broker outage, coordinator move). */
  onRestarting(error: unknown): void;
  onFatal(error: unknown): void;
}

/** How long an idle fetch waits at the broker; also how soon a resumed partition is fetched. */
const MAX_WAIT_MS = 1000;
const LAG_REFRESH_MS = 5000;

export class KafkaSource {
  readonly #consumer: Consumer;
  readonly #s: SourceSettings;
  readonly #pipeline: Pipeline;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #events: SourceEvents;
  #stopping = false;
  #generation = new Generation();
  /** The current generation's per-partition controls (replaced with the generation). */
  #controls = new Map<number, StreamControl>();
  /** Last time the broker answered a fetch or a heartbeat: readiness needs a live connection. */
  #lastContactAt = 0;
  readonly #batches = new Set<Promise<void>>();
  readonly #paused = new PausedPartitions();
  readonly #admin: Admin;
  #owned: readonly number[] = [];
  #lagTimer: NodeJS.Timeout | undefined;
  #lagRefreshing = false;

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
      maxWaitTimeInMs: MAX_WAIT_MS,
      allowAutoTopicCreation: false,
      // kafkajs asks only for retriable crashes (broker gone, retries exhausted): restart, unless
      // retrying cannot help (a TLS verification failure is a retriable connection error to kafkajs).
      retry: { restartOnFailure: async (error) => !isPermanentKafkaError(error) },
    });
    const { GROUP_JOIN, REBALANCING, CRASH, HEARTBEAT, FETCH, COMMIT_OFFSETS, END_BATCH_PROCESS } = this.#consumer.events;
    this.#consumer.on(GROUP_JOIN, (e) => {
      this.#generation = new Generation();
      this.#controls = new Map();
      this.#owned = e.payload.memberAssignment[s.topic] ?? [];
      this.#pipeline.partitions.assigned(this.#owned);
      this.#contact();
      this.#events.onJoined(e.payload.memberId, e.payload.memberAssignment);
    });
    this.#consumer.on(REBALANCING, () => {
      this.#revokeAll();
      this.#events.onRebalancing();
    });
    this.#consumer.on(CRASH, (e) => {
      this.#revokeAll();
      if (e.payload.restart) this.#events.onRestarting(e.payload.error);
      else this.#events.onFatal(e.payload.error);
    });
    // STOP is not handled: kafkajs emits it for every crash before it decides to restart.
    this.#consumer.on(HEARTBEAT, () => this.#contact());
    this.#consumer.on(FETCH, () => this.#contact());
    this.#consumer.on(COMMIT_OFFSETS, (e) => {
      for (const t of e.payload.topics) this.#metrics.commits.add({}, t.partitions.length);
    });
    this.#consumer.on(END_BATCH_PROCESS, (e) => {
      if (e.payload.batchSize === 0) void this.#commitMarkers(e.payload.partition, e.payload.lastOffset);
    });
    // Lag from the committed offsets, on a timer: a stalled or idle partition fetches no batches.
    this.#admin = kafka.admin({ retry: { retries: 0 } });
    this.#metrics.onRender(() => {
      for (const [partition, seconds] of this.#pipeline.partitions.secondsSinceProgress()) {
        this.#metrics.sinceProgress.set({ partition: String(partition) }, Math.round(seconds));
      }
    });
  }

  /** Whether the broker answered within the last few heartbeat intervals. */
  get connected(): boolean {
    return Date.now() - this.#lastContactAt <= Math.max(5000, 2 * this.#s.heartbeatIntervalMs + MAX_WAIT_MS);
  }

  /**
   * Connects and subscribes, retrying while the brokers are unreachable: a process started during
   * an outage waits for the brokers (not ready) instead of exiting into a crash loop. Errors that
   * will not pass (authentication, authorization, TLS verification) are thrown.
   */
  async start(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#consumer.connect();
        await this.#consumer.subscribe({ topic: this.#s.topic, fromBeginning: this.#s.fromBeginning });
        break;
      } catch (error) {
        if (this.#stopping || !isRetriable(error)) throw error;
        if (attempt % 10 === 0)
          this.#log.warn({ err: describe(error), attempt: attempt + 1 }, 'cannot join the topic yet (brokers down or topic not ready); retrying');
        await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** attempt)));
      }
    }
    this.#lagTimer = setInterval(() => void this.#refreshLag(), LAG_REFRESH_MS).unref();
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
    clearInterval(this.#lagTimer);
    this.#paused.clear();
    await Promise.allSettled(this.#batches);
    // Handlers return before their records finish: wait for the lanes' writes and last commits.
    await this.#pipeline.drain();
    await this.#consumer.disconnect();
    await this.#admin.disconnect().catch(() => undefined);
  }

  async #refreshLag(): Promise<void> {
    if (this.#lagRefreshing || this.#owned.length === 0) return;
    this.#lagRefreshing = true;
    try {
      await this.#admin.connect();
      const [ends, committed] = await Promise.all([
        this.#admin.fetchTopicOffsets(this.#s.topic),
        this.#admin.fetchOffsets({ groupId: this.#s.groupId, topics: [this.#s.topic] }),
      ]);
      const at = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      this.#metrics.lag.clear();
      for (const end of ends) {
        if (!this.#owned.includes(end.partition)) continue;
        const from = at.get(end.partition) ?? -1n;
        const start = from < 0n ? BigInt(end.low) : from;
        this.#metrics.lag.set({ partition: String(end.partition) }, Number(BigInt(end.high) - start));
      }
    } catch (error) {
      this.#log.debug({ err: describe(error) }, 'lag refresh failed');
    } finally {
      this.#lagRefreshing = false;
    }
  }

  async #eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat } = payload;
    const generation = this.#generation;
    if (!generation.active || this.#stopping) return;
    this.#contact();
    const records = batch.messages.map((m) => toSourceRecord(batch.topic, batch.partition, m));
    // Heartbeats while this handler waits for window room (backpressure); kafkajs sends none meanwhile.
    const stopKeepAlive = keepAlive(heartbeat, this.#s.heartbeatIntervalMs, (error) => {
      if (error === undefined) this.#contact();
      else if (!generation.note(error)) this.#log.debug({ err: describe(error) }, 'heartbeat failed');
    });
    try {
      const started = await this.#pipeline.stream(records, this.#controlOf(batch.partition, generation), batch.lastOffset(), fetchedOffsetOf(batch));
      // Fetch on past the batch: its records are in the lane, and commits follow the watermark.
      if (started && generation.active) resolveOffset(batch.lastOffset());
    } catch (error) {
      // Bugs only: the pipeline turns every expected failure into an outcome or a stall.
      this.#events.onFatal(error);
      return;
    } finally {
      stopKeepAlive();
    }
    // Hand kafkajs the rebalance error itself, so its runner rejoins now instead of at the next fetch.
    if (generation.revokedBy !== undefined) throw generation.revokedBy;
  }

  /** One control per partition and generation: the pipeline keeps one lane per control. */
  #controlOf(partition: number, generation: Generation): StreamControl {
    const known = this.#controls.get(partition);
    if (known !== undefined) return known;
    const control = partitionControl(partition, generation, {
      topic: this.#s.topic,
      consumer: this.#consumer,
      paused: this.#paused,
      stopping: () => this.#stopping,
      log: this.#log,
      onFatal: (error) => this.#events.onFatal(error),
    });
    this.#controls.set(partition, control);
    return control;
  }

  /** A batch of only transaction markers or aborted records: kafkajs resolved it; commit it too. */
  async #commitMarkers(partition: number, lastOffset: string): Promise<void> {
    const generation = this.#generation;
    if (!generation.active || this.#stopping) return;
    try {
      await this.#consumer.commitOffsets([{ topic: this.#s.topic, partition, offset: nextOffset(lastOffset) }]);
    } catch (error) {
      if (!generation.note(error)) this.#log.debug({ partition, err: describe(error) }, 'commit past control records failed');
    }
  }

  #revokeAll(): void {
    this.#generation.revoke();
    this.#pipeline.partitions.revokedAll();
    this.#metrics.lag.clear();
  }

  #contact(): void {
    this.#lastContactAt = Date.now();
  }
}
