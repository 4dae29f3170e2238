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
import type { Pipeline } from './pipeline.ts';
import { toSourceRecord } from './source/kafka.ts';
import { nextOffset } from './watermark.ts';

export type ReplayStart = { kind: 'earliest' } | { kind: 'time'; ms: number } | { kind: 'offsets'; offsets: ReadonlyMap<number, string> };
export type ReplayEnd = { kind: 'latest' } | { kind: 'time'; ms: number };

/** Pure: `earliest`, an ISO-8601 time, or `partition:offset,…`. */
export function parseFrom(text: string): ReplayStart {
  if (text === 'earliest') return { kind: 'earliest' };
  if (/^\d+:\d+(,\d+:\d+)*$/.test(text)) {
    const offsets = new Map<number, string>();
    for (const pair of text.split(',')) {
      const [p, o] = pair.split(':');
      offsets.set(Number(p), String(BigInt(o ?? '0')));
    }
    return { kind: 'offsets', offsets };
  }
  return { kind: 'time', ms: parseIsoTime('--from', text) };
}

/** Pure: `latest` or an ISO-8601 time. */
export function parseTo(text: string): ReplayEnd {
  return text === 'latest' ? { kind: 'latest' } : { kind: 'time', ms: parseIsoTime('--to', text) };
}

function parseIsoTime(flag: string, text: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw new InputError(`${flag} ${JSON.stringify(text)}: expected earliest/latest, an ISO-8601 time or partition:offset,…`);
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

export interface ReplayOptions {
  readonly topic: string;
  readonly groupId: string;
  /** False for --dry-run: nothing was done, so the replay group's offsets stay where they were. */
  readonly commit: boolean;
  readonly ranges: readonly PartitionRange[];
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

/** Runs the replay to its fixed end and returns what it did. */
export async function runReplay(kafka: Kafka, pipeline: Pipeline, metrics: Metrics, o: ReplayOptions, log: Logger): Promise<ReplaySummary> {
  const pending = new Map(o.ranges.filter((r) => BigInt(r.start) < BigInt(r.end)).map((r) => [r.partition, r]));
  if (pending.size > 0) {
    const consumer = kafka.consumer({
      groupId: o.groupId,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: o.heartbeatIntervalMs,
      allowAutoTopicCreation: false,
    });
    let fatal: unknown;
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    let done: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) {
        fatal = e.payload.error;
        done();
      }
    });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        const range = pending.get(batch.partition);
        if (range === undefined) {
          // Nothing (more) to replay here: stop fetching it instead of re-reading it in a loop.
          consumer.pause([{ topic: o.topic, partitions: [batch.partition] }]);
          return;
        }
        const inRange = batch.messages.filter((m) => BigInt(m.offset) < BigInt(range.end)).map((m) => toSourceRecord(batch.topic, batch.partition, m));
        try {
          await pipeline.processBatch(inRange, {
            isActive: () => isRunning() && !isStale(),
            canCommit: () => !isStale(),
            heartbeat,
            checkpoint: async (offset) => {
              resolveOffset(offset);
              if (o.commit) await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: nextOffset(offset) }]);
            },
          });
        } catch (error) {
          if (error instanceof Error && error.name.startsWith('KafkaJS')) throw error;
          fatal = error;
          done();
          return;
        }
        // The batch's last offset also covers trailing control records (transaction markers).
        if (BigInt(batch.lastOffset()) + 1n >= BigInt(range.end)) {
          pending.delete(batch.partition);
          consumer.pause([{ topic: o.topic, partitions: [batch.partition] }]);
          log.debug({ partition: batch.partition }, 'partition replayed to its end');
          if (pending.size === 0) done();
        }
      },
    });
    // Seek every partition to its start once the group has assigned them (kafkajs needs run() first).
    for (const r of pending.values()) consumer.seek({ topic: o.topic, partition: r.partition, offset: r.start });
    await finished;
    await sleep(0);
    await consumer.disconnect();
    if (fatal !== undefined) throw fatal;
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
