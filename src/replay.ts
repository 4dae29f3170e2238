/**
 * `tow-and-go replay`: re-reads a range of the topic with its own consumer group and writes the
 * snapshots through the same pipeline as the live path (same idempotent writes, same conflict
 * policy, same DLQ). The live group is never touched. The end is fixed when the replay starts, so
 * it terminates even while producers keep writing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { InputError } from './errors.ts';
import type { Metrics } from './metrics.ts';
import type { BatchResult, Pipeline } from './pipeline.ts';
import type { ReplayTracker } from './replay-tracker.ts';
import { keepAlive, PausedPartitions } from './source/batch-support.ts';
import { toSourceRecord } from './source/kafka.ts';
import { nextOffset } from './watermark.ts';

export type ReplayStart = { kind: 'earliest' } | { kind: 'time'; ms: number } | { kind: 'offsets'; offsets: ReadonlyMap<number, string> };
export type ReplayEnd = { kind: 'latest' } | { kind: 'time'; ms: number };

/** Pure: `earliest`, an ISO-8601 time, or `partition:offset,…` (each partition at most once). */
export function parseFrom(text: string, flag = '--from'): ReplayStart {
  if (text === 'earliest') return { kind: 'earliest' };
  if (/^\d+:\d+(,\d+:\d+)*$/.test(text)) {
    const offsets = new Map<number, string>();
    for (const pair of text.split(',')) {
      const [p, o] = pair.split(':');
      const partition = Number(p);
      if (offsets.has(partition)) throw new InputError(`${flag} ${JSON.stringify(text)}: partition ${partition} is given twice`);
      offsets.set(partition, String(BigInt(o ?? '0')));
    }
    return { kind: 'offsets', offsets };
  }
  return { kind: 'time', ms: parseIsoTime(flag, text, 'earliest, an ISO-8601 time or partition:offset,…') };
}

/** Pure: `latest` or an ISO-8601 time. */
export function parseTo(text: string): ReplayEnd {
  return text === 'latest' ? { kind: 'latest' } : { kind: 'time', ms: parseIsoTime('--to', text, 'latest or an ISO-8601 time') };
}

function parseIsoTime(flag: string, text: string, expected: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw new InputError(`${flag} ${JSON.stringify(text)}: expected ${expected}`);
  return ms;
}

export interface PartitionRange {
  readonly partition: number;
  /** First offset to read. */
  readonly start: string;
  /** First offset not to read (fixed at start). */
  readonly end: string;
}

/** Resolves the range of every partition against the topic as it is now. */
export async function resolveRanges(admin: Admin, topic: string, from: ReplayStart, to: ReplayEnd): Promise<PartitionRange[]> {
  const now = await admin.fetchTopicOffsets(topic);
  if (from.kind === 'offsets') assertPartitionsExist(topic, now, from.offsets.keys());
  const byTime = async (ms: number) => new Map((await admin.fetchTopicOffsetsByTimestamp(topic, ms)).map((e) => [e.partition, e.offset]));
  const startAt = from.kind === 'time' ? await byTime(from.ms) : undefined;
  const endAt = to.kind === 'time' ? await byTime(to.ms) : undefined;
  const ranges: PartitionRange[] = [];
  for (const p of now) {
    // Kafka answers -1 when no record is at or after the time: that is the end of the partition.
    const orHigh = (o: string | undefined) => (o === undefined || o === '-1' ? p.high : o);
    let start: string;
    if (from.kind === 'earliest') start = p.low;
    else if (from.kind === 'time') start = orHigh(startAt?.get(p.partition));
    else {
      const given = from.offsets.get(p.partition);
      if (given === undefined) continue;
      start = BigInt(given) < BigInt(p.low) ? p.low : given;
    }
    const end = to.kind === 'latest' ? p.high : orHigh(endAt?.get(p.partition));
    ranges.push({ partition: p.partition, start, end });
  }
  return ranges;
}

/** Throws an InputError naming the first partition the topic does not have. */
export function assertPartitionsExist(topic: string, now: ReadonlyArray<{ partition: number }>, given: Iterable<number>): void {
  const known = new Set(now.map((p) => p.partition));
  for (const p of given) if (!known.has(p)) throw new InputError(`partition ${p} does not exist in ${topic} (it has ${known.size})`);
}

export interface ReplayOptions {
  readonly topic: string;
  readonly groupId: string;
  /** False for --dry-run: nothing was done, so the replay group's offsets stay where they were. */
  readonly commit: boolean;
  /** The ranges and each partition's position; the caller may read its progress while it runs. */
  readonly tracker: ReplayTracker;
  readonly heartbeatIntervalMs: number;
  readonly sessionTimeoutMs: number;
}

export interface ReplaySummary {
  read: number;
  written: number;
  unchanged: number;
  conflicts: number;
  deadLettered: number;
  skipped: number;
  wouldWrite: number;
}

/**
 * Why a replay may not use this group, or undefined when it may. Pure.
 * Committing in the live group would move it past records its members never processed, and
 * sharing any group with live members would split the range with consumers that are not ours.
 */
export function replayGroupRefusal(groupId: string, liveGroupId: string, members: number, state: string): string | undefined {
  if (groupId === liveGroupId) return `--group ${groupId} is the live consumer group (KAFKA_GROUP_ID); replay needs a group of its own`;
  if (members > 0) return `--group ${groupId} has ${members} active member(s) (state ${state}); replay needs a group nobody is using`;
  return undefined;
}

