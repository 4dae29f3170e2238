/**
 * `tow-and-go reconcile`, the I/O: proves where every record of a range of the topic went.
 *
 * 1. The range is resolved as replay resolves it (resolveRanges), fixed at start.
 * 2. The whole DLQ topic is read once, into an index by the source topic, partition and offset its
 *    headers name.
 * 3. The range is read; each record is decoded and hashed as the pipeline does it
 *    (reconcile-inspect.ts), its key asked with HeadObject at every destination (at most
 *    `concurrency` records at once), and classified (reconcile-classify.ts).
 * 4. With --repair, the missing records are written through the pipeline (reconcile-repair.ts) and
 *    their keys asked again.
 *
 * Both reads use runReplay's consumer loop with a consumer group of their own that never commits:
 * kafkajs has no consumer without a group, and the loop already seeks each partition to its start,
 * stops at the fixed end (also on transaction markers) and keeps the member alive. The group is
 * deleted at the end.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { DLQ_HEADER, type SourceRecord } from '../dlq.ts';
import { Metrics } from '../metrics.ts';
import type { Pipeline } from '../pipeline.ts';
import type { ProgressSample } from '../progress.ts';
import { type PartitionRange, type ReplayEnd, type ReplayStart, resolveRanges, runReplay } from '../replay.ts';
import { ReplayTracker } from '../replay-tracker.ts';
import { objectKey } from '../snapshot.ts';
import {
  type Copy,
  classify,
  type DeadLetterEntry,
  deadLetterSource,
  inTimeRange,
  isUnaccounted,
  type RecordFacts,
  Tally,
  type TallyCounts,
  type UnaccountedKind,
  type Verdict,
} from './reconcile-classify.ts';
import type { BodyInspector, ObjectHeads } from './reconcile-inspect.ts';

/** A destination as reconcile asks it: its name, its prefix and its HeadObject. */
export interface DestinationHeads {
  readonly name: string;
  readonly prefix: string;
  readonly heads: ObjectHeads;
}

export interface ReconcileSettings {
  readonly topic: string;
  readonly dlqTopic: string;
  /** The throwaway group of both reads; deleted at the end. */
  readonly groupId: string;
  readonly from: ReplayStart;
  readonly to: ReplayEnd;
  readonly heartbeatIntervalMs: number;
  readonly sessionTimeoutMs: number;
  /** Records examined at once (each is at most one HeadObject). */
  readonly concurrency: number;
}

export interface ReconcileParts {
  readonly kafka: Kafka;
  readonly inspector: BodyInspector;
  /** Every destination, the pipeline's (the first of S3_DESTINATIONS) first. */
  readonly destinations: readonly DestinationHeads[];
  /** Writes the missing records (--repair); absent: report only. */
  readonly repair?: (records: readonly SourceRecord[]) => Promise<void>;
  /** Shows the read's progress while it runs; returns its stop. */
  readonly progress: (sample: () => ProgressSample) => () => void;
  readonly log: Logger;
  readonly nowSeconds: () => number;
}

export interface UnaccountedRecord {
  readonly facts: RecordFacts;
  readonly verdict: Extract<Verdict, { kind: UnaccountedKind }>;
}

export interface ReconcileResult {
  readonly ranges: readonly PartitionRange[];
  /** Offsets in the range, transaction markers and aborted records included. */
  readonly offsets: number;
  readonly counts: TallyCounts;
  /** Still unaccounted at the end, in partition and offset order. */
  readonly unaccounted: readonly UnaccountedRecord[];
}

