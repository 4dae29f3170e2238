/**
 * Replay's pure parts, and runReplay against a fake consumer written from kafkajs 2.2.4's source:
 * - instrumentation events are emitted synchronously as `{ payload }`; GROUP_JOIN comes after the
 *   sync and before the generation's first fetch (consumerGroup.joinAndSync);
 * - a batch with messages goes to eachBatch; a batch filtered down to nothing (only control
 *   records or aborted transactions) never does: kafkajs resolves it itself and only emits
 *   START/END_BATCH_PROCESS with batchSize 0 and its lastOffset (runner.handleBatch);
 * - batch.lastOffset() is the last offset fetched, control records included (batch.js).
 */
import { type Consumer, type EachBatchPayload, Kafka, type KafkaMessage } from 'kafkajs';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { InputError } from '../../src/errors.ts';
import { Metrics } from '../../src/metrics.ts';
import type { BatchControl, BatchResult } from '../../src/pipeline.ts';
import { type PartitionRange, parseFrom, parseTo, type ReplayOptions, replayGroupRefusal, runReplay } from '../../src/replay.ts';
import { ReplayTracker } from '../../src/replay-tracker.ts';
import { thrownBy } from '../support/thrown.ts';

const TOPIC = 'replay-unit';
const events = new Kafka({ brokers: ['unused:9092'] }).consumer({ groupId: 'unused' }).events;

describe('parseFrom and parseTo', () => {
  it.each([
    ['earliest', { kind: 'earliest' }],
    ['2024-05-01T00:00:00Z', { kind: 'time', ms: Date.parse('2024-05-01T00:00:00Z') }],
    [
      '3:1042,5:77',
      {
        kind: 'offsets',
        offsets: new Map([
          [3, '1042'],
          [5, '77'],
        ]),
      },
    ],
  ])('reads --from %s', (text, expected) => {
    expect(parseFrom(text)).toEqual(expected);
  });

  it.each([
    ['latest', '--from "latest": expected earliest, an ISO-8601 time or partition:offset,…'],
    ['3:1,3:2', '--from "3:1,3:2": partition 3 is given twice'],
    ['3:-1', 'expected earliest'],
    ['3:', 'expected earliest'],
  ])('refuses --from %s', (text, message) => {
    expect(thrownBy(Error, () => parseFrom(text)).message).toContain(message);
  });

  it('names the flag it parses for', () => {
    const error = thrownBy(Error, () => parseFrom('soon', '--to')) as InputError;
    expect(error.message).toMatch(/^--to "soon": /);
    expect(error.code).toBe('INPUT_INVALID');
  });

  it('reads --to latest or a time, never offsets', () => {
    expect(parseTo('latest')).toEqual({ kind: 'latest' });
    expect(thrownBy(Error, () => parseTo('3:5')).message).toBe('--to "3:5": expected latest or an ISO-8601 time');
  });
});

describe('replayGroupRefusal', () => {
  it.each([
    ['the live group, even when it is stopped', 'live', 0, 'Empty', 'is the live consumer group (KAFKA_GROUP_ID)'],
    ['the live group while it runs', 'live', 2, 'Stable', 'is the live consumer group'],
    ['any group with members', 'other', 1, 'Stable', '--group other has 1 active member(s) (state Stable)'],
    ['a group with members mid-rebalance', 'other', 3, 'PreparingRebalance', 'has 3 active member(s)'],
  ])('refuses %s', (_name, group, members, state, message) => {
    expect(replayGroupRefusal(group, 'live', members, state)).toContain(message);
  });

  it.each([
    ['a new group', 'Dead'],
    ['a stopped group', 'Empty'],
  ])('accepts %s', (_name, state) => {
    expect(replayGroupRefusal('other', 'live', 0, state)).toBeUndefined();
  });
});

/** A consumer with kafkajs' event semantics; the test plays the broker and the runner. */
class FakeConsumer {
  readonly events = events;
  readonly seeks: Array<{ partition: number; offset: string }> = [];
  readonly paused = new Set<number>();
  readonly commits: string[] = [];
  eachBatch: ((payload: EachBatchPayload) => Promise<void>) | undefined;
  readonly #listeners = new Map<string, Array<(e: { payload: unknown }) => void>>();
  #running!: () => void;
  readonly running = new Promise<void>((resolve) => {
    this.#running = resolve;
  });