/** Throws an InputError (exit 2) when the replay may not use `groupId`; see replayGroupRefusal. */
export async function checkReplayGroup(admin: Admin, groupId: string, liveGroupId: string): Promise<void> {
  let refusal = replayGroupRefusal(groupId, liveGroupId, 0, '');
  if (refusal === undefined) {
    const group = (await admin.describeGroups([groupId])).groups[0];
    refusal = replayGroupRefusal(groupId, liveGroupId, group?.members.length ?? 0, group?.state ?? '');
  }
  if (refusal !== undefined) throw new InputError(refusal);
}

/** Runs the replay to its fixed end and returns what it did. */
export async function runReplay(
  kafka: Pick<Kafka, 'consumer'>,
  pipeline: Pick<Pipeline, 'processBatch'>,
  metrics: Metrics,
  o: ReplayOptions,
  log: Logger,
): Promise<ReplaySummary> {
  const tracker = o.tracker;
  if (tracker.remaining > 0) {
    const consumer = kafka.consumer({
      groupId: o.groupId,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: o.heartbeatIntervalMs,
      allowAutoTopicCreation: false,
      // Leaving waits for the fetch in flight; once every partition is done (and paused), kafkajs
      // sleeps this long instead of fetching, so the default 5 s would only delay the exit.
      maxWaitTimeInMs: 1000,
    });
    let fatal: { error: unknown } | undefined;
    let fail: (error: unknown) => void = () => undefined;
    const failed = new Promise<void>((resolve) => {
      fail = (error) => {
        fatal ??= { error };
        resolve();
      };
    });
    const paused = new PausedPartitions();
    const pause = (partitions: number[]) => {
      if (partitions.length > 0) consumer.pause([{ topic: o.topic, partitions }]);
    };
    /** Moves a partition's position; a partition that reaches its end stops being fetched. */
    const advance = (partition: number, next: string) => {
      if (!tracker.advanceTo(partition, next)) return;
      pause([partition]);
      log.debug({ partition }, 'partition replayed to its end');
    };
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) fail(e.payload.error);
    });
    // On every (re)join, before the first fetch of the generation: each assigned partition the replay
    // still needs goes to its position, and the others are paused instead of being read in a loop.
    // kafkajs drops fetched batches of a partition while a seek on it is pending, so no batch from a
    // stale position reaches the handlers below.
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assigned = new Set(e.payload.memberAssignment[o.topic] ?? []);
      pause([...assigned].filter((p) => !tracker.wants(p)));
      for (const p of tracker.positions()) if (assigned.has(p.partition)) consumer.seek({ topic: o.topic, partition: p.partition, offset: p.offset });
    });
    // kafkajs never calls eachBatch for a batch it filtered down to nothing (only transaction
    // markers or aborted records); it resolves the batch itself and reports it only here.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      if (e.payload.topic === o.topic && e.payload.batchSize === 0) advance(e.payload.partition, nextOffset(e.payload.lastOffset));
    });
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale, pause: pauseBatch }) => {
        const end = tracker.end(batch.partition);
        if (end === undefined || !tracker.wants(batch.partition)) {
          pause([batch.partition]);
          return;
        }
        const inRange = batch.messages.filter((m) => BigInt(m.offset) < BigInt(end)).map((m) => toSourceRecord(batch.topic, batch.partition, m));
        // Sticky: once the batch is stale or the consumer stops, nothing later in it counts as done.
        let active = true;
        const isActive = () => {
          active &&= isRunning() && !isStale();
          return active;
        };
        // A long batch must not cost the replay its membership.
        const stopKeepAlive = keepAlive(heartbeat, o.heartbeatIntervalMs, () => undefined);
        let result: BatchResult;
        try {
          result = await pipeline.processBatch(inRange, {
            isActive,
            canCommit: () => !isStale(),
            checkpoint: async (offset) => {
              resolveOffset(offset);
              advance(batch.partition, nextOffset(offset));
              if (o.commit) await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: nextOffset(offset) }]);
            },
          });
        } catch (error) {
          // kafkajs' own errors (a rebalance) go back to it, so it rejoins; anything else is a bug.
          if (error instanceof Error && error.name.startsWith('KafkaJS')) throw error;
          fail(error);
          return;
        } finally {
          stopKeepAlive();
        }
        if (result.retryAfterMs !== undefined) {
          // Stalled on a retryable failure: fetch the partition again from its first unfinished
          // record once the backoff has passed (the pipeline remembers what finished past it).
          paused.pauseFor(pauseBatch, result.retryAfterMs);
          return;
        }
        // A batch processed to its end also covers what follows its last data record within it:
        // transaction markers, aborted records and records past the range's end.
        if (isActive()) advance(batch.partition, nextOffset(batch.lastOffset()));
      },
    });
    await Promise.race([tracker.done, failed]);
    paused.clear();
    await sleep(0);
    await consumer.disconnect();
    if (fatal !== undefined) throw fatal.error;
  }
  const count = (outcome: string) => metrics.records.get({ outcome });
  return {
    read: metrics.records.total(),
    written: count('created') + count('overwritten'),
    unchanged: count('unchanged'),
    conflicts: metrics.deadLetters.get({ code: 'OBJECT_CONFLICT' }) + count('would_conflict'),
    deadLettered: count('dead_lettered'),
    skipped: count('skipped'),
    wouldWrite: count('would_create'),
  };
}