export async function runReconcile(s: ReconcileSettings, p: ReconcileParts): Promise<ReconcileResult> {
  const admin = p.kafka.admin();
  await admin.connect();
  let ranges: PartitionRange[];
  let dlqRanges: PartitionRange[];
  try {
    ranges = await resolveRanges(admin, s.topic, s.from, s.to);
    const hasDlq = (await admin.listTopics()).includes(s.dlqTopic);
    if (!hasDlq) p.log.warn({ topic: s.dlqTopic }, 'the DLQ topic does not exist: no record counts as dead-lettered');
    dlqRanges = hasDlq ? await resolveRanges(admin, s.dlqTopic, { kind: 'earliest' }, { kind: 'latest' }) : [];
  } finally {
    await admin.disconnect();
  }
  const tracker = new ReplayTracker(ranges);
  const dlqTracker = new ReplayTracker(dlqRanges);
  try {
    const deadLetters = await readDeadLetters(s, p, dlqTracker);
    p.log.info({ topic: s.dlqTopic, entries: deadLetters.size, ranges }, 'reconcile: DLQ indexed; reading the range');
    const tally = new Tally();
    const found: { facts: RecordFacts; verdict: Verdict; record: SourceRecord }[] = [];
    const stop = p.progress(() => tracker.progress());
    try {
      await examineRange(s, p, tracker, deadLetters, (facts, verdict, record) => {
        tally.add(verdict);
        if (isUnaccounted(verdict)) found.push({ facts, verdict, record });
      });
    } finally {
      stop();
    }
    const missing = found.filter((u) => u.verdict.kind === 'missing');
    if (p.repair !== undefined && missing.length > 0) {
      p.log.info({ records: missing.length }, 'reconcile: repairing the missing records');
      await p.repair(missing.map((u) => u.record));
      for (const u of missing) await recheck(u, p.destinations, tally);
    }
    const unaccounted = found
      .flatMap((u) => (isUnaccounted(u.verdict) ? [{ facts: u.facts, verdict: u.verdict }] : []))
      .sort((a, b) => a.facts.partition - b.facts.partition || compareOffsets(a.facts.offset, b.facts.offset));
    return { ranges, offsets: tracker.progress().total, counts: tally.counts, unaccounted };
  } finally {
    // The group exists once a read has joined it, which is when a range has records.
    if (ranges.some(hasRecords) || dlqRanges.some(hasRecords)) await deleteGroup(p.kafka, s.groupId, p.log);
  }
}

/** Every destination's copy of the snapshot with this last_modified. */
function copiesOf(destinations: readonly DestinationHeads[], lastModified: number): Promise<Copy[]> {
  return Promise.all(
    destinations.map(async (d) => {
      const key = objectKey(d.prefix, { last_modified: lastModified });
      return { destination: d.name, key, stored: await d.heads.get(key) };
    }),
  );
}

/** Asks S3 again for a repaired record's keys and replaces its verdict. */
async function recheck(u: { facts: RecordFacts; verdict: Verdict }, destinations: readonly DestinationHeads[], tally: Tally): Promise<void> {
  const body = u.facts.body;
  if (body?.kind !== 'built') return;
  const byName = new Map(destinations.map((d) => [d.name, d.heads]));
  const copies = await Promise.all(
    body.copies.map(async (c) => {
      const heads = byName.get(c.destination);
      if (heads === undefined) return c;
      heads.forget(c.key);
      return { ...c, stored: await heads.get(c.key) };
    }),
  );
  const facts: RecordFacts = { ...u.facts, body: { ...body, copies } };
  const after = classify(facts);
  tally.replace(u.verdict, after);
  u.facts = facts;
  u.verdict = after;
}

type DeadLetterIndex = ReadonlyMap<string, DeadLetterEntry>;

function indexKey(partition: number, offset: string): string {
  return `${partition}@${offset}`;
}

/** The DLQ records that name a record of `s.topic`, by its partition and offset. */
async function readDeadLetters(s: ReconcileSettings, p: ReconcileParts, tracker: ReplayTracker): Promise<DeadLetterIndex> {
  const index = new Map<string, DeadLetterEntry>();
  const names = DLQ_HEADER;
  await readRange(s, p, s.dlqTopic, tracker, async (records) => {
    for (const r of records) {
      const headers: Record<string, string | undefined> = {};
      for (const [name, value] of Object.entries(r.headers ?? {})) if (value !== undefined && !Array.isArray(value)) headers[name] = value.toString();
      const source = deadLetterSource(headers, names, s.topic);
      // A crash between the DLQ produce and the commit can dead-letter a record twice: one entry is enough.
      if (source !== undefined) index.set(indexKey(source.partition, source.offset), source.entry);
    }
  });
  return index;
}