  on(name: string, listener: (e: { payload: unknown }) => void): () => void {
    this.#listeners.set(name, [...(this.#listeners.get(name) ?? []), listener]);
    return () => undefined;
  }
  emit(name: string, payload: unknown): void {
    for (const l of this.#listeners.get(name) ?? []) l({ payload });
  }
  async connect(): Promise<void> {}
  async subscribe(): Promise<void> {}
  async disconnect(): Promise<void> {}
  async run(config: { eachBatch: (payload: EachBatchPayload) => Promise<void> }): Promise<void> {
    this.eachBatch = config.eachBatch;
    this.#running();
  }
  seek(s: { partition: number; offset: string }): void {
    this.seeks.push({ partition: s.partition, offset: s.offset });
  }
  pause(tps: Array<{ partitions: number[] }>): void {
    for (const p of tps.flatMap((t) => t.partitions)) this.paused.add(p);
  }
  async commitOffsets(o: Array<{ partition: number; offset: string }>): Promise<void> {
    this.commits.push(...o.map((x) => `${x.partition}:${x.offset}`));
  }

  join(partitions: number[]): void {
    this.emit(events.GROUP_JOIN, { memberAssignment: { [TOPIC]: partitions } });
  }
  /** A batch with data records; `lastOffset` may be past the last record (trailing control records). */
  async batch(partition: number, offsets: number[], lastOffset: number, stale = false): Promise<{ resumed: () => boolean }> {
    const messages = offsets.map((o) => ({ offset: String(o), timestamp: '0', key: null, value: Buffer.from('x'), headers: {} }) as unknown as KafkaMessage);
    let resumed = false;
    const payload = {
      batch: { topic: TOPIC, partition, messages, lastOffset: () => String(lastOffset) },
      resolveOffset: () => undefined,
      heartbeat: async () => undefined,
      isRunning: () => true,
      isStale: () => stale,
      pause: () => {
        this.paused.add(partition);
        return () => {
          resumed = true;
        };
      },
    } as unknown as EachBatchPayload;
    await this.eachBatch?.(payload);
    return { resumed: () => resumed };
  }
  /** A batch kafkajs filtered to nothing: only its instrumentation event. */
  filtered(partition: number, firstOffset: number, lastOffset: number): void {
    this.emit(events.END_BATCH_PROCESS, { topic: TOPIC, partition, batchSize: 0, firstOffset: String(firstOffset), lastOffset: String(lastOffset) });
  }
}

/** Finishes every record (checkpointing the last) unless told to stall. */
class FakePipeline {
  stallNext = false;
  readonly seen: string[][] = [];
  async processBatch(records: ReadonlyArray<{ offset: string }>, control: BatchControl): Promise<BatchResult> {
    this.seen.push(records.map((r) => r.offset));
    if (this.stallNext) {
      this.stallNext = false;
      return { retryAfterMs: 5 };
    }
    const last = records.at(-1);
    if (last !== undefined && control.canCommit()) await control.checkpoint(last.offset);
    return {};
  }
}

function start(ranges: PartitionRange[]) {
  const consumer = new FakeConsumer();
  const pipeline = new FakePipeline();
  const tracker = new ReplayTracker(ranges);
  const options: ReplayOptions = { topic: TOPIC, groupId: 'g', commit: true, tracker, heartbeatIntervalMs: 1000, sessionTimeoutMs: 10_000 };
  const kafka = { consumer: () => consumer as unknown as Consumer };
  let finished = false;
  const replay = runReplay(kafka, pipeline, new Metrics(), options, pino({ level: 'silent' })).then((s) => {
    finished = true;
    return s;
  });
  /** Whether runReplay has returned, once what the last step set off has settled. */
  const isFinished = async () => {
    await new Promise((r) => setTimeout(r, 5));
    return finished;
  };
  return { consumer, pipeline, tracker, replay, finished: isFinished };
}

describe('runReplay against a fake consumer', () => {
  it('seeks each wanted partition to its position at every join, and pauses the others', async () => {
    const r = start([
      { partition: 0, start: '10', end: '20' },
      { partition: 1, start: '5', end: '5' },
    ]);
    await r.consumer.running;
    r.consumer.join([0, 1, 2]);
    expect(r.consumer.seeks).toEqual([{ partition: 0, offset: '10' }]);
    expect([...r.consumer.paused].sort()).toEqual([1, 2]);
    await r.consumer.batch(0, [10, 11, 12], 12);
    r.consumer.join([0, 1, 2]);
    expect(r.consumer.seeks.at(-1)).toEqual({ partition: 0, offset: '13' });
    expect(await r.finished()).toBe(false);
  });

  it('ends when the range ends on an aborted transaction that kafkajs never hands to eachBatch', async () => {
    // 0-4 data, 5 commit marker, 6-8 aborted, 9 abort marker; the range is [0, 10).
    const r = start([{ partition: 0, start: '0', end: '10' }]);
    await r.consumer.running;
    r.consumer.join([0]);
    await r.consumer.batch(0, [0, 1, 2, 3, 4], 5);
    expect(await r.finished()).toBe(false);
    r.consumer.filtered(0, 6, 9);
    expect(await r.finished()).toBe(true);
    expect(r.consumer.paused.has(0)).toBe(true);
    expect(r.consumer.commits).toEqual(['0:5']);
  });

  it('ends when the data batch itself carries the trailing commit marker', async () => {
    const r = start([{ partition: 0, start: '0', end: '6' }]);
    await r.consumer.running;
    r.consumer.join([0]);
    await r.consumer.batch(0, [0, 1, 2, 3, 4], 5);
    expect(await r.finished()).toBe(true);
  });

  it('ends when the last offsets of the range were compacted away and the next batch is past the end', async () => {
    const r = start([{ partition: 0, start: '0', end: '50' }]);
    await r.consumer.running;
    r.consumer.join([0]);
    await r.consumer.batch(0, [0, 7, 19], 19);
    expect(await r.finished()).toBe(false);
    await r.consumer.batch(0, [61, 64], 64);
    expect(r.pipeline.seen.at(-1)).toEqual([]); // nothing past the end is written
    expect(await r.finished()).toBe(true);
  });

  it('does not move past a batch that stalled on a retryable failure: it resumes and reads it again', async () => {
    const r = start([{ partition: 0, start: '0', end: '3' }]);
    await r.consumer.running;
    r.consumer.join([0]);
    r.pipeline.stallNext = true;
    const first = await r.consumer.batch(0, [0, 1, 2], 2);
    expect(r.consumer.paused.has(0)).toBe(true);
    expect(first.resumed()).toBe(false);
    expect(await r.finished()).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(first.resumed()).toBe(true);
    await r.consumer.batch(0, [0, 1, 2], 2);
    expect(await r.finished()).toBe(true);
  });

  it('does not count a stale batch (a seek is pending) as done', async () => {
    const r = start([{ partition: 0, start: '0', end: '3' }]);
    await r.consumer.running;
    r.consumer.join([0]);
    await r.consumer.batch(0, [0, 1, 2], 2, true);
    expect(await r.finished()).toBe(false);
    expect(r.tracker.positions()).toEqual([{ partition: 0, offset: '0' }]);
  });

  it('ignores filtered batches of other topics and batches with records (those go through eachBatch)', async () => {
    const r = start([{ partition: 0, start: '0', end: '3' }]);
    await r.consumer.running;
    r.consumer.join([0]);
    r.consumer.emit(events.END_BATCH_PROCESS, { topic: 'other', partition: 0, batchSize: 0, lastOffset: '9' });
    r.consumer.emit(events.END_BATCH_PROCESS, { topic: TOPIC, partition: 0, batchSize: 3, lastOffset: '9' });
    expect(await r.finished()).toBe(false);
  });

  it('fails with the error of a bug in the pipeline', async () => {
    const r = start([{ partition: 0, start: '0', end: '3' }]);
    await r.consumer.running;
    r.consumer.join([0]);
    r.pipeline.processBatch = async () => {
      throw new TypeError('bug');
    };
    await r.consumer.batch(0, [0], 0);
    await expect(r.replay).rejects.toThrow('bug');
  });
});