/** Reads the range and hands each record's facts and verdict to `tallied`, once per record. */
async function examineRange(
  s: ReconcileSettings,
  p: ReconcileParts,
  tracker: ReplayTracker,
  deadLetters: DeadLetterIndex,
  tallied: (facts: RecordFacts, verdict: Verdict, record: SourceRecord) => void,
): Promise<void> {
  // Offsets bound the range; record timestamps make a time range exact, as in replay.
  const fromMs = s.from.kind === 'time' ? s.from.ms : Number.NEGATIVE_INFINITY;
  const toMs = s.to.kind === 'time' ? s.to.ms : Number.POSITIVE_INFINITY;
  const limit = new Limiter(s.concurrency);
  const factsOf = async (r: SourceRecord): Promise<RecordFacts> => {
    const base = { topic: r.topic, partition: r.partition, offset: r.offset, deadLetter: deadLetters.get(indexKey(r.partition, r.offset)) };
    if (!inTimeRange(r.timestamp, fromMs, toMs)) return { ...base, inTimeRange: false, body: undefined };
    const body = await p.inspector.body(r.value, p.nowSeconds());
    if (body.kind === 'undecodable') return { ...base, inTimeRange: true, body };
    const built = { kind: 'built', sha256: body.sha256, acceptance: body.acceptance, copies: await copiesOf(p.destinations, body.lastModified) } as const;
    return { ...base, inTimeRange: true, body: built };
  };
  await readRange(s, p, s.topic, tracker, async (records) => {
    await Promise.all(
      records.map((r) =>
        limit.run(async () => {
          const facts = await factsOf(r);
          tallied(facts, classify(facts), r);
        }),
      ),
    );
  });
}

/**
 * Reads `topic` over the tracker's ranges with runReplay's loop and a reader in place of the
 * pipeline. Each record is handed over once: a batch fetched again (a rebalance) is cut to what
 * was not handed over yet, claimed before the handler runs.
 */
async function readRange(
  s: ReconcileSettings,
  p: ReconcileParts,
  topic: string,
  tracker: ReplayTracker,
  handle: (records: readonly SourceRecord[]) => Promise<void>,
): Promise<void> {
  const next = new Map<number, bigint>();
  const reader: Pick<Pipeline, 'processBatch'> = {
    processBatch: async (records, control) => {
      const last = records.at(-1);
      if (last === undefined) return {};
      const from = next.get(last.partition) ?? -1n;
      next.set(last.partition, BigInt(last.offset) + 1n);
      await handle(records.filter((r) => BigInt(r.offset) >= from));
      await control.checkpoint(last.offset);
      return {};
    },
  };
  const options = { topic, groupId: s.groupId, commit: false, tracker, heartbeatIntervalMs: s.heartbeatIntervalMs, sessionTimeoutMs: s.sessionTimeoutMs };
  await runReplay(p.kafka, reader, new Metrics(), options, p.log.child({ component: 'reconcile reader', topic }));
}

/** The group held no offsets (nothing is committed), but it would be listed until Kafka expires it. */
async function deleteGroup(kafka: Kafka, groupId: string, log: Logger): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteGroups([groupId]);
  } catch (error) {
    log.warn(
      { groupId, err: error instanceof Error ? error.message : String(error) },
      'could not delete the reconcile group; it holds no offsets and Kafka expires it',
    );
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function hasRecords(r: PartitionRange): boolean {
  return BigInt(r.start) < BigInt(r.end);
}

function compareOffsets(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** At most `size` tasks at once, started in call order. */
class Limiter {
  readonly #size: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#size) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#active++;
    try {
      return await task();
    } finally {
      const wake = this.#waiting.shift();
      if (wake === undefined) this.#active--;
      else wake();
    }
  }
}
